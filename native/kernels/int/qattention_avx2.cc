// AVX2 window attention (qkernels.h attention_u8), one (window, head) per call. Both products run
// as vpmaddwd on int16 pairs (exact for any codes: |(a−za)(b−zb)| ≤ 65025, pairs ≤ 130050), with
// 4 query rows sharing each loaded k / v vector. No std:: containers here (scripts/check-avx2-objects.sh).
#include <immintrin.h>

#include <cstring>

#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

static inline size_t al32(size_t b) { return (b + 31) / 32 * 32; }

void attention_head_avx2(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y) {
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, ld = 3 * C, w = t / p.H, h = t % p.H;
  const int64_t nb = (N + 7) / 8, n8 = nb * 8, d2 = (dh + 1) / 2, n2 = (N + 1) / 2, db = (dh + 7) / 8, d8 = db * 8;
  const int32_t zp = p.zp;
  const uint8_t* base = qkv + w * N * ld;
  const uint8_t* qb = base + h * dh;
  const uint8_t* kb = base + C + h * dh;
  const uint8_t* vb = base + 2 * C + h * dh;
  // the scratch regions, in the order of attention_scratch_bytes
  char* sp = static_cast<char*>(scratch);
  int16_t* kp = reinterpret_cast<int16_t*>(sp);     sp += al32((size_t)(n8 * d2 * 4));
  int32_t* qp = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(N * d2 * 4));
  int32_t* sm = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)((N * N + 8) * 4));
  uint8_t* pm = reinterpret_cast<uint8_t*>(sp);     sp += al32((size_t)(N * N + 32));
  int32_t* pp = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(N * n2 * 4));
  int16_t* vp = reinterpret_cast<int16_t*>(sp);     sp += al32((size_t)(d8 * n2 * 4));
  int32_t* o = reinterpret_cast<int32_t*>(sp);

  // (codes − zp) as int16 rows, zero padded to an even count: consecutive int16 pairs are the
  // (d, d+1) pairs vpmaddwd multiplies, so a row read as int32 is its pair vector
  int16_t* row16 = reinterpret_cast<int16_t*>(o);  // o is free until P·V: [N + 1][max(2·d2, d8)] int16
  const int64_t w16 = d8 > 2 * d2 ? d8 : 2 * d2;
  const __m256i vzp = _mm256_set1_epi16((short)zp);
  auto widen = [&](const uint8_t* src, int16_t* dst) {
    int64_t d = 0;
    for (; d + 16 <= dh; d += 16)
      _mm256_storeu_si256((__m256i*)(dst + d), _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(src + d))), vzp));
    for (; d < dh; ++d) dst[d] = (int16_t)((int32_t)src[d] - zp);
    for (; d < w16; ++d) dst[d] = 0;
  };
  // q pairs
  for (int64_t i = 0; i < N; ++i) {
    widen(qb + i * ld, row16);
    std::memcpy(qp + i * d2, row16, (size_t)d2 * 4);
  }
  // k as [j-block][d-pair][8 j] pairs: an int32 gather of the widened rows
  for (int64_t j = 0; j < N; ++j) {
    widen(kb + j * ld, row16 + j * w16);
  }
  const int32_t* k32 = reinterpret_cast<const int32_t*>(row16);
  int32_t* kp32 = reinterpret_cast<int32_t*>(kp);
  for (int64_t jb = 0; jb < nb; ++jb)
    for (int64_t dd = 0; dd < d2; ++dd)
      for (int jj = 0; jj < 8; ++jj) {
        const int64_t j = jb * 8 + jj;
        kp32[(jb * d2 + dd) * 8 + jj] = j < N ? k32[j * (w16 / 2) + dd] : 0;
      }
  // v as [d-block][j-pair][8 d][2 j]: rows j and j+1 interleaved
  for (int64_t j = 0; j < N; ++j) widen(vb + j * ld, row16 + j * w16);
  for (int64_t d = 0; d < w16; ++d) row16[N * w16 + d] = 0;  // the odd-N partner row
  for (int64_t b = 0; b < db; ++b)
    for (int64_t jj = 0; jj < n2; ++jj) {
      const __m128i ra = _mm_loadu_si128((const __m128i*)(row16 + (2 * jj) * w16 + b * 8));
      const __m128i rb = _mm_loadu_si128((const __m128i*)(row16 + (2 * jj + 1) * w16 + b * 8));
      _mm256_store_si256((__m256i*)(vp + (b * n2 + jj) * 16), _mm256_set_m128i(_mm_unpackhi_epi16(ra, rb), _mm_unpacklo_epi16(ra, rb)));
    }

  // logits [N][N], 4 query rows per loaded k vector; the ragged last j-block is a masked store so
  // no row's padding overwrites the next row
  const int64_t nrem = N - (nb - 1) * 8;
  const __m256i smask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nrem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int64_t i = 0; i < N; i += 4) {
    const int mr = (int)(N - i < 4 ? N - i : 4);
    const int32_t* q0 = qp + i * d2;
    const int32_t* q1 = mr > 1 ? q0 + d2 : q0;
    const int32_t* q2 = mr > 2 ? q0 + 2 * d2 : q0;
    const int32_t* q3 = mr > 3 ? q0 + 3 * d2 : q0;
    for (int64_t jb = 0; jb < nb; ++jb) {
      const int16_t* kq = kp + jb * d2 * 16;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t dd = 0; dd < d2; ++dd) {
        const __m256i k = _mm256_load_si256((const __m256i*)(kq + dd * 16));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_set1_epi32(q0[dd]), k));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_set1_epi32(q1[dd]), k));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_set1_epi32(q2[dd]), k));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_set1_epi32(q3[dd]), k));
      }
      const __m256i acc[4] = {a0, a1, a2, a3};
      for (int r = 0; r < mr; ++r) {
        int32_t* dst = sm + (i + r) * N + jb * 8;
        if (jb + 1 < nb || nrem == 8) _mm256_storeu_si256((__m256i*)dst, acc[r]);
        else _mm256_maskstore_epi32(dst, smask, acc[r]);
      }
    }
  }
  // softmax over all N rows in one call when the bias rows of this head are one contiguous block
  const int64_t r0 = p.bias ? (t * N) % p.bias_rows : 0;
  if (!p.bias || r0 + N <= p.bias_rows) {
    softmax_u8_avx2(sm, N, N, p.bias ? p.bias + r0 * N : nullptr, N, p.sm, pm);
  } else {
    for (int64_t i = 0; i < N; ++i)
      softmax_u8_avx2(sm + i * N, 1, N, p.bias + ((t * N + i) % p.bias_rows) * N, 1, p.sm, pm + i * N);
  }
  // P rows as int16 j-pairs (zero padded for odd N)
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t* prow = pm + i * N;
    int16_t* pr = reinterpret_cast<int16_t*>(pp + i * n2);
    int64_t j = 0;
    for (; j + 16 <= N; j += 16)
      _mm256_storeu_si256((__m256i*)(pr + j), _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(prow + j))));
    for (; j < N; ++j) pr[j] = prow[j];
    if (N & 1) pr[N] = 0;
  }

  // O = P·(v − zp): 4 rows share each v vector
  for (int64_t i = 0; i < N; i += 4) {
    const int mr = (int)(N - i < 4 ? N - i : 4);
    const int32_t* p0 = pp + i * n2;
    const int32_t* p1 = mr > 1 ? p0 + n2 : p0;
    const int32_t* p2 = mr > 2 ? p0 + 2 * n2 : p0;
    const int32_t* p3 = mr > 3 ? p0 + 3 * n2 : p0;
    for (int64_t b = 0; b < db; ++b) {
      const int16_t* vq = vp + b * n2 * 16;
      __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t jj = 0; jj < n2; ++jj) {
        const __m256i v = _mm256_load_si256((const __m256i*)(vq + jj * 16));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_set1_epi32(p0[jj]), v));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_set1_epi32(p1[jj]), v));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_set1_epi32(p2[jj]), v));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_set1_epi32(p3[jj]), v));
      }
      _mm256_store_si256((__m256i*)(o + i * d8 + b * 8), a0);
      if (mr > 1) _mm256_store_si256((__m256i*)(o + (i + 1) * d8 + b * 8), a1);
      if (mr > 2) _mm256_store_si256((__m256i*)(o + (i + 2) * d8 + b * 8), a2);
      if (mr > 3) _mm256_store_si256((__m256i*)(o + (i + 3) * d8 + b * 8), a3);
    }
  }
  const Requant rq = attention_requant(p);
  uint8_t* yo = y + t * N * dh;
  if (d8 == dh) {
    requantize_avx2(o, N, dh, rq, QType::u8, yo);
  } else {
    for (int64_t i = 0; i < N; ++i) requantize_avx2(o + i * d8, 1, dh, rq, QType::u8, yo + i * dh);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
