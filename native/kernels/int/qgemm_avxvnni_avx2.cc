// u8 × s8 → s32 GEMM for the avxvnni kernel set (AVX2 + AVX-VNNI, no AVX-512: Intel Alder Lake and
// later client cores, Sierra Forest; any AVX-VNNI CPU): the AVX2 GEMM's tiles and epilogue with
// the products on `{vex} vpdpbusd` ymm — the four u8·s8 products of a lane added to int32 in one
// instruction, exact for every weight (no vpmaddubsw saturation, so no int16 fallback), a third
// of the AVX2 sequence's instructions. The vpdpbusd are inline asm (this file is built with the
// AVX2 flags; GCC 12 needs -mavxvnni for the intrinsic), the rest is the AVX2 code
// (qgemm_epilogue_avx2.h). The same integers as the scalar reference.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "qavx2.h"
#include "qgemm_epilogue_avx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

// acc += Σ of the four u8 × s8 products per lane of a (u8) and b (s8)
static inline __attribute__((always_inline)) __m256i dpbusd_vex(__m256i acc, __m256i a, __m256i b) {
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a), "x"(b));
  return acc;
}

// acc[r][0..1] = Σ_k a[r][k]·b[k][0..15] over one 16-column panel (b: [Kp/4][16][4], zero-padded
// past K), rows r < MR; any K.
template <int MR>
static inline __attribute__((always_inline)) void gemm_u8s8_s32_4x16_avxvnni(const uint8_t* a, int64_t lda,
                                                                             const int8_t* b, int64_t K,
                                                                             __m256i acc[4][2]) {
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const int64_t kq = K / 4 * 4;
  for (int64_t k = 0; k < K; k += 4, b += 64) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b), b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
    const size_t n = k < kq ? 4 : (size_t)(K - kq);  // ragged K: only the bytes that exist
    auto bcast = [&](int r) {
      uint32_t v = 0;
      std::memcpy(&v, a + r * lda + k, n);
      return _mm256_set1_epi32((int)v);
    };
    __m256i av = bcast(0);
    c00 = dpbusd_vex(c00, av, b0), c01 = dpbusd_vex(c01, av, b1);
    if (MR > 1) av = bcast(1), c10 = dpbusd_vex(c10, av, b0), c11 = dpbusd_vex(c11, av, b1);
    if (MR > 2) av = bcast(2), c20 = dpbusd_vex(c20, av, b0), c21 = dpbusd_vex(c21, av, b1);
    if (MR > 3) av = bcast(3), c30 = dpbusd_vex(c30, av, b0), c31 = dpbusd_vex(c31, av, b1);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

// 4 rows × 24 columns in asm: ymm0–11 accumulators (row r, 8-column slab j), ymm12–14 the k-quad of
// three 8-column slabs of the [N/16][K/4][16][4] packing (slab s: panel s/2, half s%2, as the AVX2
// 4×24 tile reads them), ymm15 a row's four codes broadcast. Per k-quad 3 loads, 4 broadcasts and
// 12 vpdpbusd (the AVX2 tile: 36 vector instructions). The slabs in registers, not as memory
// operands of the vpdpbusd: Zen 5 ran that form at about one a cycle (2× slower). K % 4 == 0.
static inline void gemm_u8s8_s32_4x24_avxvnni(const uint8_t* a, int64_t lda, const int8_t* s0, const int8_t* s1,
                                              const int8_t* s2, int64_t K, __m256i acc[4][3]) {
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + lda;
  const uint8_t* a2 = a + 2 * lda;
  const uint8_t* a3 = a + 3 * lda;
  int64_t k = 0, kb = 0;
  __m256i c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
#define SWQ_V24(AR, C0, C1, C2)                                 \
  "vpbroadcastd (%[" AR "],%[k]), %%ymm15\n\t"                  \
  "%{vex%} vpdpbusd %%ymm12, %%ymm15, %[" C0 "]\n\t"             \
  "%{vex%} vpdpbusd %%ymm13, %%ymm15, %[" C1 "]\n\t"             \
  "%{vex%} vpdpbusd %%ymm14, %%ymm15, %[" C2 "]\n\t"
  __asm__(
      "vpxor %[c00], %[c00], %[c00]\n\t"
      "vpxor %[c01], %[c01], %[c01]\n\t"
      "vpxor %[c02], %[c02], %[c02]\n\t"
      "vpxor %[c10], %[c10], %[c10]\n\t"
      "vpxor %[c11], %[c11], %[c11]\n\t"
      "vpxor %[c12], %[c12], %[c12]\n\t"
      "vpxor %[c20], %[c20], %[c20]\n\t"
      "vpxor %[c21], %[c21], %[c21]\n\t"
      "vpxor %[c22], %[c22], %[c22]\n\t"
      "vpxor %[c30], %[c30], %[c30]\n\t"
      "vpxor %[c31], %[c31], %[c31]\n\t"
      "vpxor %[c32], %[c32], %[c32]\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vmovdqu (%[s0],%[kb]), %%ymm12\n\t"
      "vmovdqu (%[s1],%[kb]), %%ymm13\n\t"
      "vmovdqu (%[s2],%[kb]), %%ymm14\n\t"
      SWQ_V24("a0", "c00", "c01", "c02") SWQ_V24("a1", "c10", "c11", "c12")
      SWQ_V24("a2", "c20", "c21", "c22") SWQ_V24("a3", "c30", "c31", "c32")
      "add $4, %[k]\n\t"
      "add $64, %[kb]\n\t"
      "cmp %[K], %[k]\n\t"
      "jl 1b\n\t"
      : [k] "+r"(k), [kb] "+r"(kb), [c00] "=&x"(c00), [c01] "=&x"(c01), [c02] "=&x"(c02), [c10] "=&x"(c10),
        [c11] "=&x"(c11), [c12] "=&x"(c12), [c20] "=&x"(c20), [c21] "=&x"(c21), [c22] "=&x"(c22),
        [c30] "=&x"(c30), [c31] "=&x"(c31), [c32] "=&x"(c32)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [s0] "r"(s0), [s1] "r"(s1), [s2] "r"(s2),
        [K] "r"(K)
      : "memory", "cc", "xmm12", "xmm13", "xmm14", "xmm15");
#undef SWQ_V24
  acc[0][0] = c00, acc[0][1] = c01, acc[0][2] = c02, acc[1][0] = c10, acc[1][1] = c11, acc[1][2] = c12;
  acc[2][0] = c20, acc[2][1] = c21, acc[2][2] = c22, acc[3][0] = c30, acc[3][1] = c31, acc[3][2] = c32;
}

