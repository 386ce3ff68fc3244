#!/usr/bin/env bash
# Per-kernel GPU times of the engine benchmark under Nsight Compute (GPU machine): runs
# psd3d-engine-bench with --filter=$2 under ncu and prints each kernel's mean duration over the
# profiled launches (skipping the first 20 matching launches: warm-up).
#   bench/engine/ncu_kernel_times.sh build-gpu/bench/engine/psd3d-engine-bench volume [kernel-regex]
set -uo pipefail
bench=$1 filter=$2 kernels=${3:-.}
ncu --metrics gpu__time_duration.sum --csv -k "regex:$kernels" --launch-skip 20 --launch-count 200 \
  "$bench" --device=cuda --filter="$filter" 2>/dev/null |
  awk -F'","' 'NF > 10 && $NF ~ /[0-9]/ {
      name = substr($5, 1, 60); unit = $(NF - 1); v = $NF; gsub(/[",]/, "", v)
      sum[name] += v; n[name]++; u[name] = unit }
    END { for (k in sum) printf "%10.2f %-8s x%-4d %s\n", sum[k] / n[k], u[k], n[k], k }' | sort -k4
