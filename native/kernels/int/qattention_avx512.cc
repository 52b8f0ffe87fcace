// AVX-512 VNNI attention (qkernels.h attention_u8) for heads with dh a multiple of 16 (every Swin
// window and ViT head; others run the AVX2 kernel). Per group of 8 query rows:
//   1+2. S = (q−zp)(k−zp)ᵀ for 4 rows × all ⌈N/16⌉ key blocks on zmm (vpdpwssd on int16 pairs,
//      exact: |(a−za)(b−zb)| ≤ 65025, pairs ≤ 130050), then bias, pre-shift, the row maximum,
//      e = exp(z − max) (attention_exp), the row sum and e as int16 pairs for P·V. For N ≤ 64 (Swin
//      windows) while the rows are still in registers, no z row in memory; longer rows (ViT's 197)
//      in chunks of 4 key blocks with z through the rows' scratch;
//   3. O = e·(v−zp) for the 8 rows on zmm blocks of 16 dims, the row's 256/sum folded into its
//      output requantization (attention_row_scale).
// The scalar reference (qattention.cc) computes the same integers. No std:: containers here
// (scripts/check-avx2-objects.sh).
#include <immintrin.h>

#include <cstring>

#include "qattention_pack_avx2.h"
#include "qavx512.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

namespace {
inline size_t al32(size_t b) { return (b + 31) / 32 * 32; }

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

// acc[r][b] = (q_r − zp)·(k − zp) for 4 query rows and the key blocks b0 … b0 + NB − 1 (kp: [blocks][d2][16]
// pairs): per pair step NB loads, 4 broadcasts and 4·NB vpdpwssd.
template <int NB>
inline __attribute__((always_inline)) void qk_acc4(const int32_t* const* q, const int32_t* kp, int64_t d2, int64_t b0,
                                                   __m512i (&acc)[4][NB]) {
  for (int r = 0; r < 4; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_si512();
  const int32_t *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
  for (int64_t k = 0; k < d2; ++k) {
    __m512i kv[NB];
    for (int b = 0; b < NB; ++b) kv[b] = _mm512_loadu_si512((const void*)(kp + ((b0 + b) * d2 + k) * 16));
    const __m512i x0 = _mm512_set1_epi32(q0[k]), x1 = _mm512_set1_epi32(q1[k]), x2 = _mm512_set1_epi32(q2[k]),
                  x3 = _mm512_set1_epi32(q3[k]);
    for (int b = 0; b < NB; ++b) {
      acc[0][b] = _mm512_dpwssd_epi32(acc[0][b], x0, kv[b]);
      acc[1][b] = _mm512_dpwssd_epi32(acc[1][b], x1, kv[b]);
      acc[2][b] = _mm512_dpwssd_epi32(acc[2][b], x2, kv[b]);
      acc[3][b] = _mm512_dpwssd_epi32(acc[3][b], x3, kv[b]);
    }
  }
}

// Steps 1+2 for 4 query rows against NB = ⌈N/16⌉ key blocks: e rows (int16, zero past N) and
// their sums. q: the rows' (q − zp) pairs; bias: their bias rows (kBias); kp: [NB][d2][16] pairs.
// noinline: on its own GCC keeps the 4·NB accumulators in registers.
template <bool kBias, int NB>
__attribute__((noinline)) void qk_exp_rows4(const int32_t* const* q, const int32_t* const* bias, const int32_t* kp,
                                            int64_t N, int64_t d2, __m128i pre, const Exp16& ec, int32_t span,
                                            int16_t* const* e, int32_t* rsum) {
  __m512i acc[4][NB];
  qk_acc4<NB>(q, kp, d2, 0, acc);
  const __m512i blo = _mm512_set1_epi32(-kAttentionBiasClamp), bhi = _mm512_set1_epi32(kAttentionBiasClamp),
                imin = _mm512_set1_epi32(INT32_MIN);
  const int64_t last = N - (NB - 1) * 16;  // keys in the last block, 1…16
  const __mmask16 tail = (__mmask16)(last >= 16 ? 0xffff : (1u << last) - 1);
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    __m512i z[NB];
    __m512i mx = imin;
    for (int b = 0; b < NB; ++b) {
      __m512i v = acc[r][b];
      if (kBias) {
        const __m512i bb = b == NB - 1 ? _mm512_maskz_loadu_epi32(tail, bias[r] + b * 16)
                                       : _mm512_loadu_si512((const void*)(bias[r] + b * 16));
        v = _mm512_add_epi32(v, _mm512_min_epi32(_mm512_max_epi32(bb, blo), bhi));
      }
      v = _mm512_sra_epi32(v, pre);
      if (b == NB - 1) v = _mm512_mask_mov_epi32(imin, tail, v);
      z[b] = v;
      mx = _mm512_max_epi32(mx, v);
    }
    const int32_t m = _mm512_reduce_max_epi32(mx);
    const __m512i mxv = _mm512_set1_epi32(m), thr = _mm512_set1_epi32(m - span);
    __m512i sum = _mm512_setzero_si512();
    for (int b = 0; b < NB; ++b) {  // past N: z = INT32_MIN, so u = 31L and e = 0
      const __m512i ev = exp16(z[b], mxv, thr, ec);
      sum = _mm512_add_epi32(sum, ev);
      _mm256_store_si256((__m256i*)(e[r] + b * 16), _mm512_cvtepi32_epi16(ev));  // e ≤ 2^14
    }
    rsum[r] = _mm512_reduce_add_epi32(sum);
  }
}

template <bool kBias>
void qk_exp_rows4_n(const int32_t* const* q, const int32_t* const* bias, const int32_t* kp, int64_t N, int64_t d2,
                    __m128i pre, const Exp16& ec, int32_t span, int16_t* const* e, int32_t* rsum) {
  switch ((N + 15) / 16) {
    case 1: return qk_exp_rows4<kBias, 1>(q, bias, kp, N, d2, pre, ec, span, e, rsum);
    case 2: return qk_exp_rows4<kBias, 2>(q, bias, kp, N, d2, pre, ec, span, e, rsum);
    case 3: return qk_exp_rows4<kBias, 3>(q, bias, kp, N, d2, pre, ec, span, e, rsum);
    default: return qk_exp_rows4<kBias, 4>(q, bias, kp, N, d2, pre, ec, span, e, rsum);
  }
}

// Long rows (N > 64, ViT's 197): step 1 for 4 query rows in chunks of NBC ≤ 4 key blocks (16
// accumulators), z stored to the rows' scratch and the running maxima kept; the last block masked.
template <bool kBias, int NBC>
inline void qk_chunk4(const int32_t* const* q, const int32_t* const* bias, const int32_t* kp, int64_t N, int64_t d2,
                      int64_t b0, __m128i pre, int32_t* const* z, __m512i* mx) {
  __m512i acc[4][NBC];
  qk_acc4<NBC>(q, kp, d2, b0, acc);
  const __m512i blo = _mm512_set1_epi32(-kAttentionBiasClamp), bhi = _mm512_set1_epi32(kAttentionBiasClamp),
                imin = _mm512_set1_epi32(INT32_MIN);
  for (int b = 0; b < NBC; ++b) {
    const int64_t j0 = (b0 + b) * 16, left = N - j0;  // keys of this block, 1…
    const __mmask16 m = (__mmask16)(left >= 16 ? 0xffff : (1u << left) - 1);
    for (int r = 0; r < 4; ++r) {
      __m512i v = acc[r][b];
      if (kBias) v = _mm512_add_epi32(v, _mm512_min_epi32(_mm512_max_epi32(_mm512_maskz_loadu_epi32(m, bias[r] + j0), blo), bhi));
      v = _mm512_mask_mov_epi32(imin, m, _mm512_sra_epi32(v, pre));
      _mm512_storeu_si512((void*)(z[r] + j0), v);
      mx[r] = _mm512_max_epi32(mx[r], v);
    }
  }
}

// Steps 1+2 for 4 query rows of a long row (N ≤ 1024): z through the rows' scratch, then e rows
// (int16, zero past N) and their sums, as qk_exp_rows4 does for short rows.
template <bool kBias>
__attribute__((noinline)) void qk_exp_long4(const int32_t* const* q, const int32_t* const* bias, const int32_t* kp,
                                            int64_t N, int64_t d2, __m128i pre, const Exp16& ec, int32_t span,
                                            int32_t* const* z, int16_t* const* e, int32_t* rsum) {
  const int64_t NB = (N + 15) / 16;
  __m512i mx[4];
  for (int r = 0; r < 4; ++r) mx[r] = _mm512_set1_epi32(INT32_MIN);
  int64_t b0 = 0;
  for (; b0 + 4 <= NB; b0 += 4) qk_chunk4<kBias, 4>(q, bias, kp, N, d2, b0, pre, z, mx);
  switch (NB - b0) {
    case 3: qk_chunk4<kBias, 3>(q, bias, kp, N, d2, b0, pre, z, mx); break;
    case 2: qk_chunk4<kBias, 2>(q, bias, kp, N, d2, b0, pre, z, mx); break;
    case 1: qk_chunk4<kBias, 1>(q, bias, kp, N, d2, b0, pre, z, mx); break;
    default: break;
  }
  for (int r = 0; r < 4; ++r) {
    const int32_t m = _mm512_reduce_max_epi32(mx[r]);
    const __m512i mxv = _mm512_set1_epi32(m), thr = _mm512_set1_epi32(m - span);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t b = 0; b < NB; ++b) {  // past N: z = INT32_MIN, so u = 31L and e = 0
      const __m512i ev = exp16(_mm512_loadu_si512((const void*)(z[r] + b * 16)), mxv, thr, ec);
      sum = _mm512_add_epi32(sum, ev);
      _mm256_storeu_si256((__m256i*)(e[r] + b * 16), _mm512_cvtepi32_epi16(ev));
    }
    rsum[r] = _mm512_reduce_add_epi32(sum);
  }
}

