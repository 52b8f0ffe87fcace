#!/usr/bin/env bash
# Builds and runs bench/core-roundtrip.cc: the cache-line round trip between two threads (docs/latency.md).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
g++ -O2 -std=c++17 -pthread bench/core-roundtrip.cc -o "$out/roundtrip"
grep -m1 "model name" /proc/cpuinfo
"$out/roundtrip" "${1:-200000}"
