#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds the two benchmarks and psd3d-eval once (about a
# minute on 16 cores, no tests), then, alone on the GPU: the engine kernels against their twins, bounds
# and floors; the pipeline's step time per stage for SDS, PSD and PSD without ψ, with the step's prior
# work eager (the presets' default) and replayed as CUDA graphs; the model calls of one coarse step.
# Tables go to $OUT (or out/). FILTER limits the engine rows (psd3d-engine-bench --filter).
# psd3d-eval stays built in build-gpu-eval, so a follow-up call on the still-warm machine can run
# `REBUILD=0 scripts/gpu-eval.sh ...` at once.
# BUILD_DIR reuses a configured build (e.g. gpu-engine-check.sh's build-gpu on the still-warm machine).
#   [BUILD_DIR=build-gpu] [FILTER=hash] scripts/gpu-bench.sh [--quality=standard]
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
source .deps/gpu-env.sh
out=${OUT:-out}
mkdir -p "$out"
quality=${1:---quality=standard}
B=${BUILD_DIR:-build-gpu-eval}
if [ ! -f "$B/CMakeCache.txt" ]; then
  cmake -S . -B "$B" -G Ninja -DPSD3D_BUILD_SERVICE=OFF -DPSD3D_BUILD_TESTS=OFF -DPSD3D_CUDA=ON \
    -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
fi
cmake --build "$B" -j16 --target psd3d-eval psd3d-engine-bench psd3d-pipeline-bench >"$out/build.log" 2>&1 ||
  { grep -E 'error' "$out/build.log" | head -40; exit 1; }
echo "built at ${SECONDS}s"
$B/bench/engine/psd3d-engine-bench --device=cuda --filter="${FILTER:-}" >"$out/engine-bench.txt" 2>&1
P=$B/bench/pipeline/psd3d-pipeline-bench
$P --device=cuda "$quality" --methods=sds,psd,psd_fixed_negative --steps=20 --warmup=3 --set=all.cuda_graphs=0 \
  >"$out/pipeline-steps-eager.txt" 2>&1
$P --device=cuda "$quality" --methods=sds,psd,psd_fixed_negative --steps=20 --warmup=3 --set=all.cuda_graphs=1 \
  >"$out/pipeline-steps-graphs.txt" 2>&1
$P --device=cuda "$quality" --components --steps=20 --warmup=5 >"$out/components.txt" 2>&1
echo "done at ${SECONDS}s"
cat "$out/pipeline-steps-eager.txt" "$out/pipeline-steps-graphs.txt" "$out/components.txt" "$out/engine-bench.txt"
