#!/usr/bin/env bash
# Builds and runs bench/pool-wake.cc against this tree's thread pool (docs/latency.md, "Between requests").
# usage: bash bench/pool-wake.sh [pause µs] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O2 -std=c++17 -pthread -Inative/include bench/pool-wake.cc native/core/threadpool.cc -o "$out/pool-wake"
grep -m1 "model name" /proc/cpuinfo
"$out/pool-wake" "$@"
