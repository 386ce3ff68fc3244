#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds psd3d-tinyworld with CUDA and runs tiny-pack
# training and evaluation steps in order, each a psd3d-tinyworld subcommand. Training state lives in
# build-gpu/tinyworld-ckpt (kept while the machine stays warm), so calling this again with the same step
# resumes a chunk that ended at its time budget (exit 3). The pack is written to models/tiny and copied
# to $OUT with the figures and logs.
#   source .deps/gpu-env.sh; scripts/gpu-tinyworld.sh STEP[:budget_s] ... [-- extra flags for every step]
# Steps: reward, reward_eval, prior, eval-reward, eval-prior, sample, world, tests.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
B=build-gpu
if [ ! -x $B/tools/tinyworld/psd3d-tinyworld ] || [ "${REBUILD:-1}" = 1 ]; then
  cmake -S . -B $B -G Ninja -DPSD3D_BUILD_SERVICE=OFF -DPSD3D_BUILD_BENCH=OFF -DPSD3D_CUDA=ON \
    -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  start=$(date +%s)
  if ! cmake --build $B -j16 --target psd3d-tinyworld >"$out/build.log" 2>&1; then
    grep -E 'error' "$out/build.log" | head -40
    exit 1
  fi
  echo "== build ok in $(($(date +%s) - start)) s"
fi
tw=$B/tools/tinyworld/psd3d-tinyworld
steps=()
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  steps+=("$1"); shift
done
common=(--pack=models/tiny --checkpoint_dir=$B/tinyworld-ckpt --out="$out" --device=cuda)
rc=0
for s in "${steps[@]}"; do
  name=${s%%:*}
  budget=()
  [ "$name" != "$s" ] && budget=(--time_budget="${s#*:}s")
  echo "== $name $(date +%T)"
  case $name in
    reward) $tw train-reward --reward_key=reward --seed=1 "${common[@]}" "${budget[@]}" "${extra[@]}" 2>&1 | tee -a "$out/train-reward.log" ;;
    reward_eval) $tw train-reward --reward_key=reward_eval --reward_width=48 --seed=2 "${common[@]}" "${budget[@]}" "${extra[@]}" 2>&1 | tee -a "$out/train-reward-eval.log" ;;
    prior) $tw train-prior --seed=1 "${common[@]}" "${budget[@]}" "${extra[@]}" 2>&1 | tee -a "$out/train-prior.log" ;;
    eval-reward) $tw eval-reward --seed=1001 "${common[@]}" "${extra[@]}" 2>&1 | tee "$out/eval-reward.log" ;;
    eval-prior) $tw eval-prior --seed=2001 "${common[@]}" "${extra[@]}" 2>&1 | tee "$out/eval-prior.log" ;;
    sample) $tw sample-prior --seed=3001 "${common[@]}" "${extra[@]}" 2>&1 | tee "$out/sample.log" ;;
    world) $tw world-grid --seed=5 --world_views=2 "${common[@]}" 2>&1 ;;
    *) echo "unknown step $name"; exit 2 ;;
  esac
  r=${PIPESTATUS[0]}
  # 3: the chunk ended at its budget with a checkpoint; the next call resumes it. Later steps still run.
  [ $r -eq 3 ] && { echo "== $name paused at its budget (exit 3): call again to resume"; rc=3; continue; }
  [ $r -ne 0 ] && { echo "== $name exited $r"; rc=$r; break; }
done
# What comes back: the device tool returns at most 8 files, so the pack (a chunk that stopped early
# leaves it as it was) and the logs/figures travel as two archives.
mkdir -p models/tiny
tar -czf /tmp/pack.tgz models/tiny && tar -czf /tmp/results.tgz -C "$out" . && rm -rf "${out:?}"/* &&
  mv /tmp/pack.tgz /tmp/results.tgz "$out/"
ls -la "$out" | tail -n +2
exit $rc
