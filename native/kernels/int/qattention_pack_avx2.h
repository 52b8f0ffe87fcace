// Packing one attention head's q, k, v (u8 codes minus the zero point, as int16) into the layouts
// the pair tiles read, for dh % 16 == 0, shared by the AVX2 kernel (L = 8: ymm blocks) and the
// AVX-512 one (L = 16: zmm blocks). Static inline: included by *_avx2.cc and *_avx512.cc objects.
//   qp [N][dh/2] int32: row i's (d, d+1) pairs (broadcast one at a time);
//   kp [⌈N/L⌉][dh/2][L] int32: for a block of L key rows and a pair, the rows' pairs (zero past N);
//   vp [dh/L][⌈N/2⌉][L][2] int16: for a block of L dims and a key-row pair (j, j+1), the dims' pairs
//      (row N, the odd-N partner, is zero).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace swinq {
namespace q {
namespace detail {

template <int L>
static inline void pack_head_dh16(const uint8_t* qb, const uint8_t* kb, const uint8_t* vb, int64_t ld, int64_t N,
                                  int64_t dh, int32_t zp, int32_t* kp, int32_t* qp, int16_t* vp) {
  static_assert(L == 8 || L == 16, "blocks of 8 or 16 lanes");
  const int64_t d2 = dh / 2, n2 = (N + 1) / 2, db = dh / 8, nbL = (N + L - 1) / L * (L / 8);  // 8-row blocks
  const __m256i vzp = _mm256_set1_epi16((short)zp), zero = _mm256_setzero_si256();
  // straight from the codes: q rows are their pair vectors; k in 8×8 int32 transposes
  for (int64_t i = 0; i < N; ++i)
    for (int64_t d = 0; d < dh; d += 16)
      _mm256_storeu_si256((__m256i*)(qp + i * d2 + d / 2), _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(qb + i * ld + d))), vzp));
  for (int64_t jb = 0; jb < nbL; ++jb)
    for (int64_t d = 0; d < dh; d += 16) {
      __m256i r[8];
      for (int k = 0; k < 8; ++k) {
        const int64_t j = jb * 8 + k;
        r[k] = j < N ? _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(kb + j * ld + d))), vzp) : zero;
      }
      const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]),
                    t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]),
                    t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]),
                    t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
      const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2),
                    u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3),
                    u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6),
                    u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
      int32_t* dst = kp + ((jb / (L / 8)) * d2 + d / 2) * L + (jb % (L / 8)) * 8;  // pair column d/2 + c, 8 of the L lanes
      _mm256_store_si256((__m256i*)(dst + 0 * L), _mm256_permute2x128_si256(u0, u4, 0x20));
      _mm256_store_si256((__m256i*)(dst + 1 * L), _mm256_permute2x128_si256(u1, u5, 0x20));
      _mm256_store_si256((__m256i*)(dst + 2 * L), _mm256_permute2x128_si256(u2, u6, 0x20));
      _mm256_store_si256((__m256i*)(dst + 3 * L), _mm256_permute2x128_si256(u3, u7, 0x20));
      _mm256_store_si256((__m256i*)(dst + 4 * L), _mm256_permute2x128_si256(u0, u4, 0x31));
      _mm256_store_si256((__m256i*)(dst + 5 * L), _mm256_permute2x128_si256(u1, u5, 0x31));
      _mm256_store_si256((__m256i*)(dst + 6 * L), _mm256_permute2x128_si256(u2, u6, 0x31));
      _mm256_store_si256((__m256i*)(dst + 7 * L), _mm256_permute2x128_si256(u3, u7, 0x31));
    }
  // v: rows j and j+1 of each 8-wide d-block interleaved (the odd-N partner row is zero)
  const __m128i z16 = _mm_set1_epi16((short)zp);
  for (int64_t b = 0; b < db; ++b)
    for (int64_t jj = 0; jj < n2; ++jj) {
      const __m128i ra = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(vb + 2 * jj * ld + b * 8))), z16);
      const __m128i rb = 2 * jj + 1 < N ? _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(vb + (2 * jj + 1) * ld + b * 8))), z16)
                                        : _mm_setzero_si128();
      _mm256_store_si256((__m256i*)(vp + ((b / (L / 8)) * n2 + jj) * 2 * L + (b % (L / 8)) * 16), _mm256_set_m128i(_mm_unpackhi_epi16(ra, rb), _mm_unpacklo_epi16(ra, rb)));
    }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
