// u8 × s8 → s32 GEMM for AVX-512 VNNI: the micro-kernel gemm_u8s8_s32_4x48_avx512vnni (and its
// 1–3-row, 1–2-panel forms) runs vpdpbusd on zmm over the same packed B as the AVX2 kernels: one
// 16-column panel's k-quad is 64 bytes, [16][4], exactly one zmm. vpdpbusd adds the four u8·s8
// products of a lane to int32 without an int16 step, so it is exact for every weight (no
// maddubs_safe / int16 fallback) and agrees with the scalar reference bit for bit. The sums
// leave the kernel as ymm halves into the AVX2 epilogue (qgemm_epilogue_avx2.h), compiled here
// with the same integer steps.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "qavx2.h"
#include "qavx512.h"
#include "qgemm_epilogue_avx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

// acc[r][j] = Σ_k a[r][k]·b[k][16j .. 16j + 15] for rows r < MR and panels j < NP; b: panel 0's
// [Kp/4][16][4] block, the next panels pstride bytes apart (zero-padded past K). The tails' form
// (fewer rows or panels); the full tile is the asm below.
template <int MR, int NP>
static inline __attribute__((always_inline)) void gemm_u8s8_s32_vnni(const uint8_t* a, int64_t lda, const int8_t* b,
                                                                      int64_t pstride, int64_t K, __m512i acc[4][3]) {
  __m512i c[4][3];
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 3; ++j) c[r][j] = _mm512_setzero_si512();
  const int64_t kq = K / 4 * 4;
  int64_t k = 0;
  const int8_t* bp = b;
  for (; k < kq; k += 4, bp += 64) {
    __m512i bv[NP];
    for (int j = 0; j < NP; ++j) bv[j] = _mm512_loadu_si512((const void*)(bp + j * pstride));
    for (int r = 0; r < MR; ++r) {
      uint32_t v;
      std::memcpy(&v, a + r * lda + k, 4);
      const __m512i av = _mm512_set1_epi32((int)v);
      for (int j = 0; j < NP; ++j) c[r][j] = _mm512_dpbusd_epi32(c[r][j], av, bv[j]);
    }
  }
  if (kq < K) {  // ragged K: only the bytes that exist (B is zero-padded)
    __m512i bv[NP];
    for (int j = 0; j < NP; ++j) bv[j] = _mm512_loadu_si512((const void*)(bp + j * pstride));
    for (int r = 0; r < MR; ++r) {
      uint32_t v = 0;
      std::memcpy(&v, a + r * lda + kq, (size_t)(K - kq));
      const __m512i av = _mm512_set1_epi32((int)v);
      for (int j = 0; j < NP; ++j) c[r][j] = _mm512_dpbusd_epi32(c[r][j], av, bv[j]);
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 3; ++j) acc[r][j] = c[r][j];
}

// The full 4-row × 48-column tile in asm: GCC copies every vpdpbusd accumulator through another
// register each k-quad from the intrinsics (24 extra moves per 12 vpdpbusd, checked with
// objdump). zmm29-31 = the three panels' 64-byte k-quad, zmm28 the row's 4 codes broadcast;
// 12 accumulators cover vpdpbusd's latency at 2 per cycle (Zen 5). K % 4 == 0.
static inline __attribute__((always_inline)) void gemm_u8s8_s32_4x48_avx512vnni(const uint8_t* a, int64_t lda,
                                                                                 const int8_t* b, int64_t pstride,
                                                                                 int64_t K, __m512i acc[4][3]) {
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + lda;
  const uint8_t* a2 = a + 2 * lda;
  const uint8_t* a3 = a + 3 * lda;
  int64_t k = 0;
  const int8_t* bp = b;
  __m512i c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
#define SWQ_R48(AR, C0, C1, C2)                          \
  "vpbroadcastd (%[" AR "],%[k]), %%zmm28\n\t"            \
  "vpdpbusd %%zmm29, %%zmm28, %[" C0 "]\n\t"              \
  "vpdpbusd %%zmm30, %%zmm28, %[" C1 "]\n\t"              \
  "vpdpbusd %%zmm31, %%zmm28, %[" C2 "]\n\t"
  __asm__(
      "vpxord %[c00], %[c00], %[c00]\n\t"
      "vpxord %[c01], %[c01], %[c01]\n\t"
      "vpxord %[c02], %[c02], %[c02]\n\t"
      "vpxord %[c10], %[c10], %[c10]\n\t"
      "vpxord %[c11], %[c11], %[c11]\n\t"
      "vpxord %[c12], %[c12], %[c12]\n\t"
      "vpxord %[c20], %[c20], %[c20]\n\t"
      "vpxord %[c21], %[c21], %[c21]\n\t"
      "vpxord %[c22], %[c22], %[c22]\n\t"
      "vpxord %[c30], %[c30], %[c30]\n\t"
      "vpxord %[c31], %[c31], %[c31]\n\t"
      "vpxord %[c32], %[c32], %[c32]\n\t"
      "test %[K], %[K]\n\t"
      "jle 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vmovdqu64 (%[b]), %%zmm29\n\t"
      "vmovdqu64 (%[b],%[ps]), %%zmm30\n\t"
      "vmovdqu64 (%[b],%[ps],2), %%zmm31\n\t"
      SWQ_R48("a0", "c00", "c01", "c02") SWQ_R48("a1", "c10", "c11", "c12")
      SWQ_R48("a2", "c20", "c21", "c22") SWQ_R48("a3", "c30", "c31", "c32")
      "add $64, %[b]\n\t"
      "add $4, %[k]\n\t"
      "cmp %[K], %[k]\n\t"
      "jl 1b\n"
      "2:\n\t"
      : [k] "+r"(k), [b] "+r"(bp), [c00] "=&v"(c00), [c01] "=&v"(c01), [c02] "=&v"(c02), [c10] "=&v"(c10),
        [c11] "=&v"(c11), [c12] "=&v"(c12), [c20] "=&v"(c20), [c21] "=&v"(c21), [c22] "=&v"(c22),
        [c30] "=&v"(c30), [c31] "=&v"(c31), [c32] "=&v"(c32)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [ps] "r"(pstride), [K] "r"(K)
      : "memory", "cc", "xmm28", "xmm29", "xmm30", "xmm31");
#undef SWQ_R48
  acc[0][0] = c00, acc[0][1] = c01, acc[0][2] = c02, acc[1][0] = c10, acc[1][1] = c11, acc[1][2] = c12;
  acc[2][0] = c20, acc[2][1] = c21, acc[2][2] = c22, acc[3][0] = c30, acc[3][1] = c31, acc[3][2] = c32;
}

