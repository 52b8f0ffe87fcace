// Element-wise integer ops on AVX-512 (the avx512vnni set): the same integers as the scalar
// references in qkernels.cc and the AVX2 forms in qops_avx2.cc, 32 elements a step, the ragged
// tail under lane masks instead of scalar code.
#include <immintrin.h>

#include <algorithm>

#include "qavx512.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

// Residual add: y = clamp(((a − za)·ma + (b − zb)·mb + 2^(shift−1)) >> shift) + zy, the two products
// one vpmaddwd of the interleaved (a, b) int16 pairs by (ma, mb), as on AVX2. The unpacks work
// inside 128-bit lanes and vpackssdw puts each lane's 8 results back in order.
void add_qq_q_avx512(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y) {
  const int32_t lo = std::max(p.qmin, qtype_min(ty)) - p.zy, hi = std::min(p.qmax, qtype_max(ty)) - p.zy;
  const __m512i za = _mm512_set1_epi16((int16_t)p.za), zb = _mm512_set1_epi16((int16_t)p.zb);
  const __m512i mab = _mm512_set1_epi32((int32_t)(((uint32_t)(uint16_t)p.mb << 16) | (uint16_t)p.ma));
  const __m512i rnd = _mm512_set1_epi32((1 << p.shift) >> 1), lov = _mm512_set1_epi32(lo), hiv = _mm512_set1_epi32(hi),
                zy = _mm512_set1_epi32(p.zy);
  const __m128i shv = _mm_cvtsi32_si128(p.shift);
  const int sa = qtype_size(ta), sb = qtype_size(tb), sy = qtype_size(ty);
  for (int64_t i = 0; i < n; i += 32) {
    const __mmask32 m = first_lanes32(n - i);
    const __m512i av = _mm512_sub_epi16(load32_i16_avx512(ta, (const char*)a + i * sa, m), za);
    const __m512i bv = _mm512_sub_epi16(load32_i16_avx512(tb, (const char*)b + i * sb, m), zb);
    __m512i l = _mm512_madd_epi16(_mm512_unpacklo_epi16(av, bv), mab);  // elements 0-3 of each lane
    __m512i h = _mm512_madd_epi16(_mm512_unpackhi_epi16(av, bv), mab);  // elements 4-7 of each lane
    l = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_sra_epi32(_mm512_add_epi32(l, rnd), shv), lov), hiv), zy);
    h = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_sra_epi32(_mm512_add_epi32(h, rnd), shv), lov), hiv), zy);
    const __m512i w = _mm512_packs_epi32(l, h);  // 32 int16 in order, inside the output type's range
    char* dst = (char*)y + i * sy;
    if (ty == QType::s16) _mm512_mask_storeu_epi16(dst, m, w);
    else _mm256_mask_storeu_epi8(dst, m, _mm512_cvtepi16_epi8(w));  // in range: the truncation is exact
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
