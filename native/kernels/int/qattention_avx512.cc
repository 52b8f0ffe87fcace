// AVX-512 VNNI attention (qkernels.h attention_u8) for heads with dh a multiple of 16 (every Swin
// window and ViT head; others run the AVX2 kernel). One zmm lane per query row: blocks of 16 rows,
//   1. z = ((q−zp)(k−zp)ᵀ + bias) >> pre_shift for every key, one zmm per key, as u8 × s8 products
//      (vpdpbusd: four dims a lane, the q codes as they are in registers, k − 128 broadcast) plus a
//      row term and a key term: Σ(q−zp)(k−zp) = Σ q·(k−128) + (128−zp)·Σq − zp·Σ(k−zp), exact in
//      int32 (each term < 2^24 for dh ≤ 256); the bias read key-major (AttentionParams::bias_by_key)
//      so a key's 16 rows are one load; the running row maximum is a lane-wise max;
//   2. e = exp(z − max) (attention_exp) and the row sums, lane-wise again, stored as (e_j, e_j+1)
//      int16 pairs;
//   3. O = e·(v−zp) for 16 dims at a time (16 accumulators, the v pair broadcast), requantized per
//      lane with the row's 256/sum folded in (attention_row_scale), then a 16×16 byte transpose
//      into the rows of y.
//   4. the last N % 16 ≤ kRowsByKeys rows (Swin's 49 = 3·16 + 1) one at a time the other way round,
//      keys in lanes (rows_keys_in_lanes), instead of a 16-lane block that is nearly all padding.
// No horizontal reductions in the blocks and no padding of the key axis (N = 49 used 64 key lanes
// per row in the row-per-register kernel this replaced; docs/integer-kernels.md). The scalar
// reference (qattention.cc) computes the same integers. No std:: containers here
// (scripts/check-avx2-objects.sh).
#include <immintrin.h>

#include <cstring>

#include "qavx2.h"
#include "qavx512.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

namespace {
// Leftover rows (N % 16) up to this many go the keys-in-lanes way (docs/integer-kernels.md)
constexpr int64_t kRowsByKeys = 8;

struct Exp16 {
  __m512i mult, qb, qc, es, m255;
  __m128i shift;
};
// attention_exp on 16 lanes, as exp8 in qattention_avx2.cc: u = mx − max(z, thr) ∈ [0, 31L], u and
// exp_mult < 2^15 with zero high halves, so vpmaddwd is the product; shift counts > 31 give 0
inline __m512i exp16(__m512i z, __m512i mx, __m512i thr, const Exp16& c) {
  const __m512i u = _mm512_sub_epi32(mx, _mm512_max_epi32(z, thr));
  const __m512i x = _mm512_srl_epi32(_mm512_madd_epi16(u, c.mult), c.shift);
  const __m512i t = _mm512_sub_epi32(c.qb, _mm512_and_si512(x, c.m255));
  const __m512i poly = _mm512_add_epi32(_mm512_madd_epi16(t, t), c.qc);
  return _mm512_srlv_epi32(poly, _mm512_add_epi32(_mm512_srli_epi32(x, 8), c.es));
}

// acc += a · (the int16 pair at b, in every lane): vpdpwssd with an embedded broadcast, one
// instruction where GCC 12 emits a vpbroadcastd and the vpdpwssd from the intrinsics
static inline __attribute__((always_inline)) __m512i dpwssd_bcast(__m512i acc, __m512i a, const int32_t* b) {
  __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*b));
  return acc;
}
// acc += Σ of the four u8 × s8 products of a (u8 codes) and the four s8 at b (in every lane)
static inline __attribute__((always_inline)) __m512i dpbusd_bcast(__m512i acc, __m512i a, const int32_t* b) {
  __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(a), "m"(*b));
  return acc;
}

