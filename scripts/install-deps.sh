#!/usr/bin/env bash
# Installs psd3d's build and test dependencies from Debian 12 packages. Idempotent: does nothing when
# everything is present. Needs root (or sudo).
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libabsl-dev libhiredis-dev prometheus-cpp-dev libssl-dev zlib1g-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      redis-server redis-tools)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
