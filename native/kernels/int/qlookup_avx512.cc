// y[i] = table[x[i]] with AVX-512 VBMI: the 256-byte table in four zmm, vpermi2b looks up the low
// 7 bits in the two halves, bit 7 picks one (vpmovb2m + blend). 64 codes per iteration; the tail
// with byte masks. VBMI comes from a target attribute on these functions only: the rest of the
// *_avx512.cc group must also run on CPUs with VNNI but no VBMI (Cascade Lake), and is built
// without it.
#include <immintrin.h>

#include <cstdint>

#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

#define SWQ_VBMI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))

SWQ_VBMI static inline __m512i lookup64(__m512i idx, __m512i t0, __m512i t1, __m512i t2, __m512i t3) {
  const __m512i lo = _mm512_permutex2var_epi8(t0, idx, t1), hi = _mm512_permutex2var_epi8(t2, idx, t3);
  return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
}

SWQ_VBMI void lookup_u8_avx512vbmi(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y) {
  const __m512i t0 = _mm512_loadu_si512((const void*)table), t1 = _mm512_loadu_si512((const void*)(table + 64)),
                t2 = _mm512_loadu_si512((const void*)(table + 128)), t3 = _mm512_loadu_si512((const void*)(table + 192));
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    _mm512_storeu_si512((void*)(y + i), lookup64(_mm512_loadu_si512((const void*)(x + i)), t0, t1, t2, t3));
  if (i < n) {
    const __mmask64 m = ~uint64_t(0) >> (64 - (n - i));
    _mm512_mask_storeu_epi8(y + i, m, lookup64(_mm512_maskz_loadu_epi8(m, x + i), t0, t1, t2, t3));
  }
}

#undef SWQ_VBMI

}  // namespace detail
}  // namespace q
}  // namespace swinq
