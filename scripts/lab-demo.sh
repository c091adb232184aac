#!/usr/bin/env bash
# MetalLB's tutorial, run in the lab: a 3-node cluster in network namespaces on this host, metallb-ts installed,
# a Deployment scaled to 3, exposed as a LoadBalancer Service, reached from the lab's client machine through the node
# that announces it; then that node's cable is cut and the client's requests go on through the next node.
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
  curl http://EXTERNAL-IP from the client machine (answered by the pods in turn)
  arping EXTERNAL-IP from the client: only the announcing node answers, with its MAC
  the announcing node's cable cut: the client's requests go on through the next node
  the cable restored: the node takes its address back

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
missing=()
for tool in node npm ip nsenter nft curl arping kubectl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "lab-demo: missing: ${missing[*]} (Debian: apt-get install nodejs npm iproute2 util-linux nftables curl arping; kubectl >= 1.27 from kubernetes.io)" >&2
  exit 2
fi

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
client_ns=$(metallb lab status -o json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0,"utf8")).client.netns)')

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
# kube-proxy programs a new Service and its endpoints on its own schedule, as in any cluster: a curl right after
# `kubectl expose` can be refused (CI saw it once). Wait until the URL answers, at most 30 s.
wait_http() { # url what
  for _ in $(seq 150); do
    metallb lab exec client -- curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.2
  done
  echo "  $2 ($1) did not answer within 30 s (see: kubectl get endpointslices; the lab's proxy log in /var/run/metallb-lab/logs)" >&2
  exit 1
}

step "From the client ($client_ip): the NodePort, answered by the pods in turn"
wait_http "http://$node_ip:$node_port/" "the NodePort"
for _ in 1 2 3 4 5 6; do
  metallb lab exec client -- curl -s --max-time 3 "http://$node_ip:$node_port/" | tr -d '\n' | sed 's/^/  /'
  echo
done

step "From the client: the EXTERNAL-IP ${ip:-<none>}, answered by the pods in turn"
if [ -z "${ip:-}" ]; then
  echo "  the Service got no address (see: kubectl describe svc lb-hname-svc; kubectl logs -n metallb-system deploy/controller)" >&2
  exit 1
fi
wait_http "http://$ip/" "the EXTERNAL-IP"
for _ in 1 2 3 4 5 6; do
  metallb lab exec client -- curl -s --max-time 3 "http://$ip/" | tr -d '\n' | sed 's/^/  /'
  echo
done

# The node announcing the address (MetalLB's ServiceL2Status), its LAN MAC and the host end of its cable.
owner_of() {
  kubectl get servicel2statuses -n metallb-system -o json | node -e '
    const items = JSON.parse(require("fs").readFileSync(0, "utf8")).items.filter((o) => o.status?.serviceName === "lb-hname-svc");
    process.stdout.write(items.length === 1 ? items[0].status.node : "");' 2>/dev/null || true
}
machine_field() { # node field
  metallb lab status -o json | node -e '
    const s = JSON.parse(require("fs").readFileSync(0, "utf8"));
    process.stdout.write(String(s.nodes.find((n) => n.name === process.argv[1])?.[process.argv[2]] ?? ""));' "$1" "$2"
}
owner=""
for _ in $(seq 100); do owner=$(owner_of); [ -n "$owner" ] && break; sleep 0.2; done
step "Who answers for $ip: $owner (MAC $(machine_field "$owner" mac)), alone"
show kubectl get servicel2statuses -n metallb-system
show metallb lab exec client -- arping -c 3 -w 3 -I eth0 "$ip" || true

cable=$(machine_field "$owner" netns)
step "Cutting $owner's cable (ip link set $cable down: the switch port dies, no goodbye); the client keeps asking"
ip link set "$cable" down
restore_link() { ip link set "$cable" up 2>/dev/null || true; }
trap 'restore_link; cleanup' EXIT
start=$(date +%s%N)
answered=0
for _ in $(seq 300); do
  t=$(( ($(date +%s%N) - start) / 1000000 ))
  # ip netns exec rather than `metallb lab exec`: no Node.js start per request, so the times mean something.
  if body=$(ip netns exec "$client_ns" curl -s --max-time 0.5 "http://$ip/" 2>/dev/null) && [ -n "$body" ]; then
    printf '  +%5d ms  %s\n' "$t" "$body"
    answered=$((answered + 1))
    [ "$answered" -ge 4 ] && break
  else
    printf '  +%5d ms  (no answer)\n' "$t"
  fi
done
if [ "$answered" -lt 4 ]; then echo "lab-demo: the client's requests were not answered after the cut" >&2; exit 1; fi
new_owner=""
for _ in $(seq 100); do new_owner=$(owner_of); [ -n "$new_owner" ] && [ "$new_owner" != "$owner" ] && break; sleep 0.2; done
if [ -z "$new_owner" ] || [ "$new_owner" = "$owner" ]; then echo "lab-demo: no other node took $ip over" >&2; exit 1; fi
echo "  now announced by ${new_owner:-?} (MAC $(machine_field "${new_owner:-}" mac)); requests kube-proxy sends to the pod on $owner fail until its endpoint goes"
show metallb lab exec client -- arping -c 2 -w 2 -I eth0 "$ip" || true

step "Restoring $owner's cable: it sorts first again for this address and takes it back, alone"
restore_link
back=""
for _ in $(seq 300); do back=$(owner_of); [ "$back" = "$owner" ] && break; sleep 0.2; done
if [ "$back" != "$owner" ]; then echo "lab-demo: $owner did not take $ip back (owner: ${back:-none})" >&2; exit 1; fi
show kubectl get servicel2statuses -n metallb-system
show metallb lab exec client -- arping -c 2 -w 2 -I eth0 "$ip" || true

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
