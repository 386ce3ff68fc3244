#!/usr/bin/env bash
# Installs psd3d's build and test dependencies from Debian 12 packages. Idempotent: does nothing when
# everything is present. Needs root (or sudo). Also installs the npm tools the tests use (glTF
# validator, deploy checks).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS=(cmake ninja-build g++ pkg-config
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libabsl-dev libhiredis-dev prometheus-cpp-dev libssl-dev zlib1g-dev
      libgtest-dev libgmock-dev libbenchmark-dev
      redis-server redis-tools
      libtorch-dev libpng-dev libtinygltf-dev nlohmann-json3-dev
      libopenblas0-openmp
      prometheus curl shellcheck
      openssl)
# The openssl CLI makes the throwaway CA and server certificate of the TLS tests (tests/fixtures.h).
# OpenBLAS replaces the reference BLAS behind LibTorch's matmul (libblas.so.3 alternative): the tiny
# prior's attention runs ~5x faster on CPU (psd3d-pipeline-bench --components).
# Node runs the Khronos glTF validator in the tests; a Node from elsewhere (nodesource) is fine.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
# The deploy tests (tests/deploy): promtool (from prometheus) checks and unit-tests the alert rules;
# `kubectl kustomize` renders deploy/ and needs kustomize v4 or later, which the machine image's kubectl
# (1.32, kustomize v5) has; Debian 12's own kubernetes-client (1.20, kustomize v2) is only a fallback
# and the manifest test says so when it is too old.
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_npm_tools() {
  # The validator's exact version is pinned by tools/gltf-validate/package-lock.json.
  if [ -f tools/gltf-validate/package.json ] && [ ! -d tools/gltf-validate/node_modules/gltf-validator ]; then
    echo "install-deps: npm ci in tools/gltf-validate"
    npm ci --prefix tools/gltf-validate --no-audit --no-fund --loglevel=error >/dev/null
  fi
  # Schema validation, PromQL parsing and Dockerfile lint for tests/deploy (tools/deploy-check/package-lock.json).
  if [ -f tools/deploy-check/package.json ] && [ ! -d tools/deploy-check/node_modules/kubernetes-models ]; then
    echo "install-deps: npm ci in tools/deploy-check"
    npm ci --prefix tools/deploy-check --no-audit --no-fund --loglevel=error >/dev/null
  fi
}
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  install_npm_tools
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_npm_tools
echo "install-deps: done"
