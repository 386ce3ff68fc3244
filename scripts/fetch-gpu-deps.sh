#!/usr/bin/env bash
# Run on the development machine before a GPU-machine run: puts the Debian packages the GPU machine
# lacks into .deps/ (git-ignored): the service's (../shared/device/fetch-debs.sh) plus what the
# engine's tests need there (googletest, libpng, tinygltf). On the GPU machine, name .deps in carry
# and start with `source .deps/gpu-env.sh` (it unpacks every .deps/debs/*.deb once).
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/device/fetch-debs.sh .deps
extra=(libgtest-dev libgmock-dev googletest libpng-dev libpng16-16 zlib1g-dev libtinygltf-dev nlohmann-json3-dev libstb-dev libstb0)
missing=()
for p in "${extra[@]}"; do ls .deps/debs/"${p}"_*.deb >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  (cd .deps/debs && apt-get download "${missing[@]}" 2>&1 | grep -v 'unsandboxed' || true)
fi
du -sh .deps