// Step 1 for KG keys from j0 and one chunk of NP dwords (4 dims each) of the head dim: z (+)= q·(k − 128)
// (kr: the chunk's dwords of key j0, key k at kr + k·NP); first chunk: starting from the row term
// rq + the key's term ck; last chunk: + bias (bt: key j0's 16 rows, ldb ints a key), >> pre, and the
// running maximum mx. KG independent vpdpbusd chains.
template <int NP, int KG, bool kFirst, bool kLast>
inline __attribute__((always_inline)) void qk_group(const __m512i (&q)[NP], const int32_t* kr, __m512i rq, const int32_t* ck,
                                                    const int32_t* bt, int64_t ldb, __m128i pre, int32_t* z, __m512i& mx) {
  __m512i acc[KG];
  for (int k = 0; k < KG; ++k)
    acc[k] = kFirst ? _mm512_add_epi32(rq, _mm512_set1_epi32(ck[k])) : _mm512_loadu_si512((const void*)(z + k * 16));
  for (int p = 0; p < NP; ++p)
    for (int k = 0; k < KG; ++k) acc[k] = dpbusd_bcast(acc[k], q[p], kr + k * NP + p);
  for (int k = 0; k < KG; ++k) {
    __m512i v = acc[k];
    if (kLast) {
      v = _mm512_sra_epi32(_mm512_add_epi32(v, _mm512_loadu_si512((const void*)(bt + k * ldb))), pre);
      mx = _mm512_max_epi32(mx, v);
    }
    _mm512_storeu_si512((void*)(z + k * 16), v);
  }
}

// Step 1 over every key for the chunk of dwords [c0, c0 + NP) (kc: the chunk's [N][NP] key dwords):
// groups of KG keys, then of 4, then single keys.
template <int NP, bool kFirst, bool kLast>
__attribute__((noinline)) void qk_keys(const int32_t* qt, const int32_t* kc, int64_t N, int64_t c0, __m512i rq,
                                       const int32_t* ck, const int32_t* bt, int64_t ldb, __m128i pre, int32_t* z,
                                       __m512i* mx_io) {
  constexpr int KG = NP >= 12 ? 8 : 16;  // NP q registers + KG accumulators
  __m512i q[NP];
  for (int p = 0; p < NP; ++p) q[p] = _mm512_loadu_si512((const void*)(qt + (c0 + p) * 16));
  __m512i mx = *mx_io;
  int64_t j = 0;
  for (; j + KG <= N; j += KG)
    qk_group<NP, KG, kFirst, kLast>(q, kc + j * NP, rq, ck + j, bt + j * ldb, ldb, pre, z + j * 16, mx);
  for (; j + 4 <= N; j += 4) qk_group<NP, 4, kFirst, kLast>(q, kc + j * NP, rq, ck + j, bt + j * ldb, ldb, pre, z + j * 16, mx);
  for (; j < N; ++j) qk_group<NP, 1, kFirst, kLast>(q, kc + j * NP, rq, ck + j, bt + j * ldb, ldb, pre, z + j * 16, mx);
  *mx_io = mx;
}

// The chunk of at most 16 dwords that dword c0 starts (dh % 16 == 0: a multiple of 4 dwords).
inline int64_t qk_chunk(int64_t d4, int64_t c0) { return d4 - c0 >= 16 ? 16 : d4 - c0; }

// Step 1 over the whole head dim: chunks of 16 dwords (the q codes of a chunk stay in registers),
// a last chunk of 4, 8 or 12: chunk c0's [N][np] key dwords at k8 + c0·N.
inline __m512i qk_rows16(const int32_t* qt, const int32_t* k8, int64_t N, int64_t d4, __m512i rq, const int32_t* ck,
                         const int32_t* bt, int64_t ldb, __m128i pre, int32_t* z) {
  __m512i mx = _mm512_set1_epi32(INT32_MIN);
  for (int64_t c0 = 0; c0 < d4;) {
    const int64_t np = qk_chunk(d4, c0);
    const bool first = c0 == 0, last = c0 + np == d4;
    const int32_t* kc = k8 + c0 * N;
#define SWQ_QK(NP)                                                                                        \
  case NP:                                                                                                \
    if (first && last) qk_keys<NP, true, true>(qt, kc, N, c0, rq, ck, bt, ldb, pre, z, &mx);              \
    else if (first) qk_keys<NP, true, false>(qt, kc, N, c0, rq, ck, bt, ldb, pre, z, &mx);                \
    else if (last) qk_keys<NP, false, true>(qt, kc, N, c0, rq, ck, bt, ldb, pre, z, &mx);                 \
    else qk_keys<NP, false, false>(qt, kc, N, c0, rq, ck, bt, ldb, pre, z, &mx);                          \
    break;
    switch (np) { SWQ_QK(4) SWQ_QK(8) SWQ_QK(12) SWQ_QK(16) default: break; }
#undef SWQ_QK
    c0 += np;
  }
  return mx;
}

