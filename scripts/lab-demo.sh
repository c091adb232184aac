#!/usr/bin/env bash
# MetalLB's tutorial, run in the lab: a 3-node cluster in network namespaces on this host, metallb-ts installed,
# a Deployment scaled to 3, exposed as a LoadBalancer Service, and reached from the lab's client machine.
set -euo pipefail

usage() {
  cat <<'TXT'
Usage: sudo scripts/lab-demo.sh [--keep] [--nodes N]

Starts `metallb lab up` (3 nodes, metallb-ts installed with a pool over the lab's Service range), then runs the
tutorial with the real kubectl:

  kubectl create deployment lb-hname-pods --image=sysnet4admin/echo-hname
  kubectl scale deployment lb-hname-pods --replicas=3
  kubectl expose deployment lb-hname-pods --type=LoadBalancer --name=lb-hname-svc --port=80
  kubectl get svc lb-hname-svc
  curl from the client machine

and removes the lab at the end.

  --keep      leave the lab running (prints how to use it; `metallb lab down` removes it)
  --nodes N   number of nodes (default 3)
  -h, --help  this text
TXT
}

keep=false
nodes=3
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --keep) keep=true ;;
    --nodes) nodes="${2:?--nodes needs a number}"; shift ;;
    *) echo "lab-demo: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" != 0 ]; then echo "lab-demo: the lab needs root; run: sudo $0 $*" >&2; exit 2; fi

cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
metallb() { node bin/metallb.js "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

cleanup() {
  if [ "$keep" = false ]; then
    step "Removing the lab"
    metallb lab down
  fi
}
trap cleanup EXIT

step "Starting the lab (metallb lab up --nodes $nodes)"
metallb lab up --nodes "$nodes"
export KUBECONFIG
KUBECONFIG=$(metallb lab status -o json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).kubeconfig)')
client_ip=$(metallb lab status -o json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).client.ipv4)')

step "The cluster"
show kubectl get nodes -o wide
show kubectl get pods -n metallb-system -o wide
show kubectl get ipaddresspools,l2advertisements -n metallb-system

step "The tutorial"
show kubectl create deployment lb-hname-pods --image=sysnet4admin/echo-hname
show kubectl scale deployment lb-hname-pods --replicas=3
show kubectl expose deployment lb-hname-pods --type=LoadBalancer --name=lb-hname-svc --port=80
show kubectl rollout status deployment lb-hname-pods --timeout=120s
for _ in $(seq 100); do
  ip=$(kubectl get svc lb-hname-svc -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
  [ -n "$ip" ] && break
  sleep 0.2
done
show kubectl get pods -o wide
show kubectl get svc lb-hname-svc

node_port=$(kubectl get svc lb-hname-svc -o jsonpath='{.spec.ports[0].nodePort}')
node_ip=$(kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}' | cut -d' ' -f1)
step "From the client ($client_ip): the NodePort, answered by the pods in turn"
for _ in 1 2 3 4 5 6; do
  metallb lab exec client -- curl -s --max-time 3 "http://$node_ip:$node_port/" | tr -d '\n' | sed 's/^/  /'
  echo
done

step "From the client: the EXTERNAL-IP ${ip:-<none>}"
if [ -n "${ip:-}" ] && metallb lab exec client -- curl -s --max-time 3 "http://$ip/" | sed 's/^/  /'; then
  :
else
  echo "  not answered: announcing the address on the LAN is the speaker's job, and the speaker is not written yet"
  echo "  (the Service has its address and kube-proxy serves it on every node; nothing answers ARP for it)."
fi

step "Cleaning up the tutorial"
show kubectl delete svc lb-hname-svc
show kubectl delete deployment lb-hname-pods
show kubectl get all

if [ "$keep" = true ]; then
  step "Left running"
  echo "  export KUBECONFIG=$KUBECONFIG"
  echo "  node bin/metallb.js lab status"
  echo "  node bin/metallb.js lab down"
fi
