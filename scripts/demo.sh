#!/usr/bin/env bash
# The main job until the lab exists: a development API server, the controller, the real kubectl,
# MetalLB's CRDs and an example configuration; LoadBalancer Services get their addresses.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: scripts/demo.sh [--keep]

Starts `metallb dev-apiserver` and `metallb controller` on loopback, installs MetalLB's CRDs and
examples/config.yaml with kubectl, creates IPv4, IPv6, dual-stack and shared-IP LoadBalancer
Services, and shows them getting addresses, their events and the controller's metrics.

  --keep   leave the API server and controller running (prints how to reach them and stop them)
  -h, --help   this text
TXT
}

keep=false
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --keep) keep=true ;;
    *) echo "demo: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
work=$(mktemp -d /tmp/metallb-demo.XXXXXX)
kubeconfig="$work/kubeconfig"
pids=()
cleanup() {
  if [ "$keep" = false ]; then
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
k() { kubectl --kubeconfig "$kubeconfig" "$@"; }

step "Starting the development API server"
node bin/metallb.js dev-apiserver --port 0 --kubeconfig-out "$kubeconfig" --data-file "$work/state.json" --service-cidr-v6 fd00:10:96::/112 \
  2>"$work/apiserver.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$kubeconfig" ] && break; sleep 0.1; done
[ -s "$kubeconfig" ] || { echo "demo: the API server did not start; its log:" >&2; cat "$work/apiserver.log" >&2; exit 1; }
k version 2>/dev/null | sed 's/^/  /' || true

step "Installing MetalLB's CRDs and the example configuration"
k apply -f deploy/crds/ | sed 's/^/  /'
k create namespace metallb-system | sed 's/^/  /'
k apply -f examples/config.yaml | sed 's/^/  /'

step "Starting the controller"
node bin/metallb.js controller --kubeconfig "$kubeconfig" --namespace metallb-system \
  --metrics-port 0 --health-probe-port 0 --webhook-mode disabled 2>"$work/controller.log" &
pids+=($!)

step "Creating LoadBalancer Services"
k apply -f examples/services.yaml | sed 's/^/  /'

# Every LoadBalancer Service but wrong-ip (which asks for an address no pool owns) gets one.
want=$(( $(k get svc -A -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.name}{"\n"}{end}' | grep -c .) - 1 ))
for _ in $(seq 100); do
  got=$(k get svc -A -o jsonpath='{range .items[*]}{.status.loadBalancer.ingress[0].ip}{"\n"}{end}' | grep -c . || true)
  [ "$got" -ge "$want" ] && break
  sleep 0.2
done
echo
k get svc -A -o wide
echo
step "Why a Service got its address (kubectl describe)"
k describe svc -n default web | sed -n '/^Events:/,$p'
step "Why wrong-ip stays <pending>"
k describe svc -n default wrong-ip | sed -n '/^Events:/,$p'
step "The pools as the controller sees them"
k get ipaddresspools -n metallb-system
metrics_port=$(grep '"endpoint":"metrics"' "$work/controller.log" | grep -o '"port":[0-9]*' | head -1 | cut -d: -f2 || true)
if [ -n "$metrics_port" ]; then
  step "Controller metrics (http://127.0.0.1:$metrics_port/metrics)"
  curl -s "http://127.0.0.1:$metrics_port/metrics" | grep '^metallb_allocator_addresses_in_use_total' | sed 's/^/  /' || true
fi

if [ "$keep" = true ]; then
  step "Left running"
  echo "  kubectl --kubeconfig $kubeconfig get svc -A"
  echo "  stop with: kill ${pids[*]}"
fi