// dst[g][l] = dword g of row l (l < rows; 0 beyond) for the d4 dwords of 16 rows, row l at
// src + l·ld bytes (d4 % 4 == 0): per 16 bytes, rows l, l + 4, l + 8, l + 12 in the lanes of one zmm,
// then a 4×4 dword transpose inside each lane. Returns each lane's sum of its row's bytes (u8).
inline __m512i transpose_rows16_u8(const uint8_t* src, int64_t ld, int64_t d4, int rows, int32_t* dst) {
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t g = 0; g < d4; g += 4) {
    __m128i X[16];
    for (int r = 0; r < 16; ++r) X[r] = r < rows ? _mm_loadu_si128((const __m128i*)(src + r * ld + 4 * g)) : _mm_setzero_si128();
    __m512i A[4];
    for (int k = 0; k < 4; ++k)
      A[k] = _mm512_inserti32x4(
          _mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(X[k]), X[k + 4], 1), X[k + 8], 2), X[k + 12], 3);
    const __m512i t0 = _mm512_unpacklo_epi32(A[0], A[1]), t1 = _mm512_unpackhi_epi32(A[0], A[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(A[2], A[3]), t3 = _mm512_unpackhi_epi32(A[2], A[3]);
    const __m512i T[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                          _mm512_unpackhi_epi64(t1, t3)};
    for (int d = 0; d < 4; ++d) {
      _mm512_storeu_si512((void*)(dst + (g + d) * 16), T[d]);
      sum = _mm512_dpbusd_epi32(sum, T[d], ones);
    }
  }
  return sum;
}

// X[d] holds dim d of 16 rows (byte l = row l); afterwards X[l] holds row l's 16 dims.
inline void transpose16x16_u8(__m128i (&X)[16]) {
  __m128i a[16], b[16];
  for (int k = 0; k < 8; ++k) {  // 16-bit units: (d 2k, 2k+1) of rows 0–7 | 8–15
    a[k] = _mm_unpacklo_epi8(X[2 * k], X[2 * k + 1]);
    a[k + 8] = _mm_unpackhi_epi8(X[2 * k], X[2 * k + 1]);
  }
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 4; ++k) {  // 32-bit units: d 4k…4k+3 of rows 8h + 0–3 | 8h + 4–7
      b[8 * h + k] = _mm_unpacklo_epi16(a[8 * h + 2 * k], a[8 * h + 2 * k + 1]);
      b[8 * h + k + 4] = _mm_unpackhi_epi16(a[8 * h + 2 * k], a[8 * h + 2 * k + 1]);
    }
  for (int g = 0; g < 4; ++g)
    for (int k = 0; k < 2; ++k) {  // 64-bit units: d 8k…8k+7 of rows 4g + 0–1 | 4g + 2–3
      a[4 * g + k] = _mm_unpacklo_epi32(b[4 * g + 2 * k], b[4 * g + 2 * k + 1]);
      a[4 * g + k + 2] = _mm_unpackhi_epi32(b[4 * g + 2 * k], b[4 * g + 2 * k + 1]);
    }
  for (int g = 0; g < 4; ++g) {  // rows 4g + 0, 1 from a[4g], a[4g+1]; rows 4g + 2, 3 from a[4g+2], a[4g+3]
    X[4 * g + 0] = _mm_unpacklo_epi64(a[4 * g], a[4 * g + 1]);
    X[4 * g + 1] = _mm_unpackhi_epi64(a[4 * g], a[4 * g + 1]);
    X[4 * g + 2] = _mm_unpacklo_epi64(a[4 * g + 2], a[4 * g + 3]);
    X[4 * g + 3] = _mm_unpackhi_epi64(a[4 * g + 2], a[4 * g + 3]);
  }
}

