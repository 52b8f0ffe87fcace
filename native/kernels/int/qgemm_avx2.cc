// u8 × s8 → s32 GEMM for AVX2: the 4×16 micro-kernel gemm_u8s8_s32_4x16_avx2 (vpmaddubsw,
// vpmaddwd with ones, vpaddd; 8 accumulators), the 4×24 one gemm_u8s8_s32_4x24_avx2 (12
// accumulators, used when N % 24 == 0) and the exact fallback gemm_u8s16_s32_4x16_avx2
// (vpmaddwd on int16 pairs) for weights whose pairs could saturate vpmaddubsw. Fused epilogue:
// bias (zero points folded), row-sum correction, ReLU, requantize, pack, table.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <cstdlib>
#include <new>

#include "qavx2.h"
#include "qgemm_epilogue_avx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

static inline __m256i bcast_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32((int)v);
}

// acc[r][0..1] = Σ_k a[r][k]·b[k][0..15] over one 16-column panel (b: [K/4][16][4]).
template <int MR>
static inline void gemm_u8s8_s32_4x16_avx2(const uint8_t* a, int64_t lda, const int8_t* b, int64_t K,
                                           __m256i acc[4][2]) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + (MR > 1 ? lda : 0);
  const uint8_t* a2 = a + (MR > 2 ? 2 * lda : 0);
  const uint8_t* a3 = a + (MR > 3 ? 3 * lda : 0);
#define SWQ_STEP(AV, C0, C1)                                                           \
  {                                                                                    \
    __m256i t0 = _mm256_madd_epi16(_mm256_maddubs_epi16(AV, b0), ones);                \
    __m256i t1 = _mm256_madd_epi16(_mm256_maddubs_epi16(AV, b1), ones);                \
    C0 = _mm256_add_epi32(C0, t0);                                                     \
    C1 = _mm256_add_epi32(C1, t1);                                                     \
  }
  int64_t k = 0;
  for (; k + 4 <= K; k += 4, b += 64) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
    SWQ_STEP(bcast_u32(a0 + k), c00, c01);
    if (MR > 1) SWQ_STEP(bcast_u32(a1 + k), c10, c11);
    if (MR > 2) SWQ_STEP(bcast_u32(a2 + k), c20, c21);
    if (MR > 3) SWQ_STEP(bcast_u32(a3 + k), c30, c31);
  }
  if (k < K) {  // ragged K: load only the bytes that exist (B is zero-padded)
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
    auto tail = [&](const uint8_t* ar) {
      uint32_t v = 0;
      std::memcpy(&v, ar + k, (size_t)(K - k));
      return _mm256_set1_epi32((int)v);
    };
    SWQ_STEP(tail(a0), c00, c01);
    if (MR > 1) SWQ_STEP(tail(a1), c10, c11);
    if (MR > 2) SWQ_STEP(tail(a2), c20, c21);
    if (MR > 3) SWQ_STEP(tail(a3), c30, c31);
  }
#undef SWQ_STEP
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

