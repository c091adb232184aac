# metallb-ts image: one image for both the controller and the speaker (`metallb controller`, `metallb speaker`).
# Build:  docker build -t metallb-ts:latest .
# Two stages: the builder compiles the native addon and TypeScript to dist/ and drops dev dependencies; the runtime
# stage holds only dist/, the production node_modules, the addon, bin/ and package.json.

FROM node:24-bookworm-slim AS builder
# `npm ci` runs the package's install script, which builds native/ (AF_PACKET sockets, TCP-MD5) with node-gyp: it
# needs python3, make and a compiler. The headers are the image's own Node's, so node-gyp downloads nothing.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
# Dependencies (and the addon) first, so that the layer is reused while only TypeScript sources change.
COPY package.json package-lock.json ./
COPY native ./native
RUN npm ci --no-audit --no-fund \
 && test -f native/build/Release/metallb_native.node
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
COPY --from=builder /app/native/build/Release/metallb_native.node ./native/build/Release/metallb_native.node
# bin/metallb.js runs dist/src/cli/main.js when it exists (it does here), so tsx is not needed at run time.
RUN chmod 0755 /app/bin/metallb.js && ln -s /app/bin/metallb.js /usr/local/bin/metallb
# Unprivileged by default (numeric, so Kubernetes can verify runAsNonRoot). The controller runs like this; the
# speaker DaemonSet overrides it (runAsUser 0, capabilities NET_RAW only) because it needs raw packet sockets.
USER 65534:65534
ENTRYPOINT ["node", "/app/bin/metallb.js"]
CMD ["--help"]
