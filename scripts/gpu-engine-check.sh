#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds the engine with CUDA kernels, runs every GPU test
# and the engine core's CPU tests (the glTF validator needs Node, which the GPU machine lacks: CI runs
# it; the models' CPU tests are CI's too: on this machine they take minutes), and prints the engine
# benchmark table.
# Logs and results go to $OUT (or out/ when $OUT is unset).
# SANITIZE lists GPU test executables (of tests/engine) to run once more under compute-sanitizer's memcheck.
#   source .deps/gpu-env.sh; [SANITIZE="marching_tets_gpu_test ..."] scripts/gpu-engine-check.sh [--no-bench]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
B=build-gpu
cmake -S . -B $B -DPSD3D_BUILD_SERVICE=OFF -DPSD3D_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 ||
  { tail -40 "$out/configure.log"; exit 1; }
if ! cmake --build $B -j16 >"$out/build.log" 2>&1; then
  grep -E 'error|Error' "$out/build.log" | head -60
  exit 1
fi
echo "== build ok ($(grep -c '\.cu' "$out/build.log") CUDA compile lines)"
(cd $B && ctest -L gpu -j4 --output-on-failure >"$out/ctest.log" 2>&1;
  cd tests/engine && ctest -L unit -E GltfValidator -j8 --output-on-failure >>"$out/ctest.log" 2>&1)
tail -n 25 "$out/ctest.log"
grep -E 'Failure|FAILED|Expected|Which is|error' "$out/ctest.log" | head -40
sanitizer=$(command -v compute-sanitizer || echo "$(dirname "${CUDACXX:-/usr/local/cuda/bin/nvcc}")/compute-sanitizer")
for t in ${SANITIZE:-}; do
  "$sanitizer" --tool memcheck --error-exitcode 9 "$B/tests/engine/$t" >"$out/memcheck-$t.log" 2>&1
  echo "== memcheck $t: exit $? ($(grep -m1 'ERROR SUMMARY' "$out/memcheck-$t.log"))"
done
if [ "${1:-}" != "--no-bench" ]; then
  $B/bench/engine/psd3d-engine-bench --device=cuda | tee "$out/engine-bench.txt"
fi