// One k-quad of the 4×16 tile: b[0..7] from B0 (into ymm8), b[8..15] from B1 as a memory
// operand, the rows' 4 codes at byte A past k.
#define SWQ_KQUAD(B0, B1, A)                                  \
  "vmovdqu " B0 "(%[b]), %%ymm8\n\t"                          \
  "vpbroadcastd " A "(%[a0],%[k]), %%ymm9\n\t"                \
  "vpbroadcastd " A "(%[a1],%[k]), %%ymm11\n\t"               \
  "vpmaddubsw %%ymm8, %%ymm9, %%ymm10\n\t"                    \
  "vpmaddubsw " B1 "(%[b]), %%ymm9, %%ymm9\n\t"               \
  "vpmaddubsw %%ymm8, %%ymm11, %%ymm12\n\t"                   \
  "vpmaddubsw " B1 "(%[b]), %%ymm11, %%ymm11\n\t"             \
  "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"                    \
  "vpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"                      \
  "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n\t"                    \
  "vpmaddwd %%ymm15, %%ymm11, %%ymm11\n\t"                    \
  "vpaddd %%ymm10, %[c00], %[c00]\n\t"                        \
  "vpaddd %%ymm9, %[c01], %[c01]\n\t"                         \
  "vpaddd %%ymm12, %[c10], %[c10]\n\t"                        \
  "vpaddd %%ymm11, %[c11], %[c11]\n\t"                        \
  "vpbroadcastd " A "(%[a2],%[k]), %%ymm13\n\t"               \
  "vpbroadcastd " A "(%[a3],%[k]), %%ymm9\n\t"                \
  "vpmaddubsw %%ymm8, %%ymm13, %%ymm14\n\t"                   \
  "vpmaddubsw " B1 "(%[b]), %%ymm13, %%ymm13\n\t"             \
  "vpmaddubsw %%ymm8, %%ymm9, %%ymm10\n\t"                    \
  "vpmaddubsw " B1 "(%[b]), %%ymm9, %%ymm9\n\t"               \
  "vpmaddwd %%ymm15, %%ymm14, %%ymm14\n\t"                    \
  "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n\t"                    \
  "vpmaddwd %%ymm15, %%ymm10, %%ymm10\n\t"                    \
  "vpmaddwd %%ymm15, %%ymm9, %%ymm9\n\t"                      \
  "vpaddd %%ymm14, %[c20], %[c20]\n\t"                        \
  "vpaddd %%ymm13, %[c21], %[c21]\n\t"                        \
  "vpaddd %%ymm10, %[c30], %[c30]\n\t"                        \
  "vpaddd %%ymm9, %[c31], %[c31]\n\t"

// The full 4-row tile in hand-written asm: GCC's code for the intrinsics above spills
// accumulators to the stack inside the loop (checked with -S), which costs ~25 %. Registers:
// ymm0-7 accumulators, ymm8 = b[0..7], b[8..15] as a memory operand, ymm9-14 temporaries,
// ymm15 = int16 ones. Per k-quad: 8 vpmaddubsw + 8 vpmaddwd (the FP0/FP3 bound) + 8 vpaddd.
static inline void gemm_u8s8_s32_4x16_asm_avx2(const uint8_t* a, int64_t lda, const int8_t* b, int64_t K,
                                               __m256i acc[4][2]) {
  const int64_t kq = K / 4 * 4;
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + lda;
  const uint8_t* a2 = a + 2 * lda;
  const uint8_t* a3 = a + 3 * lda;
  int64_t k = 0;
  const int8_t* bp = b;
  // accumulators are asm outputs (GCC gives them ymm0-7, the only registers not clobbered), so
  // they flow into the epilogue without a round trip through memory
  __m256i c00, c01, c10, c11, c20, c21, c30, c31;
  __asm__(
      "vpxor %[c00], %[c00], %[c00]\n\t"
      "vpxor %[c01], %[c01], %[c01]\n\t"
      "vpxor %[c10], %[c10], %[c10]\n\t"
      "vpxor %[c11], %[c11], %[c11]\n\t"
      "vpxor %[c20], %[c20], %[c20]\n\t"
      "vpxor %[c21], %[c21], %[c21]\n\t"
      "vpxor %[c30], %[c30], %[c30]\n\t"
      "vpxor %[c31], %[c31], %[c31]\n\t"
      "vpcmpeqw %%ymm15, %%ymm15, %%ymm15\n\t"
      "vpsrlw $15, %%ymm15, %%ymm15\n\t"
      // two k-quads per iteration (half the loop branches), then at most one more
      "lea 8(%[k]), %%rax\n\t"
      "cmp %[kq], %%rax\n\t"
      "jg 3f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      SWQ_KQUAD("", "32", "")
      SWQ_KQUAD("64", "96", "4")
      "add $128, %[b]\n\t"
      "add $8, %[k]\n\t"
      "lea 8(%[k]), %%rax\n\t"
      "cmp %[kq], %%rax\n\t"
      "jle 1b\n"
      "3:\n\t"
      "cmp %[kq], %[k]\n\t"
      "jge 2f\n\t"
      SWQ_KQUAD("", "32", "")
      "add $64, %[b]\n\t"
      "add $4, %[k]\n"
      "2:\n\t"
      : [k] "+r"(k), [b] "+r"(bp), [c00] "=&x"(c00), [c01] "=&x"(c01), [c10] "=&x"(c10), [c11] "=&x"(c11),
        [c20] "=&x"(c20), [c21] "=&x"(c21), [c30] "=&x"(c30), [c31] "=&x"(c31)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [kq] "r"(kq)
      : "memory", "cc", "rax", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
  if (kq < K) {  // ragged K: only the bytes that exist (B is zero-padded)
    const __m256i ones = _mm256_set1_epi16(1);
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)bp);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(bp + 32));
    auto step = [&](const uint8_t* ar, __m256i& x0, __m256i& x1) {
      uint32_t v = 0;
      std::memcpy(&v, ar + kq, (size_t)(K - kq));
      const __m256i av = _mm256_set1_epi32((int)v);
      x0 = _mm256_add_epi32(x0, _mm256_madd_epi16(_mm256_maddubs_epi16(av, b0), ones));
      x1 = _mm256_add_epi32(x1, _mm256_madd_epi16(_mm256_maddubs_epi16(av, b1), ones));
    };
    step(a0, c00, c01);
    step(a1, c10, c11);
    step(a2, c20, c21);
    step(a3, c30, c31);
  }
  acc[0][0] = c00, acc[0][1] = c01, acc[1][0] = c10, acc[1][1] = c11;
  acc[2][0] = c20, acc[2][1] = c21, acc[3][0] = c30, acc[3][1] = c31;
}

