#!/usr/bin/env bash
# The Docker build context (.dockerignore's allowlist) holds what each image's CMake build needs:
# configures the project from a copy of just that context with each Dockerfile's own -D flags (the
# worker's CUDA ones swapped for this machine's CPU LibTorch) and checks the targets they build exist.
# Also lints the image scripts with shellcheck and runs docker/runtime-packages.sh on the server.
#   tests/deploy/docker_context_test.sh REPO_ROOT SERVER_BINARY
set -euo pipefail
root=$1
server_bin=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ctx=$tmp/context
mkdir -p "$ctx"
(cd "$root" && sed -n 's/^!//p' .dockerignore | while read -r p; do
  [ -e "$p" ] || { echo "FAIL .dockerignore allows $p, which does not exist"; exit 1; }
  cp -r --parents "$p" "$ctx/"
done)

configure() {  # $1: Dockerfile, $2: name; then the targets the Dockerfile builds
  local file=$1 name=$2
  shift 2
  mapfile -t defs < <(grep -o -- '-D[A-Za-z0-9_]*=[^ ]*' "$root/$file" | tr -d '"' |
    grep -v -e '^-DCMAKE_PREFIX_PATH=' -e '^-DCMAKE_CUDA_ARCHITECTURES=' -e '^-DPSD3D_CUDA=')
  [ "$name" = worker ] && defs+=(-DPSD3D_CUDA=OFF)
  echo "== $file: cmake ${defs[*]}"
  cmake -S "$ctx" -B "$tmp/$name" -G Ninja "${defs[@]}" >"$tmp/$name.log" 2>&1 ||
    { tail -30 "$tmp/$name.log"; echo "FAIL $file: CMake cannot configure from the build context"; exit 1; }
  local targets
  targets=$(ninja -C "$tmp/$name" -t targets all)  # not piped into grep -q: SIGPIPE under pipefail
  for t in "$@"; do
    grep -q "^$t:" <<<"$targets" || { echo "FAIL $file: no target $t"; exit 1; }
  done
}
configure docker/server.Dockerfile server psd3d-server psd3d
configure docker/worker.Dockerfile worker psd3d-worker psd3d

shellcheck "$root/docker/runtime-packages.sh" "$root/deploy/base/deletion-cost.sh"
pkgs=$("$root/docker/runtime-packages.sh" "$server_bin")
for p in 'libgrpc++1.51' libprotobuf32 libhiredis0.14 libprometheus-cpp-pull1.0; do
  grep -qx -- "$p" <<<"$pkgs" || { echo "FAIL runtime-packages.sh missed $p: $pkgs"; exit 1; }
done
if grep -q -- '-dev$' <<<"$pkgs"; then echo "FAIL runtime-packages.sh lists -dev packages: $pkgs"; exit 1; fi
echo "docker context: both images configure from it; runtime packages: $(echo $pkgs)"