// Step 3 for one block of 16 dims [c, c + 16): O[l][c + d] = Σ_j' ep[j'](l)·vq[j'][c + d] (e · (v − zp),
// one load of the e pairs a key pair for all 16 dims; named accumulators: GCC shuffled an array of
// them between registers every step), then per lane (row) requantized to bytes and transposed into
// the rows l < rows (fast: every row's shift ≥ 32), or, if not, element by element from the sums.
__attribute__((noinline)) void pv_dims16(const int32_t* ep, const int32_t* vq, int64_t n2, int64_t dh, int64_t c,
                                         const int32_t* rm, const int32_t* rs, bool fast, const AttentionParams& p,
                                         int rows, const AttentionOutRows& out, int64_t i0) {
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0,
          c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
  for (int64_t j = 0; j < n2; ++j) {
    const __m512i ev = _mm512_loadu_si512((const void*)(ep + j * 16));
    const int32_t* vr = vq + j * dh + c;
    c0 = dpwssd_bcast(c0, ev, vr + 0), c1 = dpwssd_bcast(c1, ev, vr + 1);
    c2 = dpwssd_bcast(c2, ev, vr + 2), c3 = dpwssd_bcast(c3, ev, vr + 3);
    c4 = dpwssd_bcast(c4, ev, vr + 4), c5 = dpwssd_bcast(c5, ev, vr + 5);
    c6 = dpwssd_bcast(c6, ev, vr + 6), c7 = dpwssd_bcast(c7, ev, vr + 7);
    c8 = dpwssd_bcast(c8, ev, vr + 8), c9 = dpwssd_bcast(c9, ev, vr + 9);
    c10 = dpwssd_bcast(c10, ev, vr + 10), c11 = dpwssd_bcast(c11, ev, vr + 11);
    c12 = dpwssd_bcast(c12, ev, vr + 12), c13 = dpwssd_bcast(c13, ev, vr + 13);
    c14 = dpwssd_bcast(c14, ev, vr + 14), c15 = dpwssd_bcast(c15, ev, vr + 15);
  }
  const __m512i acc[16] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
  if (fast) {
    const Rq16 rq = rq16_prepare(_mm512_load_si512((const void*)rm), _mm512_load_si512((const void*)rs), 0);
    const __m512i lo = _mm512_set1_epi32(-p.y_zp), hi = _mm512_set1_epi32(p.y_max - p.y_zp), yzp = _mm512_set1_epi32(p.y_zp);
    __m128i X[16];
    for (int d = 0; d < 16; ++d) {  // in [0, y_max] ⊂ u8 after the clamp: the truncating vpmovdb is exact
      const __m512i o = _mm512_min_epi32(_mm512_max_epi32(requant16_fast_noclamp_avx512(acc[d], rq), lo), hi);
      X[d] = _mm512_cvtepi32_epi8(_mm512_add_epi32(o, yzp));
    }
    transpose16x16_u8(X);
    for (int l = 0; l < rows; ++l) _mm_storeu_si128((__m128i*)(out.row(i0 + l) + c), X[l]);
  } else {
    alignas(64) int32_t tmp[16][16];
    for (int d = 0; d < 16; ++d) _mm512_store_si512((void*)tmp[d], acc[d]);
    for (int l = 0; l < rows; ++l) {
      uint8_t* yl = out.row(i0 + l) + c;
      for (int d = 0; d < 16; ++d) yl[d] = (uint8_t)requantize_one(tmp[d][l], rm[l], rs[l], p.y_zp, 0, p.y_max);
    }
  }
}
// attention_row_scale for 16 row sums (each in [1, 2^24]) at once: the bit length from the sum as
// a float (exact), the same IEEE double division (correctly rounded, so the same quotient),
// (|mult|·inv) >> 31 on 64-bit lanes. False when some row's shift leaves [0, 62] (the scalar
// form clamps those; the caller then uses it).
inline bool row_scales16(__m512i sum, int32_t mult, int32_t shift, int32_t* rm, int32_t* rs) {
  const __m512i b = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_castps_si512(_mm512_cvtepi32_ps(sum)), 23),
                                     _mm512_set1_epi32(126));  // bit length, 1…25
  const __m512i sh = _mm512_add_epi32(b, _mm512_set1_epi32(shift - 9));
  if (_mm512_cmpgt_epi32_mask(sh, _mm512_set1_epi32(62)) | _mm512_cmplt_epi32_mask(sh, _mm512_setzero_si512())) return false;
  const __m512i am = _mm512_set1_epi64(mult < 0 ? -(int64_t)mult : (int64_t)mult);
  __m512i q[2];
  for (int h = 0; h < 2; ++h) {
    const __m256i bh = h ? hi256(b) : lo256(b), sh256 = h ? hi256(sum) : lo256(sum);
    // 2^(30 + b) as a double: exponent field 1023 + 30 + b
    const __m512d num = _mm512_castsi512_pd(
        _mm512_slli_epi64(_mm512_add_epi64(_mm512_cvtepi32_epi64(bh), _mm512_set1_epi64(1053)), 52));
    const __m256i inv = _mm512_cvttpd_epu32(_mm512_div_pd(num, _mm512_cvtepi32_pd(sh256)));  // (2^30, 2^31]
    q[h] = _mm512_srli_epi64(_mm512_mul_epu32(_mm512_cvtepu32_epi64(inv), am), 31);  // < 2^31
  }
  __m512i m = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(q[0])), _mm512_cvtepi64_epi32(q[1]), 1);
  if (mult < 0) m = _mm512_sub_epi32(_mm512_setzero_si512(), m);
  _mm512_store_si512((void*)rm, m);
  _mm512_store_si512((void*)rs, sh);
  return true;
}

