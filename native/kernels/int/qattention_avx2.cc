// AVX2 attention (qkernels.h attention_u8), one (window, head) per call; per group of 16 query rows:
//   1. S = (q−zp)(k−zp)ᵀ on a 4-row × 16-column register tile (vpmaddwd on int16 pairs, exact for
//      any codes: |(a−za)(b−zb)| ≤ 65025, pairs ≤ 130050); bias, pre-shift and the row maxima in
//      the tile's epilogue, so no separate max pass; for N ≤ 56 per 2 rows on whole rows instead;
//   2. e = exp(z − max) (attention_exp) 16 at a time, packed straight to the int16 pairs P·V
//      reads, and the row sums; then the row scales of the whole group;
//   3. O = e·(v−zp) on a 4-row × 16-dh tile, the row's 256/sum folded into its output requant.
// Only one group's rows of z and e exist at a time, so for N = 197 they stay in L1 next to the
// packed k, v.
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

namespace {
struct ExpConsts {
  __m256i mult, qb, qc, es, m255;
  __m128i shift;
};
// attention_exp on 8 lanes: u = mx − max(z, thr) ∈ [0, 31L] (thr = mx − 31L: padding and masks
// give u = 31L, so e = 0); u, exp_mult and t < 2^15 with zero high halves, so vpmaddwd is the product
inline __m256i exp8(__m256i z, __m256i mx, __m256i thr, const ExpConsts& c) {
  const __m256i u = _mm256_sub_epi32(mx, _mm256_max_epi32(z, thr));
  const __m256i x = _mm256_srl_epi32(_mm256_madd_epi16(u, c.mult), c.shift);
  const __m256i t = _mm256_sub_epi32(c.qb, _mm256_and_si256(x, c.m255));
  const __m256i poly = _mm256_add_epi32(_mm256_madd_epi16(t, t), c.qc);
  return _mm256_srlv_epi32(poly, _mm256_add_epi32(_mm256_srli_epi32(x, 8), c.es));  // counts > 31 give 0
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
    // keeps each accumulator in one register across the back edge (GCC 12 otherwise adds a
    // vmovdqa per accumulator per step: 33 instead of 25 instructions)
    __asm__("" : "+x"(c00), "+x"(c01), "+x"(c10), "+x"(c11), "+x"(c20), "+x"(c21), "+x"(c30), "+x"(c31));
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

// The query rows of step 1: their (q − zp) pair rows, bias rows and z rows.
template <int NR>
struct QueryRows {
  const int32_t* q[NR];     // (q − zp) pair rows
  const int32_t* bias[NR];  // bias rows (kBias)
  int32_t* z[NR];           // z rows, n16 wide
};
using QkRows = QueryRows<4>;
using Rows2 = QueryRows<2>;

// Query rows i … i+NR−1 of the row group starting at g; a row past N repeats row i (its z lands in
// the group's padding rows and is never read).
template <int NR>
inline QueryRows<NR> query_rows(int64_t i, int64_t g, int64_t N, const int32_t* qp, int64_t d2,
                                const AttentionParams& p, int64_t t, int32_t* sz, int64_t n16) {
  QueryRows<NR> R;
  for (int r = 0; r < NR; ++r) {
    const int64_t row = i + r < N ? i + r : i;
    R.q[r] = qp + row * d2;
    R.bias[r] = p.bias ? p.bias + ((t * N + row) % p.bias_rows) * N : nullptr;
    R.z[r] = sz + (i - g + r) * n16;
  }
  return R;
}
// 1. z = (S + clamp(bias)) >> pre_shift for 4 query rows against every key (INT32_MIN beyond N)
// and the row maxima. Rows past N repeat a valid row (their z rows are scratch, never read).
// noinline: on its own, GCC keeps the tile's accumulators and the maxima in registers (inlined
// into the head it spilled the maxima and re-read p.bias after every store: 12 instead of 5
// instructions per 8 logits).
template <bool kBias>
__attribute__((noinline)) void qk_rows(const QkRows& R, const int32_t* kp, int64_t N, int64_t d2, __m128i pre,
                                       int32_t* rowmax) {
  const int64_t nb = (N + 7) / 8;
  const __m256i blo = _mm256_set1_epi32(-kAttentionBiasClamp), bhi = _mm256_set1_epi32(kAttentionBiasClamp),
                imin = _mm256_set1_epi32(INT32_MIN);
  __m256i mx[4] = {imin, imin, imin, imin};
  // local copies: __m256i stores may alias anything, so fields read through R would be re-read
  const int32_t* const b[4] = {R.bias[0], R.bias[1], R.bias[2], R.bias[3]};
  int32_t* const z[4] = {R.z[0], R.z[1], R.z[2], R.z[3]};
  const int32_t* const q[4] = {R.q[0], R.q[1], R.q[2], R.q[3]};
  auto fix = [&](__m256i v, int r, int64_t j0) {  // a full 8-column block
    if (kBias) v = _mm256_add_epi32(v, _mm256_min_epi32(_mm256_max_epi32(_mm256_loadu_si256((const __m256i*)(b[r] + j0)), blo), bhi));
    v = _mm256_sra_epi32(v, pre);
    _mm256_store_si256((__m256i*)(z[r] + j0), v);
    mx[r] = _mm256_max_epi32(mx[r], v);
  };
  int64_t jb = 0;
  for (; jb + 2 <= nb && (jb + 2) * 8 <= N; jb += 2) {
    __m256i acc[4][2];
    tile_4xJB<2>(q, kp + jb * d2 * 8, d2, d2, acc);
    for (int r = 0; r < 4; ++r) fix(acc[r][0], r, jb * 8), fix(acc[r][1], r, jb * 8 + 8);
  }
  for (; jb < nb; ++jb) {  // the rest one 8-column block at a time, the last one masked
    __m256i acc[4][1];
    tile_4xJB<1>(q, kp + jb * d2 * 8, d2, d2, acc);
    const int64_t j0 = jb * 8;
    if (j0 + 8 <= N) {
      for (int r = 0; r < 4; ++r) fix(acc[r][0], r, j0);
      continue;
    }
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(N - j0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int r = 0; r < 4; ++r) {
      __m256i v = acc[r][0];
      if (kBias) v = _mm256_add_epi32(v, _mm256_min_epi32(_mm256_max_epi32(_mm256_maskload_epi32(b[r] + j0, tail), blo), bhi));
      v = _mm256_blendv_epi8(imin, _mm256_sra_epi32(v, pre), tail);
      _mm256_store_si256((__m256i*)(z[r] + j0), v);
      mx[r] = _mm256_max_epi32(mx[r], v);
    }
  }
  for (int r = 0; r < 4; ++r) rowmax[r] = hmax_epi32_avx2(mx[r]);
}

// 3. O = e·(v − zp) for 4 rows (mr of them real), 16 (then 8) of dh per tile, requantized with
// each row's (m, s) — the vpsravd form when every row's s ≥ 32 (every real model), the general
// rule lane by lane otherwise — and stored as u8.
struct PvRows {
  const int32_t* e[4];  // exp pair rows (rows past mr repeat row 0)
  uint8_t* y[4];        // output rows
  int32_t m[4], s[4];   // row multipliers / shifts
  int mr;
};
__attribute__((noinline)) void pv_rows(const PvRows& R, const int32_t* vp32, int64_t n2, int64_t dh, int32_t y_zp,
                                       int32_t y_max) {
  const int64_t db = (dh + 7) / 8;
  const __m256i lo = _mm256_set1_epi32(-y_zp), hi = _mm256_set1_epi32(y_max - y_zp), yzp = _mm256_set1_epi32(y_zp);
  const int mr = R.mr;
  const int32_t* const e[4] = {R.e[0], R.e[1], R.e[2], R.e[3]};
  uint8_t* const yr[4] = {R.y[0], R.y[1], R.y[2], R.y[3]};
  bool fast = true;
  for (int r = 0; r < mr; ++r) fast = fast && R.s[r] >= 32;
  Rq8Fast rq[4];
  if (fast)
    for (int r = 0; r < 4; ++r) rq[r] = rq8_fast_prepare(_mm256_set1_epi32(R.m[r]), _mm256_set1_epi32(R.s[r]));
  auto finish = [&](int r, __m256i acc, int64_t d0, int n) {  // n ≤ 8 outputs of row r from d0
    uint8_t* dst = yr[r] + d0;
    if (fast) {
      store_u8x8(dst, _mm256_add_epi32(requant8_fast_avx2(acc, rq[r], lo, hi), yzp), n);
    } else {
      alignas(32) int32_t tmp[8];
      _mm256_store_si256((__m256i*)tmp, acc);
      for (int k = 0; k < n; ++k) dst[k] = (uint8_t)requantize_one(tmp[k], R.m[r], R.s[r], y_zp, 0, y_max);
    }
  };
  int64_t b = 0;
  for (; b + 2 <= db && (b + 2) * 8 <= dh; b += 2) {
    __m256i acc[4][2];
    tile_4xJB<2>(e, vp32 + b * n2 * 8, n2, n2, acc);
    for (int r = 0; r < mr; ++r) {
      if (fast) {  // both 8-blocks to 16 bytes at once
        const __m256i w = _mm256_permute4x64_epi64(
            _mm256_packus_epi32(_mm256_add_epi32(requant8_fast_avx2(acc[r][0], rq[r], lo, hi), yzp),
                                _mm256_add_epi32(requant8_fast_avx2(acc[r][1], rq[r], lo, hi), yzp)), 0xD8);
        _mm_storeu_si128((__m128i*)(yr[r] + b * 8), _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
      } else {
        finish(r, acc[r][0], b * 8, 8), finish(r, acc[r][1], b * 8 + 8, 8);
      }
    }
  }
  for (; b < db; ++b) {
    __m256i acc[4][1];
    tile_4xJB<1>(e, vp32 + b * n2 * 8, n2, n2, acc);
    const int n = (int)(dh - b * 8 < 8 ? dh - b * 8 : 8);
    for (int r = 0; r < mr; ++r) finish(r, acc[r][0], b * 8, n);
  }
}

// vpmaddwd with its vector operand read from base + off bytes. As asm, GCC can neither load a k
// vector once into a register for both rows (with 14 accumulators live that spills) nor
// strength-reduce the address into a pointer increment per block and step. The asm does not tell
// GCC it reads memory: only for buffers filled before the (noinline) caller was entered.
inline __m256i madd_at(__m256i x, const int32_t* base, int64_t off) {
  __m256i r;
  __asm__("vpmaddwd (%1,%2), %3, %0" : "=x"(r) : "r"(base), "r"(off), "x"(x));
  return r;
}

// 2 broadcast rows × NB ≤ 7 blocks of 8 columns, named accumulators (GCC keeps arrays of them in
// memory across the loop: a store and a load per accumulator per step); blocks past NB fold away.
template <int NB>
inline void tile_2x7(const int32_t* q0, const int32_t* q1, const int32_t* kp, int64_t d2, __m256i* o0, __m256i* o1) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i c00 = zero, c01 = zero, c02 = zero, c03 = zero, c04 = zero, c05 = zero, c06 = zero;
  __m256i c10 = zero, c11 = zero, c12 = zero, c13 = zero, c14 = zero, c15 = zero, c16 = zero;
  const int64_t st = d2 * 8;
  // one base per block, one byte offset for all
  const int32_t *m0 = kp, *m1 = m0 + st, *m2 = m1 + st, *m3 = m2 + st, *m4 = m3 + st, *m5 = m4 + st, *m6 = m5 + st;
  for (int64_t k = 0; k < d2; ++k) {
    __m256i x = _mm256_set1_epi32(q0[k]);
    const int64_t off = k * 32;
#define SWQ_ACC(c, b) if (NB > b) c = _mm256_add_epi32(c, madd_at(x, m##b, off))
    SWQ_ACC(c00, 0); SWQ_ACC(c01, 1); SWQ_ACC(c02, 2); SWQ_ACC(c03, 3); SWQ_ACC(c04, 4); SWQ_ACC(c05, 5); SWQ_ACC(c06, 6);
    x = _mm256_set1_epi32(q1[k]);
    SWQ_ACC(c10, 0); SWQ_ACC(c11, 1); SWQ_ACC(c12, 2); SWQ_ACC(c13, 3); SWQ_ACC(c14, 4); SWQ_ACC(c15, 5); SWQ_ACC(c16, 6);
#undef SWQ_ACC
    __asm__("" : "+x"(c00), "+x"(c01), "+x"(c02), "+x"(c03), "+x"(c04), "+x"(c05), "+x"(c06));
    __asm__("" : "+x"(c10), "+x"(c11), "+x"(c12), "+x"(c13), "+x"(c14), "+x"(c15), "+x"(c16));
  }
  const __m256i r0[7] = {c00, c01, c02, c03, c04, c05, c06}, r1[7] = {c10, c11, c12, c13, c14, c15, c16};
  for (int b = 0; b < NB; ++b) o0[b] = r0[b], o1[b] = r1[b];
}

// 1'. The short-row schedule of step 1 (N ≤ 56: every windowed Swin head):
// z rows and maxima as qk_rows, for 2 query rows against all NB ≤ 7 column blocks at once on
// tile_2x7 (no 16-column tiles, so no fill/drain and epilogue per tile, and one row of padding at
// most instead of three). Per pair step 2 broadcasts and 14 vpmaddwd with memory operands.
template <bool kBias, int NB>
__attribute__((noinline)) void qk_rows2(const Rows2& R, const int32_t* kp, int64_t N, int64_t d2, __m128i pre, int32_t* rowmax) {
  __m256i a0[NB], a1[NB];
  tile_2x7<NB>(R.q[0], R.q[1], kp, d2, a0, a1);
  const __m256i blo = _mm256_set1_epi32(-kAttentionBiasClamp), bhi = _mm256_set1_epi32(kAttentionBiasClamp),
                imin = _mm256_set1_epi32(INT32_MIN);
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(N - (NB - 1) * 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const int32_t* const b2[2] = {R.bias[0], R.bias[1]};
  int32_t* const z2[2] = {R.z[0], R.z[1]};
#pragma GCC unroll 1  // unrolled, GCC spills half the tile's accumulators inside its loop
  for (int r = 0; r < 2; ++r) {
    __m256i mx = imin;
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) {
      __m256i v = r ? a1[b] : a0[b];
      const bool last = b == NB - 1;
      if (kBias) {
        const __m256i bb = last ? _mm256_maskload_epi32(b2[r] + b * 8, tail) : _mm256_loadu_si256((const __m256i*)(b2[r] + b * 8));
        v = _mm256_add_epi32(v, _mm256_min_epi32(_mm256_max_epi32(bb, blo), bhi));
      }
      v = _mm256_sra_epi32(v, pre);
      if (last) v = _mm256_blendv_epi8(imin, v, tail);
      _mm256_store_si256((__m256i*)(z2[r] + b * 8), v);
      mx = _mm256_max_epi32(mx, v);
    }
    rowmax[r] = hmax_epi32_avx2(mx);
  }
}
template <bool kBias>
void qk_rows2_n(const Rows2& R, const int32_t* kp, int64_t N, int64_t d2, __m128i pre, int32_t* rowmax) {
  switch ((N + 7) / 8) {
    case 1: return qk_rows2<kBias, 1>(R, kp, N, d2, pre, rowmax);
    case 2: return qk_rows2<kBias, 2>(R, kp, N, d2, pre, rowmax);
    case 3: return qk_rows2<kBias, 3>(R, kp, N, d2, pre, rowmax);
    case 4: return qk_rows2<kBias, 4>(R, kp, N, d2, pre, rowmax);
    case 5: return qk_rows2<kBias, 5>(R, kp, N, d2, pre, rowmax);
    case 6: return qk_rows2<kBias, 6>(R, kp, N, d2, pre, rowmax);
    default: return qk_rows2<kBias, 7>(R, kp, N, d2, pre, rowmax);
  }
}

}  // namespace

// dh % 16 == 0: q rows as their pair vectors, k in 8×8 int32 transposes, v rows j and j+1 of each
// 8-wide d-block interleaved (regions kp, qp, vp of attention_scratch_bytes)
static void pack_head_dh16(const uint8_t* qb, const uint8_t* kb, const uint8_t* vb, int64_t ld, int64_t N,
                           int64_t dh, int32_t zp, int32_t* kp, int32_t* qp, int16_t* vp) {
  const int64_t d2 = dh / 2, n2 = (N + 1) / 2, db = dh / 8, nb = (N + 7) / 8;
  const __m256i vzp = _mm256_set1_epi16((short)zp), zero = _mm256_setzero_si256();
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
      int32_t* dst = kp + (jb * d2 + d / 2) * 8;  // pair column d/2 + c
      _mm256_store_si256((__m256i*)(dst + 0), _mm256_permute2x128_si256(u0, u4, 0x20));
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
}

// q, k and v of one head as the tiles read them (attention_scratch_bytes's regions kp, qp, vp;
// row16: the widened-row buffer for dh not a multiple of 16).
static void pack_head(const uint8_t* qb, const uint8_t* kb, const uint8_t* vb, int64_t ld, int64_t N, int64_t dh, int32_t zp,
                      int32_t* kp, int32_t* qp, int16_t* vp, int16_t* row16) {
  const int64_t nb = (N + 7) / 8, d2 = (dh + 1) / 2, n2 = (N + 1) / 2, db = (dh + 7) / 8, d8 = db * 8,
                w16 = d8 > 2 * d2 ? d8 : 2 * d2;
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
  if (dh % 16 == 0) {
    pack_head_dh16(qb, kb, vb, ld, N, dh, zp, kp, qp, vp);
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
}

void attention_u8s32_u8_avx2(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y) {
  const int64_t N = p.N, dh = p.dh, C = p.H * dh, ld = 3 * C, w = t / p.H, h = t % p.H;
  const int64_t n8 = (N + 7) / 8 * 8, n16 = (N + 15) / 16 * 16, d2 = (dh + 1) / 2, n2 = (N + 1) / 2,
                d8 = (dh + 7) / 8 * 8;
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
  int32_t* sz = reinterpret_cast<int32_t*>(sp);     sp += al32((size_t)(kAttentionRowGroup * n16 * 4));
  int16_t* pe = reinterpret_cast<int16_t*>(sp);     sp += al32((size_t)(kAttentionRowGroup * n16 * 2));
  int16_t* row16 = reinterpret_cast<int16_t*>(sp);  // [N + 1][w16]

  pack_head(qb, kb, vb, ld, N, dh, zp, kp, qp, vp, row16);

  const __m128i pre = _mm_cvtsi32_si128(p.sm.pre_shift);
  ExpConsts ec;
  ec.mult = _mm256_set1_epi32(p.exp_mult);
  ec.shift = _mm_cvtsi32_si128(p.exp_shift);
  ec.qb = _mm256_set1_epi32(kAttentionExpQb);
  ec.qc = _mm256_set1_epi32(kAttentionExpQc);
  ec.m255 = _mm256_set1_epi32(255);
  ec.es = _mm256_set1_epi32(attention_exp_shift(N));
  const int32_t* vp32 = reinterpret_cast<const int32_t*>(vp);
  const AttentionOutRows out = attention_out_rows(p, t, y);
  // short rows (every windowed Swin head): q·kᵀ per row pair on whole rows (qk_rows2)
  const bool shortrows = N <= 56;
  constexpr int G = kAttentionRowGroup;
  int32_t rowmax[kAttentionRowGroup], rm[kAttentionRowGroup], rs[kAttentionRowGroup], rsum[kAttentionRowGroup];
  // Row groups of G: all their z, then all their exps, then P·V (each phase's loads read stores
  // made long before; the exps are written as 32-byte vectors and P·V reads them as 4-byte pairs)
  const int64_t rb = p.row_begin, re = p.row_end ? p.row_end : N;  // the query rows asked for
  for (int64_t g = rb; g < re; g += G) {
    const int64_t gr = re - g < G ? re - g : G;
    for (int64_t i = g; shortrows && i < g + gr; i += 2) {  // 1'. q·kᵀ of 2 rows
      const Rows2 R = query_rows<2>(i, g, N, qp, d2, p, t, sz, n16);
      if (p.bias) qk_rows2_n<true>(R, kp, N, d2, pre, rowmax + (i - g));
      else qk_rows2_n<false>(R, kp, N, d2, pre, rowmax + (i - g));
    }
    for (int64_t i = g; !shortrows && i < g + gr; i += 4) {
      const QkRows R = query_rows<4>(i, g, N, qp, d2, p, t, sz, n16);
      if (p.bias) qk_rows<true>(R, kp, N, d2, pre, rowmax + (i - g));
      else qk_rows<false>(R, kp, N, d2, pre, rowmax + (i - g));
    }
    // 2. exps as int16 (zero beyond N), the row sums and the rows' output scales
    for (int64_t r = 0; r < gr; ++r) {
      const int32_t* zr = sz + r * n16;
      int16_t* er = pe + r * n16;
      const __m256i mxv = _mm256_set1_epi32(rowmax[r]), thr = _mm256_set1_epi32(rowmax[r] - 31 * p.sm.L);
      __m256i sum = _mm256_setzero_si256();
      for (int64_t j = 0; j < n16; j += 16) {
        const __m256i e0 = exp8(_mm256_load_si256((const __m256i*)(zr + j)), mxv, thr, ec);
        const __m256i e1 = j + 8 < n8 ? exp8(_mm256_load_si256((const __m256i*)(zr + j + 8)), mxv, thr, ec) : _mm256_setzero_si256();
        sum = _mm256_add_epi32(sum, _mm256_add_epi32(e0, e1));
        _mm256_store_si256((__m256i*)(er + j), _mm256_permute4x64_epi64(_mm256_packus_epi32(e0, e1), 0xD8));
      }
      rsum[r] = hsum_epi32_avx2(sum);
    }
    // the row scales after all the group's exps: their divisions are independent and pipeline
    // (one per row right after its sum left each row's bsr → vdivsd → convert chain exposed)
    for (int64_t r = 0; r < gr; ++r) attention_row_scale(p.mult, p.shift, rsum[r], rm + r, rs + r);
    for (int64_t i = g; i < g + gr; i += 4) {
      PvRows R;
      R.mr = (int)(g + gr - i < 4 ? g + gr - i : 4);
      for (int r = 0; r < 4; ++r) {
        const int64_t k = i - g + (r < R.mr ? r : 0);
        R.e[r] = reinterpret_cast<const int32_t*>(pe + k * n16);
        R.y[r] = out.row(g + k);
        R.m[r] = rm[k], R.s[r] = rs[k];
      }
      pv_rows(R, vp32, n2, dh, p.y_zp, p.y_max);
    }
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
