#!/usr/bin/env bash
# The service benchmarks of issue 2 in one command: builds psd3d-service-bench (and the psd3d-server
# and psd3d-test-worker it starts) in Release into build-bench/, then runs it. It starts its own
# redis-server and psd3d-server on free loopback ports and prints one table (docs/benchmarks.md).
#   scripts/bench-service.sh [psd3d-service-bench flags, e.g. --level_seconds=5 --fsync=always]
# Run it on an otherwise idle machine: Redis, server, worker and client share the same cores.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in cmake redis-server redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "bench-service: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
BUILD_DIR=${BUILD_DIR:-build-bench}
JOBS=${JOBS:-$(nproc)}
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# The harness reuses the test fixtures, so tests stay on; the LibTorch engine is not involved.
cmake -S . -B "$BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPSD3D_BUILD_TESTS=ON -DPSD3D_BUILD_BENCH=ON \
  -DPSD3D_BUILD_ENGINE=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target psd3d-service-bench
exec "$BUILD_DIR/bench/psd3d-service-bench" "$@"