// Rows [mb, me) × panels [p0, p1) in 4×24 tiles (N % 24 == 0, a 24-aligned range); returns the first
// row not done (the < 4 leftover rows go through the 4×16 path).
static int64_t rows_4x24_avxvnni(const GemmCtx& c, int64_t mb, int64_t me, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const int64_t mend = mb + (me - mb) / 4 * 4;
  const int64_t panel_bytes = (int64_t)(B.Kp / 4) * 64;
  alignas(32) int32_t rowsum[4] = {0, 0, 0, 0};
  const int64_t t1 = (std::min<int64_t>(p1 * 16, B.N) + 23) / 24;
  for (int64_t t = p0 * 16 / 24; t < t1; ++t) {
    const Ep24 e = ep24(c, t * 24);
    const int8_t* s[3];
    for (int j = 0; j < 3; ++j) {
      const int64_t slab = 3 * t + j;
      s[j] = B.b8.data() + (slab >> 1) * panel_bytes + (slab & 1) * 32;
    }
    for (int64_t m = mb; m < mend; m += 4) {
      row_sums(c, m, 4, rowsum);
      __m256i acc[4][3];
      gemm_u8s8_s32_4x24_avxvnni(c.A + m * c.lda, c.lda, s[0], s[1], s[2], B.K, acc);
      epilogue24(c, m, e, acc, rowsum);
    }
  }
  return mend;
}

template <int MR>
static inline __attribute__((always_inline)) void tile_avxvnni(const GemmCtx& c, int64_t m, int64_t p, const PanelEp& pe,
                                                               const int32_t* rowsum) {
  const PackedB& B = *c.B;
  __m256i acc[4][2];
  gemm_u8s8_s32_4x16_avxvnni<MR>(c.A + m * c.lda, c.lda, B.b8.data() + p * (B.Kp / 4) * 64, B.K, acc);
  epilogue<MR>(c, m, pe, acc, rowsum);
}

void gemm_u8s8_q_avxvnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const int64_t mc = gemm_row_block(B.Kp);
  // the 4×24 tile when N % 24 == 0 and the panel range starts and ends on a 24-column boundary
  const bool wide = B.N % 24 == 0 && B.K % 4 == 0 && p0 % 3 == 0 && (p1 == B.Np / 16 || p1 % 3 == 0);
  alignas(32) int32_t rowsum[4] = {0, 0, 0, 0};
  for (int64_t mb = m0; mb < m1; mb += mc) {
    const int64_t me = std::min(m1, mb + mc);
    const int64_t mrest = wide ? rows_4x24_avxvnni(c, mb, me, p0, p1) : mb;
    for (int64_t p = p0; p < p1 && mrest < me; ++p) {
      const PanelEp pe = panel_ep(c, p);
      for (int64_t m = mrest; m < me; m += 4) {
        const int mr = (int)std::min<int64_t>(4, me - m);
        row_sums(c, m, mr, rowsum);
        switch (mr) {
          case 4: tile_avxvnni<4>(c, m, p, pe, rowsum); break;
          case 3: tile_avxvnni<3>(c, m, p, pe, rowsum); break;
          case 2: tile_avxvnni<2>(c, m, p, pe, rowsum); break;
          default: tile_avxvnni<1>(c, m, p, pe, rowsum); break;
        }
      }
    }
    table_rows(c, mb, me, p0, p1);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