// The last few rows of a head (N % 16 ≤ kRowsByKeys: Swin's 49 = 3·16 + 1) one at a time with the
// keys in lanes instead of a 16-lane block nearly all padding: z for ⌈N/16⌉ key blocks (kt: k − 128
// transposed, [block][d4][16] dwords; the row's q dwords broadcast; + the row term and the keys'
// terms ck), the row's max, exp and sum by reductions, its e row as int16
// pairs, then P·V with v's dims in lanes (vq as packed). The same integers as the block path.
// One row's O[c + 16·b + d] = Σ_j' e2[j']·vq[j'][c + 16·b + d] for NC blocks of 16 dims, two chains
// each (even and odd key pairs), requantized with the row's (rm, rs) into y[c …].
template <int NC>
inline void row_pv(const int32_t* e2, const int32_t* vq, int64_t n2, int64_t dh, int64_t c, int32_t rm, int32_t rs,
                   const AttentionParams& p, uint8_t* y) {
  __m512i a[NC][2];
  for (int b = 0; b < NC; ++b) a[b][0] = a[b][1] = _mm512_setzero_si512();
  int64_t j = 0;
  for (; j + 2 <= n2; j += 2) {
    const __m512i e0 = _mm512_set1_epi32(e2[j]), e1 = _mm512_set1_epi32(e2[j + 1]);
    for (int b = 0; b < NC; ++b) {
      a[b][0] = _mm512_dpwssd_epi32(a[b][0], _mm512_loadu_si512((const void*)(vq + j * dh + c + 16 * b)), e0);
      a[b][1] = _mm512_dpwssd_epi32(a[b][1], _mm512_loadu_si512((const void*)(vq + (j + 1) * dh + c + 16 * b)), e1);
    }
  }
  if (j < n2) {
    const __m512i e0 = _mm512_set1_epi32(e2[j]);
    for (int b = 0; b < NC; ++b) a[b][0] = _mm512_dpwssd_epi32(a[b][0], _mm512_loadu_si512((const void*)(vq + j * dh + c + 16 * b)), e0);
  }
  const __m512i lo = _mm512_set1_epi32(-p.y_zp), hi = _mm512_set1_epi32(p.y_max - p.y_zp), yzp = _mm512_set1_epi32(p.y_zp);
  for (int b = 0; b < NC; ++b) {
    const __m512i acc = _mm512_add_epi32(a[b][0], a[b][1]);
    uint8_t* dst = y + c + 16 * b;
    if (rs >= 32) {
      const Rq16 rq = rq16_prepare(_mm512_set1_epi32(rm), _mm512_set1_epi32(rs), 0);
      const __m512i o = _mm512_min_epi32(_mm512_max_epi32(requant16_fast_noclamp_avx512(acc, rq), lo), hi);
      _mm_storeu_si128((__m128i*)dst, _mm512_cvtepi32_epi8(_mm512_add_epi32(o, yzp)));
    } else {
      alignas(64) int32_t tmp[16];
      _mm512_store_si512((void*)tmp, acc);
      for (int d = 0; d < 16; ++d) dst[d] = (uint8_t)requantize_one(tmp[d], rm, rs, p.y_zp, 0, p.y_max);
    }
  }
}