#undef SWQ_KQUAD

// Exact: b is [K/2][16][2] int16; each a pair (a[k], a[k+1]) becomes one int32 lane of int16s.
template <int MR>
static inline void gemm_u8s16_s32_4x16_avx2(const uint8_t* a, int64_t lda, const int16_t* b, int64_t K,
                                            __m256i acc[4][2]) {
  __m256i c[4][2];
  for (int r = 0; r < 4; ++r) c[r][0] = c[r][1] = _mm256_setzero_si256();
  int64_t k = 0;
  for (; k + 2 <= K; k += 2, b += 32) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 16));
    for (int r = 0; r < MR; ++r) {
      const uint8_t* ar = a + r * lda + k;
      const __m256i av = _mm256_set1_epi32((int)(ar[0] | ((uint32_t)ar[1] << 16)));
      c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, b0));
      c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  if (k < K) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 16));
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32((int)a[r * lda + k]);
      c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, b0));
      c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, b1));
    }
  }
  for (int r = 0; r < 4; ++r) acc[r][0] = c[r][0], acc[r][1] = c[r][1];
}

// Exact path, full 4-row tile in asm: one vpbroadcastd of 4 activation bytes per row, two
// vpshufb (FP1/FP2, off the multiply pipes) widen it to the int16 pairs (a0,a1) and (a2,a3),
// then 4 vpmaddwd per row with B as memory operands. 16 vpmaddwd per k-quad = 8 cycles on
// FP0/FP3, the same MAC rate as the vpmaddubsw pair; the limit is the 6-wide dispatch.
static inline void gemm_u8s16_s32_4x16_asm_avx2(const uint8_t* a, int64_t lda, const int16_t* b, int64_t K,
                                                __m256i acc[4][2]) {
  alignas(32) int32_t c[64];
  alignas(32) static const uint8_t masks[64] = {
      0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80,
      0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80, 0, 0x80, 1, 0x80,
      2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80,
      2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80, 2, 0x80, 3, 0x80};
  const int64_t kq = K / 4 * 4;
  const uint8_t* a0 = a;
  const uint8_t* a1 = a + lda;
  const uint8_t* a2 = a + 2 * lda;
  const uint8_t* a3 = a + 3 * lda;
  int64_t k = 0;
  const int16_t* bp = b;
#define SWQ_ROW(AR, C0, C1)                                  \
  "vpbroadcastd (%[" AR "],%[k]), %%ymm8\n\t"                \
  "vpshufb %%ymm14, %%ymm8, %%ymm9\n\t"                      \
  "vpshufb %%ymm15, %%ymm8, %%ymm8\n\t"                      \
  "vpmaddwd (%[b]), %%ymm9, %%ymm10\n\t"                     \
  "vpmaddwd 32(%[b]), %%ymm9, %%ymm11\n\t"                   \
  "vpmaddwd 64(%[b]), %%ymm8, %%ymm12\n\t"                   \
  "vpmaddwd 96(%[b]), %%ymm8, %%ymm13\n\t"                   \
  "vpaddd %%ymm10, %%ymm" C0 ", %%ymm" C0 "\n\t"             \
  "vpaddd %%ymm11, %%ymm" C1 ", %%ymm" C1 "\n\t"             \
  "vpaddd %%ymm12, %%ymm" C0 ", %%ymm" C0 "\n\t"             \
  "vpaddd %%ymm13, %%ymm" C1 ", %%ymm" C1 "\n\t"
  __asm__ volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"
      "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"
      "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"
      "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"
      "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"
      "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"
      "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"
      "vmovdqa (%[m]), %%ymm14\n\t"
      "vmovdqa 32(%[m]), %%ymm15\n\t"
      "cmp %[kq], %[k]\n\t"
      "jge 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      SWQ_ROW("a0", "0", "1") SWQ_ROW("a1", "2", "3") SWQ_ROW("a2", "4", "5") SWQ_ROW("a3", "6", "7")
      "add $128, %[b]\n\t"
      "add $4, %[k]\n\t"
      "cmp %[kq], %[k]\n\t"
      "jl 1b\n"
      "2:\n\t"
      "vmovdqa %%ymm0, (%[c])\n\t"
      "vmovdqa %%ymm1, 32(%[c])\n\t"
      "vmovdqa %%ymm2, 64(%[c])\n\t"
      "vmovdqa %%ymm3, 96(%[c])\n\t"
      "vmovdqa %%ymm4, 128(%[c])\n\t"
      "vmovdqa %%ymm5, 160(%[c])\n\t"
      "vmovdqa %%ymm6, 192(%[c])\n\t"
      "vmovdqa %%ymm7, 224(%[c])\n\t"
      : [k] "+r"(k), [b] "+r"(bp)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [kq] "r"(kq), [c] "r"(c), [m] "r"(masks)
      : "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
#undef SWQ_ROW
  for (int r = 0; r < 4; ++r) {
    acc[r][0] = _mm256_load_si256((const __m256i*)(c + 16 * r));
    acc[r][1] = _mm256_load_si256((const __m256i*)(c + 16 * r + 8));
  }
  const uint8_t* rows[4] = {a0, a1, a2, a3};
  for (int64_t kk = kq; kk < K; kk += 2, bp += 32) {  // ragged K: B pairs are zero-padded
    const __m256i b0 = _mm256_loadu_si256((const __m256i*)bp);
    const __m256i b1 = _mm256_loadu_si256((const __m256i*)(bp + 16));
    for (int r = 0; r < 4; ++r) {
      const uint32_t v = rows[r][kk] | (kk + 1 < K ? (uint32_t)rows[r][kk + 1] << 16 : 0u);
      const __m256i av = _mm256_set1_epi32((int)v);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
  }
}

// 4 rows × 24 columns in asm: ymm0-11 accumulators (row r, 8-column slab j), ymm12 int16 ones,
// ymm13 the A broadcast, ymm14/15 products; B as memory operands from three 8-column slabs of the
// [N/16][K/4][16][4] packing (slab s: panel s/2, half s%2), so no repacking is needed. Per k-quad
// 12 vpmaddubsw + 12 vpmaddwd (12 cycles on FP0/FP3 = the measured peak), 12 B loads + 4
// broadcasts; 1.5× the work of the 4×16 tile per fill/drain and per epilogue setup. K % 4 == 0.
static inline void gemm_u8s8_s32_4x24_avx2(const uint8_t* a, int64_t lda, const int8_t* s0, const int8_t* s1,
                                           const int8_t* s2, int64_t K, __m256i acc[4][3]) {
  SWQ_YMM12_LOCALS(a, lda);
#define SWQ_R24(AR, C0, C1, C2)                              \
  "vpbroadcastd (%[" AR "],%[k]), %%ymm13\n\t"               \
  "vpmaddubsw (%[s0],%[kb]), %%ymm13, %%ymm14\n\t"           \
  "vpmaddubsw (%[s1],%[kb]), %%ymm13, %%ymm15\n\t"           \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm14\n\t"                   \
  "vpmaddwd %%ymm12, %%ymm15, %%ymm15\n\t"                   \
  "vpaddd %%ymm14, %[" C0 "], %[" C0 "]\n\t"                 \
  "vpaddd %%ymm15, %[" C1 "], %[" C1 "]\n\t"                 \
  "vpmaddubsw (%[s2],%[kb]), %%ymm13, %%ymm14\n\t"           \
  "vpmaddwd %%ymm12, %%ymm14, %%ymm14\n\t"                   \
  "vpaddd %%ymm14, %[" C2 "], %[" C2 "]\n\t"
#define SWQ_KQUAD24 /* one k-quad of the four rows */                                   \
  SWQ_R24("a0", "c00", "c01", "c02") SWQ_R24("a1", "c10", "c11", "c12")                 \
  SWQ_R24("a2", "c20", "c21", "c22") SWQ_R24("a3", "c30", "c31", "c32")
  __asm__(
      SWQ_YMM12_ZERO
      "vpcmpeqw %%ymm12, %%ymm12, %%ymm12\n\t"
      "vpsrlw $15, %%ymm12, %%ymm12\n\t"
      // an odd quad count does one quad first, then two per iteration (half the loop branches)
      "test $4, %[K]\n\t"
      "jz 1f\n\t"
      SWQ_KQUAD24
      "add $64, %[kb]\n\t"
      "add $4, %[k]\n\t"
      "cmp %[K], %[k]\n\t"
      "jge 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      SWQ_KQUAD24
      "add $4, %[k]\n\t"
      "add $64, %[kb]\n\t"
      SWQ_KQUAD24
      "add $4, %[k]\n\t"
      "add $64, %[kb]\n\t"
      "cmp %[K], %[k]\n\t"
      "jl 1b\n"
      "2:\n\t"
      : [k] "+r"(k), [kb] "+r"(kb), SWQ_YMM12_OUTPUTS
      : SWQ_YMM12_INPUTS
      : "memory", "cc", "xmm12", "xmm13", "xmm14", "xmm15");
#undef SWQ_R24
#undef SWQ_KQUAD24
  SWQ_YMM12_TO(acc);
}

// The AVX2 tiles for gemm_rows_ymm: vpmaddubsw when the weights are proven safe for it, else the
// exact int16 kernel.
namespace {  // internal linkage: no weak copy of an AVX2-compiled member for other objects
struct TilesAvx2 {
  static bool tile24_takes(const PackedB& B) { return B.maddubs_safe; }  // the 4×24 tile has no int16 form
  static void tile24(const uint8_t* a, int64_t lda, const int8_t* s0, const int8_t* s1, const int8_t* s2, int64_t K,
                     __m256i acc[4][3]) {
    gemm_u8s8_s32_4x24_avx2(a, lda, s0, s1, s2, K, acc);
  }
  template <int MR>
  static inline __attribute__((always_inline)) void tile16(const GemmCtx& c, int64_t m, int64_t p, __m256i acc[4][2]) {
    const PackedB& B = *c.B;
    const uint8_t* a = c.A + m * c.lda;
    if (B.maddubs_safe && MR == 4) gemm_u8s8_s32_4x16_asm_avx2(a, c.lda, B.b8.data() + p * b8_panel_bytes(B), B.K, acc);
    else if (B.maddubs_safe) gemm_u8s8_s32_4x16_avx2<MR>(a, c.lda, B.b8.data() + p * b8_panel_bytes(B), B.K, acc);
    else if (MR == 4) gemm_u8s16_s32_4x16_asm_avx2(a, c.lda, B.b16.data() + p * b16_panel_elems(B), B.K, acc);
    else gemm_u8s16_s32_4x16_avx2<MR>(a, c.lda, B.b16.data() + p * b16_panel_elems(B), B.K, acc);
  }
};
}  // namespace

// Epilogue of rows [m, m + rows) × panels [p0, p1) from raw int32 sums
// acc[r·ld + (p − p0)·16 + j]: the tail of the sparse-A path (qsparse_avx2.cc), the dense tiles' own.
void gemm_epilogue_rows_avx2(const GemmCtx& c, int64_t m, int64_t rows, int64_t p0, int64_t p1, const int32_t* acc,
                             int64_t ld, const int32_t* rowsum) {
  // whole 4-row groups over a 24-aligned column range: the dense 4×24 tile's epilogue, constants
  // prepared once per 24 columns (the per-panel form below re-reads spilled constants per row;
  // sparse 3136×384×96 at 10 %: 0.620 → 0.604–0.619 ms, docs/sparsity.md)
  const int64_t n0 = p0 * 16, n1 = std::min<int64_t>(p1 * 16, c.B->N);
  int64_t r_done = 0;
  if (n0 % 24 == 0 && (n1 - n0) % 24 == 0 && rows >= 4) {
    r_done = rows / 4 * 4;
    for (int64_t n = n0; n < n1; n += 24) {
      const Ep24 e = ep24(c, n);
      for (int64_t r0 = 0; r0 < r_done; r0 += 4) {
        __m256i t[4][3];
        for (int r = 0; r < 4; ++r)
          for (int j = 0; j < 3; ++j) t[r][j] = _mm256_loadu_si256((const __m256i*)(acc + (r0 + r) * ld + (n - n0) + 8 * j));
        epilogue24(c, m + r0, e, t, rowsum + r0);
      }
    }
  }
  for (int64_t p = p0; p < p1 && r_done < rows; ++p) {
    const PanelEp pe = panel_ep(c, p);
    for (int64_t r0 = r_done; r0 < rows; r0 += 4) {
      const int mr = (int)std::min<int64_t>(4, rows - r0);
      __m256i t[4][2];
      for (int r = 0; r < mr; ++r) {
        t[r][0] = _mm256_loadu_si256((const __m256i*)(acc + (r0 + r) * ld + (p - p0) * 16));
        t[r][1] = _mm256_loadu_si256((const __m256i*)(acc + (r0 + r) * ld + (p - p0) * 16 + 8));
      }
      switch (mr) {
        case 4: epilogue<4>(c, m + r0, pe, t, rowsum + r0); break;
        case 3: epilogue<3>(c, m + r0, pe, t, rowsum + r0); break;
        case 2: epilogue<2>(c, m + r0, pe, t, rowsum + r0); break;
        default: epilogue<1>(c, m + r0, pe, t, rowsum + r0); break;
      }
    }
  }
  table_rows(c, m, m + rows, p0, p1);
}

void gemm_u8s8_q_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  gemm_rows_ymm<TilesAvx2>(c, m0, m1, p0, p1);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
