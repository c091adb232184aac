#!/usr/bin/env bash
# Installs the Debian packages metallb-ts's build, tests and lab use (Debian 12, as root); already installed ones are
# left alone. Used by .ci/run and by the README's commands.
set -euo pipefail
case "${1:-}" in
  -h|--help) echo "Usage: scripts/install-deps.sh   (as root) installs the Debian packages the build, the tests and the lab need"; exit 0 ;;
esac
if [ "$(id -u)" != 0 ]; then echo "install-deps: run as root (apt-get)" >&2; exit 2; fi

# The native addon (node-gyp): python3 make g++. The lab and the speaker: iproute2 nftables arping ndisc6 curl tcpdump.
# Real peers the tests run: bird2 frr gobgpd serf; the official Python client: python3-kubernetes. The failover
# benchmark's peer: keepalived.
packages=(iproute2 arping ndisc6 nftables bird2 frr gobgpd serf tcpdump keepalived openssl ca-certificates unzip curl python3 python3-kubernetes make g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start their daemons; the tests and the lab run their own copies in namespaces.
for svc in bird frr gobgpd keepalived; do systemctl disable --now "$svc" >/dev/null 2>&1 || true; done

# kubectl is not a Debian 12 package (Debian's kubernetes-client is 1.20, too old); the tests and the lab need >= 1.27.
if ! command -v kubectl >/dev/null; then
  echo "install-deps: kubectl is not on the PATH; install kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/)" >&2
  exit 1
fi
