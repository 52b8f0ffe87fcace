#!/usr/bin/env bash
# Objects built with -mavx2 (and *_avx512 ones, with AVX-512) must not define weak (COMDAT) symbols: the linker may pick their
# AVX2-compiled copy of an inline function or template (std::vector growth, a helper in a header)
# for the baseline code too, which then dies with SIGILL on a CPU without AVX2 — a bug no test on
# an AVX2 machine can see. Keep such code out of *_avx2.cc (plain arrays, functions in baseline files).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
objs=$(find "$dir" -name '*_avx2.cc.o' -o -name '*_avx2.o' -o -name '*_avx512.cc.o' -o -name '*_avx512.o' | sort)
[[ -n "$objs" ]] || { echo "check-avx2-objects: no *_avx2 objects under $dir"; exit 1; }
bad=0
for o in $objs; do
  weak=$(nm -C --defined-only "$o" | awk '$2 ~ /^[WVu]$/' | grep -v 'DW.ref.__gxx_personality_v0' || true)
  if [[ -n "$weak" ]]; then echo "$o defines weak symbols:"; echo "$weak" | head -20; bad=1; fi
done
n=$(echo "$objs" | wc -l)
[[ $bad == 0 ]] && echo "check-avx2-objects: $n AVX2/AVX-512 objects, no weak symbols"
exit $bad
