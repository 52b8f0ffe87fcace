// AVX2 attention (qkernels.h attention_u8), one (window, head) per call; per block of 4 query rows:
//   1. S = (q−zp)(k−zp)ᵀ on a 4-row × 16-column register tile (vpmaddwd on int16 pairs, exact for
//      any codes: |(a−za)(b−zb)| ≤ 65025, pairs ≤ 130050); bias, pre-shift and the row maxima in
//      the tile's epilogue, so no separate max pass;
//   2. e = exp(z − max) (attention_exp) 16 at a time, packed straight to the int16 pairs P·V
//      reads, and the row sums;
//   3. O = e·(v−zp) on a 4-row × 16-dh tile, the row's 256/sum folded into its output requant.
// Only 4 rows of z and e exist at a time, so for N = 197 they stay in L1 next to the packed k, v.
// The scalar reference (qattention.cc) computes the same integers. No std:: containers here
// (scripts/check-avx2-objects.sh).
#include <immintrin.h>

#include <cstring>

#include "qavx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

static inline size_t al32(size_t b) { return (b + 31) / 32 * 32; }

// floor(u / L) for u < 2^17, L ≤ 2^12: (u·M) >> 32 with M = floor(2^32/L) + 1 (as softmax_u8)
static inline __m256i div_small(__m256i u, __m256i M) {
  const __m256i qe = _mm256_srli_epi64(_mm256_mul_epu32(u, M), 32);
  const __m256i qo = _mm256_mul_epu32(_mm256_srli_epi64(u, 32), M);
  return _mm256_blend_epi32(qe, qo, 0xAA);
}

namespace {
struct ExpConsts {
  __m256i M, L, qb, qc, es;
};
// attention_exp on 8 lanes; z ≤ thr (padding, masks) gives d = −31L, so e = 0
inline __m256i exp8(__m256i z, __m256i mx, __m256i thr, const ExpConsts& c) {
  const __m256i d = _mm256_sub_epi32(_mm256_max_epi32(z, thr), mx);
  const __m256i qn = div_small(_mm256_sub_epi32(_mm256_setzero_si256(), d), c.M);
  const __m256i t = _mm256_add_epi32(_mm256_add_epi32(d, _mm256_mullo_epi32(qn, c.L)), c.qb);
  const __m256i poly = _mm256_add_epi32(_mm256_mullo_epi32(t, t), c.qc);
  return _mm256_srlv_epi32(poly, _mm256_add_epi32(qn, c.es));  // counts > 31 give 0
}

// acc[r][b] = Σ_pairs a_r[pair] · m[(b·stride + pair)·8 ..]: 4 broadcast rows × JB 8-lane blocks.
// JB = 2 with named accumulators: GCC compiles the array form with a vmovdqa per accumulator per
// step (32 uops for 8 vpmaddwd, dispatch-bound), this one without.
template <int JB>
inline void tile_4xJB(const int32_t* const* a, const int32_t* m, int64_t pairs, int64_t stride, __m256i (&acc)[4][JB]);
template <>
inline void tile_4xJB<2>(const int32_t* const* a, const int32_t* m, int64_t pairs, int64_t stride, __m256i (&acc)[4][2]) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int32_t *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  const int32_t* m1 = m + stride * 8;
  for (int64_t k = 0; k < pairs; ++k) {
    const __m256i v0 = _mm256_load_si256((const __m256i*)(m + k * 8)), v1 = _mm256_load_si256((const __m256i*)(m1 + k * 8));
    __m256i x = _mm256_set1_epi32(a0[k]);
    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x, v0));
    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x, v1));
    x = _mm256_set1_epi32(a1[k]);
    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x, v0));
    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x, v1));
    x = _mm256_set1_epi32(a2[k]);
    c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(x, v0));
    c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(x, v1));
    x = _mm256_set1_epi32(a3[k]);
    c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(x, v0));
    c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(x, v1));
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}
template <int JB>
inline void tile_4xJB(const int32_t* const* a, const int32_t* m, int64_t pairs, int64_t stride, __m256i (&acc)[4][JB]) {
  for (int r = 0; r < 4; ++r)
    for (int b = 0; b < JB; ++b) acc[r][b] = _mm256_setzero_si256();
  for (int64_t k = 0; k < pairs; ++k) {
    __m256i v[JB];
    for (int b = 0; b < JB; ++b) v[b] = _mm256_load_si256((const __m256i*)(m + (b * stride + k) * 8));
    for (int r = 0; r < 4; ++r) {
      const __m256i x = _mm256_set1_epi32(a[r][k]);
      for (int b = 0; b < JB; ++b) acc[r][b] = _mm256_add_epi32(acc[r][b], _mm256_madd_epi16(x, v[b]));
    }
  }
}

