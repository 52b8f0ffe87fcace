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
  SWQ_YMM12_LOCALS(a, lda);
#define SWQ_V24(AR, C0, C1, C2)                                 \
  "vpbroadcastd (%[" AR "],%[k]), %%ymm15\n\t"                  \
  "%{vex%} vpdpbusd %%ymm12, %%ymm15, %[" C0 "]\n\t"             \
  "%{vex%} vpdpbusd %%ymm13, %%ymm15, %[" C1 "]\n\t"             \
  "%{vex%} vpdpbusd %%ymm14, %%ymm15, %[" C2 "]\n\t"
  __asm__(
      SWQ_YMM12_ZERO
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
      : [k] "+r"(k), [kb] "+r"(kb), SWQ_YMM12_OUTPUTS
      : SWQ_YMM12_INPUTS
      : "memory", "cc", "xmm12", "xmm13", "xmm14", "xmm15");
#undef SWQ_V24
  SWQ_YMM12_TO(acc);
}

// The VNNI tiles for gemm_rows_ymm (qgemm_epilogue_avx2.h).
namespace {  // internal linkage: no weak copy of an AVX2-compiled member for other objects
struct TilesAvxVnni {
  static bool tile24_takes(const PackedB&) { return true; }  // exact for every weight
  static void tile24(const uint8_t* a, int64_t lda, const int8_t* s0, const int8_t* s1, const int8_t* s2, int64_t K,
                     __m256i acc[4][3]) {
    gemm_u8s8_s32_4x24_avxvnni(a, lda, s0, s1, s2, K, acc);
  }
  template <int MR>
  static inline __attribute__((always_inline)) void tile16(const GemmCtx& c, int64_t m, int64_t p, __m256i acc[4][2]) {
    const PackedB& B = *c.B;
    gemm_u8s8_s32_4x16_avxvnni<MR>(c.A + m * c.lda, c.lda, B.b8.data() + p * b8_panel_bytes(B), B.K, acc);
  }
};
}  // namespace

void gemm_u8s8_q_avxvnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  gemm_rows_ymm<TilesAvxVnni>(c, m0, m1, p0, p1);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