// Step 3 for 8 rows (mr of them real; the others repeat row 0): O = e·(v − zp) per block of 16
// dims, 8 accumulators (vpdpwssd's latency at 2 per cycle), requantized with each row's (m, s).
__attribute__((noinline)) void pv_rows8(const int32_t* const* e, const int32_t* vp, int64_t n2, int64_t dh,
                                        const int32_t* m, const int32_t* s, int mr, uint8_t* const* y, int32_t y_zp,
                                        int32_t y_max) {
  bool fast = true;
  for (int r = 0; r < mr; ++r) fast = fast && s[r] >= 32;
  Rq16 rq[8];
  if (fast)
    for (int r = 0; r < 8; ++r) rq[r] = rq16_prepare(_mm512_set1_epi32(m[r]), _mm512_set1_epi32(s[r]), 0);
  const __m512i lo = _mm512_set1_epi32(-y_zp), hi = _mm512_set1_epi32(y_max - y_zp), yzp = _mm512_set1_epi32(y_zp);
  const int32_t *e0 = e[0], *e1 = e[1], *e2 = e[2], *e3 = e[3], *e4 = e[4], *e5 = e[5], *e6 = e[6], *e7 = e[7];
  for (int64_t b = 0; b < dh / 16; ++b) {
    __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    const int32_t* vb = vp + b * n2 * 16;
    for (int64_t j = 0; j < n2; ++j) {
      const __m512i v = _mm512_loadu_si512((const void*)(vb + j * 16));
      c0 = _mm512_dpwssd_epi32(c0, v, _mm512_set1_epi32(e0[j]));
      c1 = _mm512_dpwssd_epi32(c1, v, _mm512_set1_epi32(e1[j]));
      c2 = _mm512_dpwssd_epi32(c2, v, _mm512_set1_epi32(e2[j]));
      c3 = _mm512_dpwssd_epi32(c3, v, _mm512_set1_epi32(e3[j]));
      c4 = _mm512_dpwssd_epi32(c4, v, _mm512_set1_epi32(e4[j]));
      c5 = _mm512_dpwssd_epi32(c5, v, _mm512_set1_epi32(e5[j]));
      c6 = _mm512_dpwssd_epi32(c6, v, _mm512_set1_epi32(e6[j]));
      c7 = _mm512_dpwssd_epi32(c7, v, _mm512_set1_epi32(e7[j]));
    }
    const __m512i acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < mr; ++r) {
      uint8_t* dst = y[r] + b * 16;
      if (fast) {  // in [0, y_max] ⊂ u8 after the clamp: the truncating vpmovdb is exact
        const __m512i o = _mm512_min_epi32(_mm512_max_epi32(requant16_fast_noclamp_avx512(acc[r], rq[r]), lo), hi);
        _mm_storeu_si128((__m128i*)dst, _mm512_cvtepi32_epi8(_mm512_add_epi32(o, yzp)));
      } else {
        alignas(64) int32_t tmp[16];
        _mm512_store_si512((void*)tmp, acc[r]);
        for (int k = 0; k < 16; ++k) dst[k] = (uint8_t)requantize_one(tmp[k], m[r], s[r], y_zp, 0, y_max);
      }
    }
  }
}
}  // namespace

