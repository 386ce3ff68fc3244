#!/usr/bin/env bash
# On the GPU machine (device tool; carry .deps): builds the psd3d CLI with CUDA and runs
# `psd3d generate` jobs side by side on the GPU, one per line of a jobs file:
#   NAME PROMPT-AND-FLAGS...        e.g.  cube_cfg20 "a red cube" --quality=standard --set=all.guidance_scale=20
# Each job's log and previews land in $OUT/NAME/ and come back as one archive (also when the call is
# cut short). Each job gets at most JOB_TIMEOUT seconds (default 300).
#   source .deps/gpu-env.sh; scripts/gpu-generate.sh JOBS_FILE [PARALLEL=4]
set -uo pipefail
cd "$(dirname "$0")/.."
jobs_file=$1
parallel=${2:-4}
out=${OUT:-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
B=build-gpu-full
# GLBs stay behind (the device returns files up to 16 MB): their sizes are listed in glbs.txt.
pack() {
  (cd "$out" && find . -name '*.glb' -printf '%p %s\n' >glbs.txt)
  tar -czf /tmp/generate.tgz -C "$out" --exclude=generate.tgz --exclude='*.glb' . && rm -rf "${out:?}"/* &&
    mv /tmp/generate.tgz "$out/"
}
trap pack EXIT
if [ ! -x $B/client/psd3d ] || [ "${REBUILD:-1}" = 1 ]; then
  # Some carried .pc files name /usr/include outright (hiredis): point them at the unpacked tree.
  sed -i "s|=/usr/|=$PSD3D_DEPS/usr/|" "$PSD3D_DEPS"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc
  cmake -S . -B $B -G Ninja -DPSD3D_BUILD_TESTS=OFF -DPSD3D_BUILD_BENCH=OFF -DPSD3D_CUDA=ON \
    -DCMAKE_BUILD_TYPE=Release >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  start=$(date +%s)
  cmake --build $B -j16 --target psd3d >"$out/build.log" 2>&1 || { grep -E 'error' "$out/build.log" | head -40; exit 1; }
  echo "== build ok in $(($(date +%s) - start)) s"
fi
# $out is absolute; the generate binary is addressed from the repo root.
root=$(pwd)
while read -r name rest; do
  [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 0.5; done
  (cd "$root" && mkdir -p "$out/$name" && cd "$out/$name" && start=$(date +%s.%N) &&
    eval "timeout ${JOB_TIMEOUT:-300} \"$root/$B/client/psd3d\" generate $rest -o mesh.glb --previews_dir=previews --device=cuda" >log.txt 2>&1;
    rc=$?; printf '%-28s rc=%d %6.1fs  %s\n' "$name" $rc "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b - a}')" \
      "$(tr '\r' '\n' <log.txt | grep -v '^$' | tail -1)") &
done <"$jobs_file"
wait