template <int NB>
__attribute__((noinline)) void rows_keys_in_lanes(const uint8_t* qb, int64_t ld, const int32_t* kt, const int32_t* ck,
                                                  const int32_t* vq, int64_t N, int64_t d4, int64_t dh, int64_t i0, int64_t i1,
                                                  int64_t t, const AttentionParams& p, __m128i pre, const Exp16& ec, int16_t* er,
                                                  const AttentionOutRows& out) {
  const __m512i blo = _mm512_set1_epi32(-kAttentionBiasClamp), bhi = _mm512_set1_epi32(kAttentionBiasClamp),
                imin = _mm512_set1_epi32(INT32_MIN), span = _mm512_set1_epi32(31 * p.sm.L);
  const int64_t last = N - (NB - 1) * 16;  // keys in the last block, 1…16
  const __mmask16 tail = (__mmask16)(last >= 16 ? 0xffff : (1u << last) - 1);
  const int64_t n2 = (N + 1) / 2;
  for (int64_t i = i0; i < i1; ++i) {
    const uint8_t* qi = qb + i * ld;
    const __m512i rq = _mm512_set1_epi32((128 - p.zp) * (int32_t)rowsum_u8_avx2(qi, dh));
    __m512i z[NB];
    for (int b = 0; b < NB; ++b) z[b] = _mm512_add_epi32(rq, _mm512_loadu_si512((const void*)(ck + b * 16)));
    for (int64_t c = 0; c < d4; ++c) {
      int32_t qd;
      std::memcpy(&qd, qi + 4 * c, 4);
      const __m512i qv = _mm512_set1_epi32(qd);  // four u8 codes
      for (int b = 0; b < NB; ++b) z[b] = _mm512_dpbusd_epi32(z[b], qv, _mm512_loadu_si512((const void*)(kt + (b * d4 + c) * 16)));
    }
    const int32_t* brow = p.bias ? p.bias + ((t * N + i) % p.bias_rows) * N : nullptr;
    __m512i mx = imin;
    for (int b = 0; b < NB; ++b) {
      const __mmask16 m = b == NB - 1 ? tail : (__mmask16)0xffff;
      if (brow) z[b] = _mm512_add_epi32(z[b], _mm512_min_epi32(_mm512_max_epi32(_mm512_maskz_loadu_epi32(m, brow + b * 16), blo), bhi));
      z[b] = _mm512_mask_mov_epi32(imin, m, _mm512_sra_epi32(z[b], pre));
      mx = _mm512_max_epi32(mx, z[b]);
    }
    const __m512i mxv = _mm512_set1_epi32(_mm512_reduce_max_epi32(mx));
    const __m512i thr = _mm512_sub_epi32(mxv, span);
    __m512i sum = _mm512_setzero_si512();
    for (int b = 0; b < NB; ++b) {  // past N: z = INT32_MIN, so u = 31L and e = 0
      const __m512i e = exp16(z[b], mxv, thr, ec);
      sum = _mm512_add_epi32(sum, e);
      _mm256_storeu_si256((__m256i*)(er + b * 16), _mm512_cvtepi32_epi16(e));  // e ≤ 2^14
    }
    int32_t rm, rs;
    attention_row_scale(p.mult, p.shift, _mm512_reduce_add_epi32(sum), &rm, &rs);
    const int32_t* e2 = reinterpret_cast<const int32_t*>(er);  // (e_2j, e_2j+1) pairs
    for (int64_t c = 0; c < dh; c += 64) {  // up to 4 blocks of 16 dims a pass, each two chains
      switch ((dh - c) / 16 < 4 ? (dh - c) / 16 : 4) {
        case 1: row_pv<1>(e2, vq, n2, dh, c, rm, rs, p, out.row(i)); break;
        case 2: row_pv<2>(e2, vq, n2, dh, c, rm, rs, p, out.row(i)); break;
        case 3: row_pv<3>(e2, vq, n2, dh, c, rm, rs, p, out.row(i)); break;
        default: row_pv<4>(e2, vq, n2, dh, c, rm, rs, p, out.row(i)); break;
      }
    }
  }
}

void rows_keys_in_lanes_n(const uint8_t* qb, int64_t ld, const int32_t* kt, const int32_t* ck, const int32_t* vq, int64_t N,
                          int64_t d4, int64_t dh, int64_t i0, int64_t i1, int64_t t, const AttentionParams& p, __m128i pre,
                          const Exp16& ec, int16_t* er, const AttentionOutRows& out) {
  switch ((N + 15) / 16) {
#define SWQ_RK(NB) \
  case NB: return rows_keys_in_lanes<NB>(qb, ld, kt, ck, vq, N, d4, dh, i0, i1, t, p, pre, ec, er, out);
    SWQ_RK(1) SWQ_RK(2) SWQ_RK(3) SWQ_RK(4) SWQ_RK(5) SWQ_RK(6) SWQ_RK(7) SWQ_RK(8)
    SWQ_RK(9) SWQ_RK(10) SWQ_RK(11) SWQ_RK(12) SWQ_RK(13) SWQ_RK(14) SWQ_RK(15) SWQ_RK(16)
#undef SWQ_RK
    default: break;
  }
}
}  // namespace

