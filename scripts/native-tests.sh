#!/usr/bin/env bash
# Builds and runs the native (C++) tests with ctest. SANITIZE=1 builds them with ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build-tests
flags=(-DSWINQ_TESTS=ON)
if [[ "${SANITIZE:-0}" == "1" ]]; then dir=build-asan; flags+=(-DSWINQ_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
cmake -S . -B "$dir" "${flags[@]}" > /dev/null
cmake --build "$dir" --parallel 2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$dir" --output-on-failure
