#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds psd3d-eval with CUDA and runs it as $SHARDS
# (default 8) shards sharing the GPU, then summarizes. Runs resume from build-gpu-eval/EVAL_DIR while the
# machine stays warm, and across machines from gpu-results/EVAL_DIR.tgz (carry gpu-results too): the
# results come back as $OUT/EVAL_DIR.tgz (CSVs, logs, summary.md, grid.png; not the GLBs), one file,
# so copy it to gpu-results/ before the next call. summary.md and grid.png also come back loose.
# BUDGET_S counts from the script's start (the build included); runs stop starting when it is spent.
# The grid needs the seed-1 GLBs, which stay on the machine: keep grid.png from the call that finished
# seed 1 (runs go seed-major), since a later call on a fresh machine draws empty cells.
#   source .deps/gpu-env.sh; [SHARDS=12] [REBUILD=0] scripts/gpu-eval.sh EVAL_DIR BUDGET_S [psd3d-eval flags...]
set -uo pipefail
cd "$(dirname "$0")/.."
name=$1 budget=$2
shift 2
out=${OUT:-out}
shards=${SHARDS:-8}
mkdir -p "$out"
B=build-gpu-eval
if [ ! -x $B/tools/eval/psd3d-eval ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B $B -G Ninja -DPSD3D_BUILD_SERVICE=OFF -DPSD3D_BUILD_TESTS=OFF -DPSD3D_BUILD_BENCH=OFF \
    -DPSD3D_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build $B -j16 --target psd3d-eval >"$out/build.log" 2>&1 || { grep -E 'error' "$out/build.log" | head -40; exit 1; }
fi
dir=$B/$name
if [ ! -d "$dir" ] && [ -f "gpu-results/$name.tgz" ]; then
  tar xzf "gpu-results/$name.tgz" -C $B && echo "resumed from gpu-results/$name.tgz: $(cat "$dir"/runs-*.csv | wc -l) CSV lines"
fi
mkdir -p "$dir"
left=$((budget - SECONDS))
[ "$left" -gt 30 ] || { echo "gpu-eval: no time left after the build ($SECONDS s)"; left=30; }
for ((i = 0; i < shards; ++i)); do
  OMP_NUM_THREADS=1 $B/tools/eval/psd3d-eval --device=cuda --shard=$i/$shards --out="$dir" --time_budget="$left" "$@" \
    >>"$dir/shard-$i.log" 2>&1 &
done
wait
$B/tools/eval/psd3d-eval summarize --out="$dir" >"$dir/summarize.log" 2>&1
tar czf "$out/$name.tgz" -C $B --exclude='*.glb' "$name"
cp "$dir"/summary.md "$dir"/grid.png "$out/" 2>/dev/null
head -60 "$dir/summary.md"