inline void store_u8x8(uint8_t* dst, __m256i v, int n) {  // v ∈ [0, 255]; n ≤ 8 bytes written
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i b = _mm_packus_epi16(w, w);
  if (n == 8) {
    _mm_storel_epi64((__m128i*)dst, b);
  } else {
    alignas(16) uint8_t tmp[16];
    _mm_store_si128((__m128i*)tmp, b);
    std::memcpy(dst, tmp, (size_t)n);
  }
}
}  // namespace

void attention_head_avx2(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y) {
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, ld = 3 * C, w = t / p.H, h = t % p.H;
  const int64_t nb = (N + 7) / 8, n8 = nb * 8, n16 = (N + 15) / 16 * 16, d2 = (dh + 1) / 2, n2 = (N + 1) / 2,
                db = (dh + 7) / 8, d8 = db * 8, w16 = d8 > 2 * d2 ? d8 : 2 * d2;
  const int32_t zp = p.zp;
  const uint8_t* base = qkv + w * N * ld;
  const uint8_t* qb = base + h * dh;
  const uint8_t* kb = base + C + h * dh;
  const uint8_t* vb = base + 2 * C + h * dh;
  // the scratch regions, in the order of attention_scratch_bytes
  char* sp = static_cast<char*>(scratch);
  int32_t* kp = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(n8 * d2 * 4));
  int32_t* qp = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(N * d2 * 4));
  int16_t* vp = reinterpret_cast<int16_t*>(sp);     sp += al32((size_t)(d8 * n2 * 4));
  int32_t* sz = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(4 * n16 * 4));
  int16_t* pe = reinterpret_cast<int16_t*>(sp);     sp += al32((size_t)(4 * n16 * 2));
  int32_t rm[4], rs[4];
  int16_t* row16 = reinterpret_cast<int16_t*>(sp);  // [N + 1][w16]

  // (codes − zp) as int16 rows, zero padded to w16: consecutive int16 pairs are the (d, d+1)
  // pairs vpmaddwd multiplies, so a row read as int32 is its pair vector
  const __m256i vzp = _mm256_set1_epi16((short)zp);
  auto widen = [&](const uint8_t* src, int16_t* dst) {
    int64_t d = 0;
    for (; d + 16 <= dh; d += 16)
      _mm256_storeu_si256((__m256i*)(dst + d), _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(src + d))), vzp));
    for (; d < dh; ++d) dst[d] = (int16_t)((int32_t)src[d] - zp);
    for (; d < w16; ++d) dst[d] = 0;
  };
  const __m256i zero = _mm256_setzero_si256();
  if (dh % 16 == 0) {
    // straight from the codes: q rows are their pair vectors; k in 8×8 int32 transposes
    for (int64_t i = 0; i < N; ++i)
      for (int64_t d = 0; d < dh; d += 16)
        _mm256_storeu_si256((__m256i*)(qp + i * d2 + d / 2), _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(qb + i * ld + d))), vzp));
    for (int64_t jb = 0; jb < nb; ++jb)
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
        int32_t* dst = kp + (jb * d2 + d / 2) * 8;  // pair column c = d/2 + c, lanes = the 8 rows
        _mm256_store_si256((__m256i*)(dst + 0 * 8), _mm256_permute2x128_si256(u0, u4, 0x20));
        _mm256_store_si256((__m256i*)(dst + 1 * 8), _mm256_permute2x128_si256(u1, u5, 0x20));
        _mm256_store_si256((__m256i*)(dst + 2 * 8), _mm256_permute2x128_si256(u2, u6, 0x20));
        _mm256_store_si256((__m256i*)(dst + 3 * 8), _mm256_permute2x128_si256(u3, u7, 0x20));
        _mm256_store_si256((__m256i*)(dst + 4 * 8), _mm256_permute2x128_si256(u0, u4, 0x31));
        _mm256_store_si256((__m256i*)(dst + 5 * 8), _mm256_permute2x128_si256(u1, u5, 0x31));
        _mm256_store_si256((__m256i*)(dst + 6 * 8), _mm256_permute2x128_si256(u2, u6, 0x31));
        _mm256_store_si256((__m256i*)(dst + 7 * 8), _mm256_permute2x128_si256(u3, u7, 0x31));
      }
    // v: rows j and j+1 of each 8-wide d-block interleaved (the odd-N partner row is zero)
    const __m128i z16 = _mm_set1_epi16((short)zp);
    for (int64_t b = 0; b < db; ++b)
      for (int64_t jj = 0; jj < n2; ++jj) {
        const __m128i ra = _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(vb + 2 * jj * ld + b * 8))), z16);
        const __m128i rb = 2 * jj + 1 < N ? _mm_sub_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i*)(vb + (2 * jj + 1) * ld + b * 8))), z16)
                                          : _mm_setzero_si128();
        _mm256_store_si256((__m256i*)(vp + (b * n2 + jj) * 16), _mm256_set_m128i(_mm_unpackhi_epi16(ra, rb), _mm_unpacklo_epi16(ra, rb)));
      }
  } else {
    for (int64_t i = 0; i < N; ++i) {
      widen(qb + i * ld, row16);
      std::memcpy(qp + i * d2, row16, (size_t)d2 * 4);
    }
    // k as [j-block][d-pair][8 j]: an int32 gather of the widened rows
    for (int64_t j = 0; j < N; ++j) widen(kb + j * ld, row16 + j * w16);
    const int32_t* k32 = reinterpret_cast<const int32_t*>(row16);
    for (int64_t jb = 0; jb < nb; ++jb)
      for (int64_t dd = 0; dd < d2; ++dd)
        for (int jj = 0; jj < 8; ++jj) {
          const int64_t j = jb * 8 + jj;
          kp[(jb * d2 + dd) * 8 + jj] = j < N ? k32[j * (w16 / 2) + dd] : 0;
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
  }

  // 1. z = (S + clamp(bias)) >> pre_shift into [N][n16] (INT32_MIN beyond N), row maxima
  const __m128i pre = _mm_cvtsi32_si128(p.sm.pre_shift);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), imin = _mm256_set1_epi32(INT32_MIN),
                blo = _mm256_set1_epi32(-kAttentionBiasClamp), bhi = _mm256_set1_epi32(kAttentionBiasClamp);
  const __m256i tailmask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(N - (nb - 1) * 8)), lane);
  ExpConsts ec;
  ec.M = _mm256_set1_epi32((int)(uint32_t)((uint64_t(1) << 32) / (uint64_t)p.sm.L + 1));
  ec.L = _mm256_set1_epi32(p.sm.L);
  ec.qb = _mm256_set1_epi32(p.sm.qb);
  ec.qc = _mm256_set1_epi32(p.sm.qc);
  ec.es = _mm256_set1_epi32(attention_exp_shift(p.sm, N));
  const __m256i lo = _mm256_set1_epi32(-p.y_zp), hi = _mm256_set1_epi32(p.y_max - p.y_zp), yzp = _mm256_set1_epi32(p.y_zp);
  const int32_t* vp32 = reinterpret_cast<const int32_t*>(vp);
  uint8_t* yo = y + t * N * dh;
  const int32_t* bias_row[4] = {nullptr, nullptr, nullptr, nullptr};
  int32_t rowmax[4];
  for (int64_t i = 0; i < N; i += 4) {
    const int mr = (int)(N - i < 4 ? N - i : 4);
    const int32_t* qr[4];
    for (int r = 0; r < 4; ++r) {
      qr[r] = qp + (i + (r < mr ? r : 0)) * d2;
      if (p.bias && r < mr) bias_row[r] = p.bias + ((t * N + i + r) % p.bias_rows) * N;
    }
    __m256i mx[4] = {imin, imin, imin, imin};
    auto epilogue = [&](int64_t jblk, const __m256i* a4, int JB, int b) {
      const int64_t j0 = (jblk + b) * 8;
      const bool last = j0 + 8 > N;
      for (int r = 0; r < mr; ++r) {
        __m256i v = a4[r * JB + b];
        if (p.bias) {
          const __m256i bv = last ? _mm256_maskload_epi32(bias_row[r] + j0, tailmask)
                                  : _mm256_loadu_si256((const __m256i*)(bias_row[r] + j0));
          v = _mm256_add_epi32(v, _mm256_min_epi32(_mm256_max_epi32(bv, blo), bhi));
        }
        v = _mm256_sra_epi32(v, pre);
        if (last) v = _mm256_blendv_epi8(imin, v, tailmask);
        _mm256_store_si256((__m256i*)(sz + r * n16 + j0), v);
        mx[r] = _mm256_max_epi32(mx[r], v);
      }
    };
    int64_t jb = 0;
    for (; jb + 2 <= nb; jb += 2) {
      __m256i acc[4][2];
      tile_4xJB<2>(qr, kp + jb * d2 * 8, d2, d2, acc);
      epilogue(jb, &acc[0][0], 2, 0);
      epilogue(jb, &acc[0][0], 2, 1);
    }
    if (jb < nb) {
      __m256i acc[4][1];
      tile_4xJB<1>(qr, kp + jb * d2 * 8, d2, d2, acc);
      epilogue(jb, &acc[0][0], 1, 0);
    }
    for (int r = 0; r < mr; ++r) {
      __m128i m4 = _mm_max_epi32(_mm256_castsi256_si128(mx[r]), _mm256_extracti128_si256(mx[r], 1));
      m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, 0x4E));
      m4 = _mm_max_epi32(m4, _mm_shuffle_epi32(m4, 0xB1));
      rowmax[r] = _mm_cvtsi128_si32(m4);
    }
    // 2. exps as int16 (zero beyond N), the row sums and the rows' output scales
    for (int r = 0; r < mr; ++r) {
      const int32_t* zr = sz + r * n16;
      int16_t* er = pe + r * n16;
      const __m256i mxv = _mm256_set1_epi32(rowmax[r]), thr = _mm256_set1_epi32(rowmax[r] - 31 * p.sm.L);
      __m256i sum = _mm256_setzero_si256();
      for (int64_t j = 0; j < n16; j += 16) {
        const __m256i e0 = exp8(_mm256_load_si256((const __m256i*)(zr + j)), mxv, thr, ec);
        const __m256i e1 = j + 8 < n8 ? exp8(_mm256_load_si256((const __m256i*)(zr + j + 8)), mxv, thr, ec) : zero;
        sum = _mm256_add_epi32(sum, _mm256_add_epi32(e0, e1));
        _mm256_store_si256((__m256i*)(er + j), _mm256_permute4x64_epi64(_mm256_packus_epi32(e0, e1), 0xD8));
      }
      __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
      s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
      attention_row_scale(p.mult, p.shift, _mm_cvtsi128_si32(s4), rm + r, rs + r);
    }
    // 3. O = e·(v − zp) for these rows, requantized per row: 4 rows × 16 (or 8) of dh per tile
    const int32_t* pr[4];
    Rq8Fast rq[4];
    for (int r = 0; r < 4; ++r) {
      pr[r] = reinterpret_cast<const int32_t*>(pe + (r < mr ? r : 0) * n16);
      if (r < mr && rs[r] >= 32) rq[r] = rq8_fast_prepare(_mm256_set1_epi32(rm[r]), _mm256_set1_epi32(rs[r]));
    }
    auto pv_epilogue = [&](int64_t dblk, const __m256i* a4, int DB, int b) {
      const int64_t d0 = (dblk + b) * 8;
      const int n = (int)(dh - d0 < 8 ? dh - d0 : 8);
      for (int r = 0; r < mr; ++r) {
        uint8_t* dst = yo + (i + r) * dh + d0;
        if (rs[r] >= 32) {
          store_u8x8(dst, _mm256_add_epi32(requant8_fast_avx2(a4[r * DB + b], rq[r], lo, hi), yzp), n);
        } else {  // ratios ≥ 2^−2 of 256/sum: the general rule, lane by lane
          alignas(32) int32_t tmp[8];
          _mm256_store_si256((__m256i*)tmp, a4[r * DB + b]);
          for (int k = 0; k < n; ++k) dst[k] = (uint8_t)requantize_one(tmp[k], rm[r], rs[r], p.y_zp, 0, p.y_max);
        }
      }
    };
    int64_t b = 0;
    for (; b + 2 <= db; b += 2) {
      __m256i acc[4][2];
      tile_4xJB<2>(pr, vp32 + b * n2 * 8, n2, n2, acc);
      pv_epilogue(b, &acc[0][0], 2, 0);
      pv_epilogue(b, &acc[0][0], 2, 1);
    }
    if (b < db) {
      __m256i acc[4][1];
      tile_4xJB<1>(pr, vp32 + b * n2 * 8, n2, n2, acc);
      pv_epilogue(b, &acc[0][0], 1, 0);
    }
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