void attention_u8s32_u8_avx512vnni(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y) {
  if (p.dh % 16 != 0) return attention_u8s32_u8_avx2(qkv, p, t, scratch, y);
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, ld = 3 * C, w = t / p.H, h = t % p.H;
  const int64_t d4 = dh / 4, n2 = (N + 1) / 2, n16 = (N + 15) / 16 * 16;
  const uint8_t* qb = qkv + w * N * ld + h * dh;
  const uint8_t *kb = qb + C, *vb = qb + 2 * C;
  const AttentionLanesLayout L = attention_lanes_layout(N, dh);
  char* sp = static_cast<char*>(scratch);
  int32_t* k8 = reinterpret_cast<int32_t*>(sp + L.k8);  // k − 128 as s8 dwords by chunk of ≤ 16: [N][np] at c0·N
  int32_t* ck = reinterpret_cast<int32_t*>(sp + L.ck);  // [n16] the keys' terms −zp·Σ(k − zp) (0 past N)
  int32_t* vq = reinterpret_cast<int32_t*>(sp + L.vq);  // [n2][dh] (v_2j − zp, v_2j+1 − zp) pairs
  int32_t* qt = reinterpret_cast<int32_t*>(sp + L.qt);  // [d4][16] a block's q dwords, lane = row
  int32_t* zs = reinterpret_cast<int32_t*>(sp + L.z);   // [N][16] a block's z, lane = row
  int32_t* ep = reinterpret_cast<int32_t*>(sp + L.ep);  // [n2][16] a block's (e_2j, e_2j+1) pairs
  int32_t* bk = reinterpret_cast<int32_t*>(sp + L.bk);  // [N][16] a block's bias (without bias_by_key)
  int32_t* kt = reinterpret_cast<int32_t*>(sp + L.kt);  // [⌈N/16⌉][d4][16] k − 128 transposed (the leftover rows)
  int16_t* er = reinterpret_cast<int16_t*>(sp + L.er);  // a leftover row's e

  // pack: k − 128 (the code's top bit flipped) chunk by chunk, each key's Σk on the way (a separate
  // rowsum_u8_avx2 pass over the keys measured 6–9 % slower on a dh-16 head), then its term
  // −zp·Σ(k − zp); v rows 2j and 2j+1 interleaved
  const __m128i x80 = _mm_set1_epi8((char)0x80), zero16 = _mm_setzero_si128();
  for (int64_t i = 0; i < n16; ++i) ck[i] = 0;
  for (int64_t c0 = 0; c0 < d4; c0 += 16) {
    const int64_t np = qk_chunk(d4, c0);
    const uint8_t* src = kb + 4 * c0;
    int32_t* dst = k8 + c0 * N;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t g = 0; g < np; g += 4) {
        const __m128i raw = _mm_loadu_si128((const __m128i*)(src + i * ld + 4 * g));
        _mm_storeu_si128((__m128i*)(dst + i * np + g), _mm_xor_si128(raw, x80));
        const __m128i sad = _mm_sad_epu8(raw, zero16);  // the 16 codes' sum in two halves
        ck[i] += _mm_cvtsi128_si32(sad) + _mm_extract_epi32(sad, 2);
      }
  }
  for (int64_t i = 0; i < N; ++i) ck[i] = -p.zp * (ck[i] - (int32_t)dh * p.zp);
  const __m256i vzp = _mm256_set1_epi16((short)p.zp);
  for (int64_t j = 0; j < n2; ++j)
    for (int64_t d = 0; d < dh; d += 16) {
      const __m256i ra = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(vb + 2 * j * ld + d))), vzp);
      const __m256i rb = 2 * j + 1 < N
                             ? _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i*)(vb + (2 * j + 1) * ld + d))), vzp)
                             : _mm256_setzero_si256();
      const __m256i lo = _mm256_unpacklo_epi16(ra, rb), hi = _mm256_unpackhi_epi16(ra, rb);  // d 0–3, 8–11 | 4–7, 12–15
      _mm256_storeu_si256((__m256i*)(vq + j * dh + d), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256((__m256i*)(vq + j * dh + d + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }

  const __m128i pre = _mm_cvtsi32_si128(p.sm.pre_shift);
  Exp16 ec;
  ec.mult = _mm512_set1_epi32(p.exp_mult);
  ec.shift = _mm_cvtsi32_si128(p.exp_shift);
  ec.qb = _mm512_set1_epi32(kAttentionExpQb);
  ec.qc = _mm512_set1_epi32(kAttentionExpQc);
  ec.m255 = _mm512_set1_epi32(255);
  ec.es = _mm512_set1_epi32(attention_exp_shift(N));
  const __m512i span = _mm512_set1_epi32(31 * p.sm.L);
  const int64_t br = p.bias_rows;
  const AttentionOutRows out = attention_out_rows(p, t, y);
  // the last N % 16 rows, when only a few, by the keys-in-lanes path (rows_keys_in_lanes)
  const int64_t rb = p.row_begin, re = p.row_end ? p.row_end : N;  // the query rows asked for
  const int64_t nb = (N + 15) / 16, left = (re - rb) % 16;
  const int64_t n_blocks_end = left > 0 && left <= kRowsByKeys && nb <= 16 ? re - left : re;
  for (int64_t i0 = rb; i0 < n_blocks_end; i0 += 16) {
    const int rows = (int)(re - i0 < 16 ? re - i0 : 16);
    // the block's q codes, lane = row, and its rows' terms (128 − zp)·Σq
    const __m512i rq = _mm512_mullo_epi32(transpose_rows16_u8(qb + i0 * ld, ld, d4, rows, qt), _mm512_set1_epi32(128 - p.zp));
    // the block's bias, key-major: bias_by_key as prepared at load, else gathered here
    alignas(64) static const int32_t kNoBias[16] = {};
    const int32_t* bt = kNoBias;  // ldb 0: every key adds the same zeros
    int64_t ldb = 0;
    if (p.bias_by_key) {
      bt = p.bias_by_key + (t % p.bias_by_key_period) * N * n16 + i0;
      ldb = n16;
    } else if (p.bias) {
      for (int l = 0; l < 16; ++l) {
        const int32_t* row = i0 + l < N ? p.bias + ((t * N + i0 + l) % br) * N : nullptr;
        for (int64_t j = 0; j < N; ++j) bk[j * 16 + l] = row ? attention_bias_clamp(row[j]) : 0;
      }
      bt = bk;
      ldb = 16;
    }
    const __m512i mx = qk_rows16(qt, k8, N, d4, rq, ck, bt, ldb, pre, zs);
    const __m512i thr = _mm512_sub_epi32(mx, span);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t j = 0; j < N / 2; ++j) {  // e ≤ 2^14: the pair is e_2j | e_2j+1 << 16
      const __m512i e0 = exp16(_mm512_loadu_si512((const void*)(zs + 2 * j * 16)), mx, thr, ec);
      const __m512i e1 = exp16(_mm512_loadu_si512((const void*)(zs + (2 * j + 1) * 16)), mx, thr, ec);
      sum = _mm512_add_epi32(sum, _mm512_add_epi32(e0, e1));
      _mm512_storeu_si512((void*)(ep + j * 16), _mm512_or_si512(e0, _mm512_slli_epi32(e1, 16)));
    }
    if (N % 2) {
      const __m512i e0 = exp16(_mm512_loadu_si512((const void*)(zs + (N - 1) * 16)), mx, thr, ec);
      sum = _mm512_add_epi32(sum, e0);
      _mm512_storeu_si512((void*)(ep + (n2 - 1) * 16), e0);
    }
    alignas(64) int32_t rm[16], rs[16];
    bool fast = true;
    if (!row_scales16(sum, p.mult, p.shift, rm, rs)) {  // a shift outside [0, 62]: the scalar form's clamps
      alignas(64) int32_t sums[16];
      _mm512_store_si512((void*)sums, sum);
      for (int l = 0; l < 16; ++l) attention_row_scale(p.mult, p.shift, sums[l], rm + l, rs + l);
    }
    for (int l = 0; l < rows; ++l) fast = fast && rs[l] >= 32;
    for (int64_t c = 0; c < dh; c += 16) pv_dims16(ep, vq, n2, dh, c, rm, rs, fast, p, rows, out, i0);
  }
  if (n_blocks_end < re) {
    for (int64_t c0 = 0; c0 < d4;) {  // k − 128 transposed per key block and chunk of dwords
      const int64_t np = qk_chunk(d4, c0);
      for (int64_t jb = 0; jb < nb; ++jb)
        transpose_rows16_u8(reinterpret_cast<const uint8_t*>(k8 + c0 * N + jb * 16 * np), np * 4, np,
                            (int)(N - jb * 16 < 16 ? N - jb * 16 : 16), kt + (jb * d4 + c0) * 16);
      c0 += np;
    }
    rows_keys_in_lanes_n(qb, ld, kt, ck, vq, N, d4, dh, n_blocks_end, re, t, p, pre, ec, er, out);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
