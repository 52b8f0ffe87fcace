#!/usr/bin/env bash
# Builds bench/attention-heads.cc against this tree's libswinq_core.a (npm run build first) with the
# AVX2 attention kernel of OLD (a git revision, default main) linked beside it, and runs it.
# usage: bash bench/attention-heads.sh [rev] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-main}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
git show "$rev:native/kernels/int/qattention_avx2.cc" > "$out/old.cc"
flags=(-O3 -DNDEBUG -std=gnu++17 -mavx2 -mfma -mf16c -Inative/include -Inative/kernels/int)
g++ "${flags[@]}" -Dattention_u8s32_u8_avx2=attention_u8s32_u8_avx2_old -c "$out/old.cc" -o "$out/old.o"
g++ "${flags[@]}" bench/attention-heads.cc "$out/old.o" build/libswinq_core.a -lpthread -o "$out/bench"
"$out/bench" "${2:-40}" ${3:-}
