#!/usr/bin/env bash
# The one test command (README, CI): installs dependencies, builds, runs every test with CTest.
# Tests start their own redis-server and psd3d processes on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j "${JOBS:-2}" "$@"