// The epilogue of MR rows × NP panels [p, p + NP) through the per-panel AVX2 form (any row count,
// a ragged last panel).
template <int MR, int NP>
static inline void epilogue_panels(const GemmCtx& c, int64_t m, const PanelEp* pe, __m512i acc[4][3],
                                   const int32_t* rowsum) {
  for (int j = 0; j < NP; ++j) {
    __m256i t[4][2];
    for (int r = 0; r < 4; ++r) t[r][0] = lo256(acc[r][j]), t[r][1] = hi256(acc[r][j]);
    epilogue<MR>(c, m, pe[j], t, rowsum);
  }
}

template <int MR, int NP>
static inline void tile_vnni(const GemmCtx& c, int64_t m, int64_t p, const PanelEp* pe, int32_t* rowsum) {
  const PackedB& B = *c.B;
  const int64_t pstride = b8_panel_bytes(B);
  row_sums(c, m, MR, rowsum);
  __m512i acc[4][3];
  gemm_u8s8_s32_vnni<MR, NP>(c.A + m * c.lda, c.lda, B.b8.data() + p * pstride, pstride, B.K, acc);
  epilogue_panels<MR, NP>(c, m, pe, acc, rowsum);
}

template <int NP>
static inline void rows_tail(const GemmCtx& c, int64_t m, int mr, int64_t p, const PanelEp* pe, int32_t* rowsum) {
  switch (mr) {
    case 4: tile_vnni<4, NP>(c, m, p, pe, rowsum); break;
    case 3: tile_vnni<3, NP>(c, m, p, pe, rowsum); break;
    case 2: tile_vnni<2, NP>(c, m, p, pe, rowsum); break;
    default: tile_vnni<1, NP>(c, m, p, pe, rowsum); break;
  }
}

// Epilogue constants of 48 columns for 8-bit outputs with every shift ≥ 32 (the usual linear):
// the whole epilogue on zmm, a row's 48 codes from three vpmovdb. Other outputs take the ymm one.
struct Ep48 {
  __m512i bias[3];
  Rq16 f[3];
  __m512i lo, hi, zp;  // clamp, then + zp (zp = 0 and lo, hi = qmin, qmax when the zero point is folded)
  int64_t n0;
  bool zp_add;
};
static inline bool ep48_applies(const GemmCtx& c) {
  return (c.ep->out == QType::u8 || c.ep->out == QType::s8) && c.shifts_ge32;
}
static inline Ep48 ep48(const GemmCtx& c, int64_t n0) {
  Ep48 e;
  e.n0 = n0;
  const int64_t zp = c.ep->rq.zero_point, az = zp < 0 ? -zp : zp;
  // |zp|·2^(s−32) < 2^30 for every column keeps the high dword in int32 (usually known for the call)
  bool fold = c.zp_folds;
  if (!fold) {
    fold = true;
    for (int j = 0; j < 48; ++j) fold = fold && (az << (c.shift[n0 + j] - 32)) < (int64_t(1) << 30);
  }
  for (int j = 0; j < 3; ++j) {
    e.bias[j] = _mm512_loadu_si512((const void*)(c.bias_eff + n0 + 16 * j));
    e.f[j] = rq16_prepare(_mm512_loadu_si512((const void*)(c.mult + n0 + 16 * j)),
                          _mm512_loadu_si512((const void*)(c.shift + n0 + 16 * j)), fold ? zp : 0);
  }
  e.lo = _mm512_set1_epi32(fold ? c.lo + (int32_t)zp : c.lo);
  e.hi = _mm512_set1_epi32(fold ? c.hi + (int32_t)zp : c.hi);
  e.zp = _mm512_set1_epi32((int32_t)zp);
  e.zp_add = !fold;
  return e;
}
static inline __attribute__((always_inline)) void epilogue48(const GemmCtx& c, int64_t m, const Ep48& e,
                                                             __m512i acc[4][3], const int32_t* rowsum) {
  const bool relu = c.ep->relu, zp_add = e.zp_add;
  const uint32_t wzp = (uint32_t)c.B->w_zero_point;
  uint8_t* const C = static_cast<uint8_t*>(c.C);
  const int64_t ldc = c.ldc;
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    uint8_t* dst = C + (m + r) * ldc + e.n0;
    for (int j = 0; j < 3; ++j) {
      __m512i v = _mm512_add_epi32(acc[r][j], e.bias[j]);
      if (wzp) v = _mm512_sub_epi32(v, _mm512_set1_epi32((int32_t)(wzp * (uint32_t)rowsum[r])));
      if (relu) v = _mm512_max_epi32(v, _mm512_setzero_si512());
      v = _mm512_min_epi32(_mm512_max_epi32(requant16_fast_noclamp_avx512(v, e.f[j]), e.lo), e.hi);
      if (zp_add) v = _mm512_add_epi32(v, e.zp);
      // in the output type's range: the truncating vpmovdb is exact
      _mm_storeu_si128((__m128i*)(dst + 16 * j), _mm512_cvtepi32_epi8(v));
    }
  }
}

