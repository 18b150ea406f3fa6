#!/usr/bin/env bash
# Installs wasm-opt (Debian's binaryen package), which `make build` runs on the Wasm module, only when
# it is missing: when present this touches nothing (no apt-get update). Run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
command -v wasm-opt >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-binaryen.sh: wasm-opt missing; run as root (sudo $0)" >&2
  exit 1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold binaryen
command -v wasm-opt >/dev/null
echo "wasm-opt installed: $(wasm-opt --version)"
