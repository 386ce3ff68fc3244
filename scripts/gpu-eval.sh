#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds psd3d-eval with CUDA and runs it as 8 shards
# sharing the GPU, resuming what an earlier call left in build-gpu-eval/EVAL_DIR, then summarizes.
# summary.md, grid.png and the CSVs come back in $OUT (the GLBs stay on the machine).
#   source .deps/gpu-env.sh; scripts/gpu-eval.sh EVAL_DIR BUDGET_S [psd3d-eval flags...]
set -uo pipefail
cd "$(dirname "$0")/.."
name=$1 budget=$2
shift 2
out=${OUT:-out}
mkdir -p "$out"
B=build-gpu-eval
if [ ! -x $B/tools/eval/psd3d-eval ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B $B -G Ninja -DPSD3D_BUILD_SERVICE=OFF -DPSD3D_BUILD_TESTS=OFF -DPSD3D_BUILD_BENCH=OFF \
    -DPSD3D_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build $B -j16 --target psd3d-eval >"$out/build.log" 2>&1 || { grep -E 'error' "$out/build.log" | head -40; exit 1; }
fi
dir=$B/$name
mkdir -p "$dir"
for i in 0 1 2 3 4 5 6 7; do
  OMP_NUM_THREADS=2 $B/tools/eval/psd3d-eval --device=cuda --shard=$i/8 --out="$dir" --time_budget="$budget" "$@" \
    >"$dir/shard-$i.log" 2>&1 &
done
wait
$B/tools/eval/psd3d-eval summarize --out="$dir" >"$dir/summarize.log" 2>&1
cp "$dir"/runs-*.csv "$dir"/summary.md "$dir"/grid.png "$dir"/*.log "$out/" 2>/dev/null
cat "$dir/summary.md" | head -60