// Rows [mb, me) × the 48 columns of panels [p, p + 3), all inside N: 4×48 tiles with the
// epilogue's constants prepared once for the row block, then the < 4 leftover rows.
static void rows_48(const GemmCtx& c, int64_t mb, int64_t me, int64_t p) {
  const PackedB& B = *c.B;
  const int64_t pstride = b8_panel_bytes(B);
  const int8_t* b = B.b8.data() + p * pstride;
  const bool zmm_ep = ep48_applies(c);
  Ep48 ez;
  Ep24 e0, e1;
  if (zmm_ep) ez = ep48(c, p * 16);
  else e0 = ep24(c, p * 16), e1 = ep24(c, p * 16 + 24);
  alignas(32) int32_t rowsum[4] = {0, 0, 0, 0};
  const int64_t mend = mb + (me - mb) / 4 * 4;
  // the next 48 columns' weights into L2, a share before each tile (cold ViT-B weights: 4–10 %)
  NextWeights next(B.b8.data(), (int64_t)B.b8.size(), (p + 3) * pstride, 3 * pstride, B.Kp, (mend - mb) / 4);
  for (int64_t m = mb; m < mend; m += 4) {
    next.share();
    row_sums(c, m, 4, rowsum);
    __m512i acc[4][3];
    if (B.K % 4 == 0) gemm_u8s8_s32_4x48_avx512vnni(c.A + m * c.lda, c.lda, b, pstride, B.K, acc);
    else gemm_u8s8_s32_vnni<4, 3>(c.A + m * c.lda, c.lda, b, pstride, B.K, acc);
    if (zmm_ep) {
      epilogue48(c, m, ez, acc, rowsum);
      continue;
    }
    __m256i t0[4][3], t1[4][3];
    for (int r = 0; r < 4; ++r) {
      t0[r][0] = lo256(acc[r][0]), t0[r][1] = hi256(acc[r][0]), t0[r][2] = lo256(acc[r][1]);
      t1[r][0] = hi256(acc[r][1]), t1[r][1] = lo256(acc[r][2]), t1[r][2] = hi256(acc[r][2]);
    }
    epilogue24(c, m, e0, t0, rowsum);
    epilogue24(c, m, e1, t1, rowsum);
  }
  if (mend < me) {
    const PanelEp pe[3] = {panel_ep(c, p), panel_ep(c, p + 1), panel_ep(c, p + 2)};
    rows_tail<3>(c, mend, (int)(me - mend), p, pe, rowsum);
  }
}

void gemm_u8s8_q_avx512vnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const int64_t mc = gemm_row_block(B.Kp);
  alignas(32) int32_t rowsum[4] = {0, 0, 0, 0};
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t me = std::min(m1, mb + mc);
    for (int64_t p = p0; p < p1; p += 3) {
      const int np = (int)std::min<int64_t>(3, p1 - p);
      if (np == 3 && (p + 3) * 16 <= B.N) {
        rows_48(c, mb, me, p);
        continue;
      }
      PanelEp pe[3];
      for (int j = 0; j < np; ++j) pe[j] = panel_ep(c, p + j);
      for (int64_t m = mb; m < me; m += 4) {
        const int mr = (int)std::min<int64_t>(4, me - m);
        switch (np) {
          case 3: rows_tail<3>(c, m, mr, p, pe, rowsum); break;
          case 2: rows_tail<2>(c, m, mr, p, pe, rowsum); break;
          default: rows_tail<1>(c, m, mr, p, pe, rowsum); break;
        }
      }
    }
    table_rows(c, mb, me, p0, p1);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
