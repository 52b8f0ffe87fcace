#!/usr/bin/env bash
# Builds bench/attention-heads.cc against this tree's libswinq_core.a (npm run build first) with the
# attention kernel of OLD (a git revision, default main) linked beside it, and runs it.
# usage: [KERNEL=avx2|avx512vnni] bash bench/attention-heads.sh [rev] [rounds] [shape index]
# KERNEL (default: avx512vnni where the CPU has it, else avx2) picks the kernel set compared.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:-main}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ -z "${KERNEL:-}" ]; then
  if grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo; then KERNEL=avx512vnni; else KERNEL=avx2; fi
fi
case "$KERNEL" in
  avx2) file=qattention_avx2.cc fn=attention_u8s32_u8_avx2 isa=(-mavx2 -mfma -mf16c) ;;
  avx512vnni) file=qattention_avx512.cc fn=attention_u8s32_u8_avx512vnni
    isa=(-mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512vnni) ;;
  *) echo "KERNEL must be avx2 or avx512vnni" >&2; exit 2 ;;
esac
git show "$rev:native/kernels/int/$file" > "$out/old.cc"
# the old revision's headers beside its kernel (this tree may have changed one it includes)
for h in $(git ls-tree --name-only "$rev" native/kernels/int/ | grep '\.h$'); do git show "$rev:$h" > "$out/$(basename "$h")"; done
flags=(-O3 -DNDEBUG -std=gnu++17 "${isa[@]}" -Inative/include)
g++ "${flags[@]}" -I"$out" -D$fn=${fn}_old -c "$out/old.cc" -o "$out/old.o"
g++ "${flags[@]}" -Inative/kernels/int -DATT_KERNEL=$fn -DATT_NAME="\"$KERNEL\"" bench/attention-heads.cc "$out/old.o" \
  build/libswinq_core.a -lpthread -o "$out/bench"
"$out/bench" "${2:-40}" ${3:-}