void attention_u8s32_u8_avx512vnni(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y) {
  if (p.dh % 16 != 0) return attention_u8s32_u8_avx2(qkv, p, t, scratch, y);
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, ld = 3 * C, w = t / p.H, h = t % p.H;
  const int64_t n16 = (N + 15) / 16 * 16, d2 = dh / 2, n2 = (N + 1) / 2;
  const uint8_t* base = qkv + w * N * ld;
  // the scratch regions, in the order of attention_scratch_bytes (z rows unused here)
  char* sp = static_cast<char*>(scratch);
  int32_t* kp = reinterpret_cast<int32_t*>(sp);  sp += al32((size_t)(n16 * d2 * 4));
  int32_t* qp = reinterpret_cast<int32_t*>(sp);  sp += al32((size_t)(N * d2 * 4));
  int16_t* vp = reinterpret_cast<int16_t*>(sp);  sp += al32((size_t)(dh * n2 * 4));
  int32_t* sz = reinterpret_cast<int32_t*>(sp);  sp += al32((size_t)(kAttentionRowGroup * n16 * 4));  // long rows' z
  int16_t* pe = reinterpret_cast<int16_t*>(sp);  // 8 rows × n16 int16 (the region holds 16)

  pack_head_dh16<16>(base + h * dh, base + C + h * dh, base + 2 * C + h * dh, ld, N, dh, p.zp, kp, qp, vp);

  const __m128i pre = _mm_cvtsi32_si128(p.sm.pre_shift);
  Exp16 ec;
  ec.mult = _mm512_set1_epi32(p.exp_mult);
  ec.shift = _mm_cvtsi32_si128(p.exp_shift);
  ec.qb = _mm512_set1_epi32(kAttentionExpQb);
  ec.qc = _mm512_set1_epi32(kAttentionExpQc);
  ec.m255 = _mm512_set1_epi32(255);
  ec.es = _mm512_set1_epi32(attention_exp_shift(N));
  const int32_t span = 31 * p.sm.L;
  uint8_t* yo = y + t * N * dh;
  const int32_t* vp32 = reinterpret_cast<const int32_t*>(vp);
  for (int64_t g = 0; g < N; g += 8) {
    const int gr = (int)(N - g < 8 ? N - g : 8);
    int32_t rsum[8], rm[8], rs[8];
    for (int i = 0; i < gr; i += 4) {  // rows past N repeat row g + i (their e rows are never used)
      const int32_t* q[4];
      const int32_t* bias[4];
      int16_t* e[4];
      int32_t* z[4];
      for (int r = 0; r < 4; ++r) {
        const int64_t row = g + i + r < N ? g + i + r : g + i;
        q[r] = qp + row * d2;
        bias[r] = p.bias ? p.bias + ((t * N + row) % p.bias_rows) * N : nullptr;
        e[r] = pe + (i + r) * n16;
        z[r] = sz + (i + r) * n16;
      }
      if (N > 64) {  // long rows: z through scratch
        if (p.bias) qk_exp_long4<true>(q, bias, kp, N, d2, pre, ec, span, z, e, rsum + i);
        else qk_exp_long4<false>(q, bias, kp, N, d2, pre, ec, span, z, e, rsum + i);
      } else if (p.bias) {
        qk_exp_rows4_n<true>(q, bias, kp, N, d2, pre, ec, span, e, rsum + i);
      } else {
        qk_exp_rows4_n<false>(q, bias, kp, N, d2, pre, ec, span, e, rsum + i);
      }
    }
    // the row scales after the group's sums: their divisions are independent and pipeline
    for (int r = 0; r < gr; ++r) attention_row_scale(p.mult, p.shift, rsum[r], rm + r, rs + r);
    const int32_t* er[8];
    uint8_t* yr[8];
    for (int r = 0; r < 8; ++r) {
      const int k = r < gr ? r : 0;
      er[r] = reinterpret_cast<const int32_t*>(pe + k * n16);
      yr[r] = yo + (g + k) * dh;
      if (r >= gr) rm[r] = rm[0], rs[r] = rs[0];
    }
    pv_rows8(er, vp32, n2, dh, rm, rs, gr, yr, p.y_zp, p.y_max);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
