#!/usr/bin/env bash
# The quick-start job: a local redis-server, psd3d-server and a worker on this machine, then
# `psd3d submit --wait` for one prompt: live progress bar, previews saved, GLB written to disk.
#   scripts/demo.sh ["a red cube"] [output.glb]
# The worker is psd3d-worker with the PSD engine on the embedded tiny pack, on CPU: a DRAFT job takes
# about 3 minutes on 2 cores. Extra arguments after the output go to `psd3d submit` (e.g. --method=sds).
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPT=${1:-"a red cube"}
OUT=${2:-demo-out/mesh.glb}
shift $(($# < 2 ? $# : 2))
scripts/install-deps.sh
scripts/build.sh
B=${BUILD_DIR:-build}

run=$(mktemp -d /tmp/psd3d-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$run" --appendonly yes --save '' >"$run/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

"$B/server/psd3d-server" --listen=127.0.0.1:0 --redis=127.0.0.1:$REDIS_PORT --metrics_address= \
  --shutdown_grace_seconds=0 >"$run/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on port" "$run/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$run/server.log")
[ -n "$PORT" ] || { cat "$run/server.log"; exit 1; }

"$B/worker/psd3d-worker" --redis=127.0.0.1:$REDIS_PORT --metrics_address= --device=cpu >"$run/worker.log" 2>&1 &
pids+=($!)

mkdir -p "$(dirname "$OUT")"
echo "psd3d demo: server on 127.0.0.1:$PORT, redis on $REDIS_PORT; submitting \"$PROMPT\""
"$B/client/psd3d" --server=127.0.0.1:$PORT submit "$PROMPT" --wait \
  --output="$OUT" --previews_dir="$(dirname "$OUT")/previews" "$@" ||
  { echo "--- worker log ---"; tail -20 "$run/worker.log"; exit 1; }
echo "psd3d demo: mesh written to $OUT"
