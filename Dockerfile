# metallb-ts image: one image for both the controller and the speaker (`metallb controller`, `metallb speaker`).
# Build:  docker build -t metallb-ts:latest .
# Two stages: the builder compiles TypeScript to dist/ and drops dev dependencies; the runtime stage holds only
# dist/, the production node_modules, bin/ and package.json.

FROM node:24-bookworm-slim AS builder
WORKDIR /app
# Dependencies first, so that the layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f dist/src/cli/main.js

FROM node:24-bookworm-slim
LABEL org.opencontainers.image.title="metallb-ts" \
      org.opencontainers.image.description="Network load-balancer for bare-metal Kubernetes, a drop-in for MetalLB" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=builder /app/package.json ./package.json
COPY --from=builder /app/node_modules ./node_modules
COPY --from=builder /app/dist ./dist
COPY --from=builder /app/bin ./bin
# bin/metallb.js runs dist/src/cli/main.js when it exists (it does here), so tsx is not needed at run time.
RUN chmod 0755 /app/bin/metallb.js && ln -s /app/bin/metallb.js /usr/local/bin/metallb
# Unprivileged by default (numeric, so Kubernetes can verify runAsNonRoot). The controller runs like this; the
# speaker DaemonSet overrides it (runAsUser 0, capabilities NET_RAW only) because it needs raw packet sockets.
USER 65534:65534
ENTRYPOINT ["node", "/app/bin/metallb.js"]
CMD ["--help"]
