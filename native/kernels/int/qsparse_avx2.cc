// Sparse-A u8 × s8 GEMM for AVX2 (a ReLU output feeding fc2): per row, the non-zero codes are
// compacted once (uint16 indices of their K-major weight rows, and the codes), then a kernel sums
// only those weight rows: gemm_u8s8_s32_sparse_1x96_avx2 (four codes per vpmaddubsw over the int8
// K-major copy, when codes ≤ 127; up to 96 columns a call) or gemm_u8s16_s32_sparse_1x64_avx2 (two codes per vpmaddwd over
// the int16 copy). Blocking: a block of rows sweeps each column block's weight slice while it is in
// L1 (or L2, prefetched, for long rows). Exact: the same int32 sums as the dense kernels
// (wrap-around addition is order independent); bias, zero points, ReLU, requantization and table
// are the dense kernels' epilogue (gemm_epilogue_rows_avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "qavx2.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

int64_t count_nonzero_u8_avx2(const uint8_t* a, int64_t K) {
  const __m256i z = _mm256_setzero_si256();
  int64_t nz = 0, k = 0;
  for (; k + 32 <= K; k += 32)
    nz += 32 - __builtin_popcount((uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i*)(a + k)), z)));
  for (; k < K; ++k) nz += a[k] != 0;
  return nz;
}

namespace {
// For the byte m of non-zero flags of 8 codes: idx[m] = the positions of its set bits as uint16,
// in order (then zeros); sel[m] = the same as bytes, the vpshufb that packs those codes to the
// front, and in bytes 8..15 the same + 8 (for the upper 8 bytes of a 16-byte half). Both 16 bytes
// a row: one scaled index addresses both.
struct GroupTable {
  alignas(32) uint16_t idx[256][8];
  alignas(32) uint8_t sel[256][16];
  constexpr GroupTable() : idx(), sel() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int j = 0; j < 8; ++j)
        if (m >> j & 1) {
          idx[m][n] = (uint16_t)j;
          sel[m][8 + n] = (uint8_t)(j + 8);
          sel[m][n++] = (uint8_t)j;
        }
    }
  }
};
constexpr GroupTable kGroup;
}  // namespace

// One row's non-zero codes, without a branch per code: idx[i] = k_i (uint16; the kernels multiply
// by the weight-row stride), code[i] = a[k_i] (uint8 for the quad kernel, uint16 for the pair
// kernel). Each group of 8 codes writes 8 entries and advances by its popcount (idx/code need 8
// spare entries). The count is padded to a multiple of 4 with code-0 entries at k = 0 (whole quads
// / pairs of pairs for the kernels). Returns that count. Indices, not byte offsets: one 16-byte
// add per group instead of a 32-byte add and a broadcast of k·ldb (s1 fc2 3136×384×96 at 10 %:
// compaction was ≈ 45 % of the sparse time, docs/sparsity.md).
template <typename Code>
static inline int64_t compact_row_avx2(const uint8_t* a, int64_t K, uint16_t* idx, Code* code) {
  const __m256i z = _mm256_setzero_si256();
  const __m128i eight = _mm_set1_epi16(8);
  __m128i base = _mm_setzero_si128();  // k + 8·g in every lane
  int64_t n = 0, k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m256i av = _mm256_loadu_si256((const __m256i*)(a + k));
    const uint32_t nz = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(av, z));
    // the four groups' start counts from prefix popcounts: no chain through the groups
    const int64_t n1 = n + __builtin_popcount(nz & 0xff), n2 = n + __builtin_popcount(nz & 0xffff),
                  n3 = n + __builtin_popcount(nz & 0xffffff);
    const int64_t start[4] = {n, n1, n2, n3};
    // groups 1 and 3 shuffled from the high 8 bytes of their 16: sel + 8 is the table's upper half
    const __m128i half[2] = {_mm256_castsi256_si128(av), _mm256_extracti128_si256(av, 1)};
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
      const uint32_t m8 = (nz >> (8 * g)) & 0xff;
      _mm_storeu_si128((__m128i*)(idx + start[g]), _mm_add_epi16(_mm_load_si128((const __m128i*)kGroup.idx[m8]), base));
      base = _mm_add_epi16(base, eight);
      const __m128i packed = _mm_shuffle_epi8(half[g >> 1], _mm_loadl_epi64((const __m128i*)(kGroup.sel[m8] + 8 * (g & 1))));
      if (sizeof(Code) == 1) _mm_storel_epi64((__m128i*)(code + start[g]), packed);
      else _mm_storeu_si128((__m128i*)(code + start[g]), _mm_cvtepu8_epi16(packed));
    }
    n += __builtin_popcount(nz);
  }
  for (; k < K; ++k)
    if (a[k]) {
      idx[n] = (uint16_t)k;
      code[n] = a[k];
      ++n;
    }
  // pad with four zero entries whatever n % 4 is: no branch on the count (a loop here
  // mispredicted about once a row)
  _mm_storel_epi64((__m128i*)(idx + n), _mm_setzero_si128());
  for (int j = 0; j < 4; ++j) code[n + j] = 0;
  return (n + 3) & ~(int64_t)3;
}

// acc[0 .. 16·NP) = Σ over the row's pairs (k_i, k_j) of a_i·W[k_i, cols] + a_j·W[k_j, cols] for
// NP ∈ {1, 2, 4} 16-column panels starting at b (K-major int16 rows, ldb bytes apart; idx: row indices; npairs
// even). vpunpck{l,h}wd interleave the two weight rows into the (w_i, w_j) pairs one vpmaddwd
// multiplies by the broadcast (a_i, a_j); the unpack leaves columns as {0-3, 8-11 | 4-7, 12-15},
// one vperm2i128 per half at the end restores the order. Hand-written (GCC's code reloads each
// weight row twice), two pairs per iteration with their own temporaries: ymm0-7 accumulators,
// ymm12-15 / ymm8-11 temporaries and (a_i, a_j) of the first / second pair.
#define SWQ_PANEL(O, X, Y, T, AV, C0, C1)                        \
  "vmovdqu " O "(%[b],%%" X "), %%ymm" T "\n\t"                  \
  "vmovdqu " O "(%[b],%%" Y "), %%ymm" AV "\n\t"                 \
  "vpunpckhwd %%ymm" AV ", %%ymm" T ", %%ymm" C1 "x\n\t"
#undef SWQ_PANEL
#define SWQ_PANEL(O, X, Y, TA, TB, TC, AV, C0, C1)                \
  "vmovdqu " O "(%[b],%%" X "), %%ymm" TA "\n\t"                 \
  "vmovdqu " O "(%[b],%%" Y "), %%ymm" TB "\n\t"                 \
  "vpunpcklwd %%ymm" TB ", %%ymm" TA ", %%ymm" TC "\n\t"         \
  "vpunpckhwd %%ymm" TB ", %%ymm" TA ", %%ymm" TA "\n\t"         \
  "vpmaddwd %%ymm" AV ", %%ymm" TC ", %%ymm" TC "\n\t"           \
  "vpmaddwd %%ymm" AV ", %%ymm" TA ", %%ymm" TA "\n\t"           \
  "vpaddd %%ymm" TC ", %%ymm" C0 ", %%ymm" C0 "\n\t"             \
  "vpaddd %%ymm" TA ", %%ymm" C1 ", %%ymm" C1 "\n\t"
#define SWQ_P1(O, C0, C1) SWQ_PANEL(O, "r8", "r9", "12", "13", "14", "15", C0, C1)
#define SWQ_P2(O, C0, C1) SWQ_PANEL(O, "r10", "r11", "8", "9", "10", "11", C0, C1)
template <int NP>
static inline void gemm_u8s16_s32_sparse_1x64_avx2(const char* b, int64_t ldb, const uint16_t* idx, const uint16_t* code,
                                                   int64_t n, int32_t* acc) {
  const int64_t npairs = n / 2;
  static_assert(NP == 1 || NP == 2 || NP == 4, "NP must be 1, 2 or 4");
  int64_t i = 0;
  alignas(32) int32_t t[64];
#define SWQ_HEAD                                                  \
  "vpxor %%ymm0, %%ymm0, %%ymm0\n\t vpxor %%ymm1, %%ymm1, %%ymm1\n\t" \
  "vpxor %%ymm2, %%ymm2, %%ymm2\n\t vpxor %%ymm3, %%ymm3, %%ymm3\n\t" \
  "vpxor %%ymm4, %%ymm4, %%ymm4\n\t vpxor %%ymm5, %%ymm5, %%ymm5\n\t" \
  "vpxor %%ymm6, %%ymm6, %%ymm6\n\t vpxor %%ymm7, %%ymm7, %%ymm7\n\t" \
  "test %[n], %[n]\n\t"                                           \
  "jle 2f\n\t"                                                    \
  ".p2align 5\n"                                                   \
  "1:\n\t"                                                        \
  "movzwl (%[idx],%[i],4), %%r8d\n\t imul %[ldb], %%r8\n\t"        \
  "movzwl 2(%[idx],%[i],4), %%r9d\n\t imul %[ldb], %%r9\n\t"       \
  "movzwl 4(%[idx],%[i],4), %%r10d\n\t imul %[ldb], %%r10\n\t"     \
  "movzwl 6(%[idx],%[i],4), %%r11d\n\t imul %[ldb], %%r11\n\t"     \
  "vpbroadcastd (%[code],%[i],4), %%ymm15\n\t"                    \
  "vpbroadcastd 4(%[code],%[i],4), %%ymm11\n\t"
#define SWQ_TAIL                                                                              \
  "add $2, %[i]\n\t"                                                                          \
  "cmp %[n], %[i]\n\t"                                                                        \
  "jl 1b\n"                                                                                    \
  "2:\n\t"                                                                                    \
  "vmovdqa %%ymm0, (%[t])\n\t vmovdqa %%ymm1, 32(%[t])\n\t vmovdqa %%ymm2, 64(%[t])\n\t"     \
  "vmovdqa %%ymm3, 96(%[t])\n\t vmovdqa %%ymm4, 128(%[t])\n\t vmovdqa %%ymm5, 160(%[t])\n\t" \
  "vmovdqa %%ymm6, 192(%[t])\n\t vmovdqa %%ymm7, 224(%[t])\n\t"                             \
  : [i] "+r"(i)                                                                                \
  : [n] "r"(npairs), [idx] "r"(idx), [ldb] "r"(ldb), [code] "r"(code), [b] "r"(b), [t] "r"(t)                  \
  : "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
    "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"
  if (NP == 4)
    __asm__ volatile(SWQ_HEAD SWQ_P1("0", "0", "1") SWQ_P1("32", "2", "3") SWQ_P1("64", "4", "5") SWQ_P1("96", "6", "7")
                         SWQ_P2("0", "0", "1") SWQ_P2("32", "2", "3") SWQ_P2("64", "4", "5") SWQ_P2("96", "6", "7")
                             SWQ_TAIL);
  else if (NP == 2)
    __asm__ volatile(SWQ_HEAD SWQ_P1("0", "0", "1") SWQ_P1("32", "2", "3") SWQ_P2("0", "0", "1") SWQ_P2("32", "2", "3")
                         SWQ_TAIL);
  else
    __asm__ volatile(SWQ_HEAD SWQ_P1("0", "0", "1") SWQ_P2("0", "0", "1") SWQ_TAIL);
#undef SWQ_HEAD
#undef SWQ_TAIL
  for (int q = 0; q < NP; ++q) {
    const __m256i c0 = _mm256_load_si256((const __m256i*)(t + 16 * q));
    const __m256i c1 = _mm256_load_si256((const __m256i*)(t + 16 * q + 8));
    _mm256_storeu_si256((__m256i*)(acc + 16 * q), _mm256_permute2x128_si256(c0, c1, 0x20));
    _mm256_storeu_si256((__m256i*)(acc + 16 * q + 8), _mm256_permute2x128_si256(c0, c1, 0x31));
  }
}
#undef SWQ_P1
#undef SWQ_P2
#undef SWQ_PANEL

// acc[0 .. 32·NC) = Σ over the row's quads (k_1..k_4) of Σ_j a_j·W[k_j, cols] for NC 32-column
// groups starting at b (K-major int8 rows, ldb bytes apart; idx: row indices; n: entries, a multiple of 4; codes
// ≤ 127 so a vpmaddubsw pair a_1·w_1 + a_2·w_2 stays inside int16 for any s8 weights). Four
// vpunpck{l,h}bw + four vpunpck{l,h}wd turn the four weight rows into (w_1..w_4) quads per
// column, as the dense kernel's packed layout, for vpmaddubsw by the broadcast (a_1..a_4) and
// vpmaddwd by ones. Per group the columns land as {0-3 | 16-19}, {4-7 | 20-23}, {8-11 | 24-27},
// {12-15 | 28-31}; vperm2i128 at the end restores the order. Registers: ymm0-7 accumulators of
// groups 1–2 (group 3, NC = 3: in memory), ymm8-12 temporaries, ymm14 int16 ones, ymm15 (a_1..a_4).
#define SWQ_QUAD(O, A0, A1, A2, A3)                   \
  SWQ_QUAD_SUMS(O)                                   \
  "vpaddd %%ymm11, %%ymm" A0 ", %%ymm" A0 "\n\t"      \
  "vpaddd %%ymm12, %%ymm" A1 ", %%ymm" A1 "\n\t"      \
  "vpaddd %%ymm9, %%ymm" A2 ", %%ymm" A2 "\n\t"       \
  "vpaddd %%ymm8, %%ymm" A3 ", %%ymm" A3 "\n\t"
// the quad's four products for one 32-column group (column offset O bytes) in ymm11, 12, 9, 8
#define SWQ_QUAD_SUMS(O)                             \
  "vmovdqu " O "(%[b],%%r8), %%ymm8\n\t"              \
  "vmovdqu " O "(%[b],%%r9), %%ymm9\n\t"              \
  "vmovdqu " O "(%[b],%%r10), %%ymm10\n\t"            \
  "vmovdqu " O "(%[b],%%r11), %%ymm11\n\t"            \
  "vpunpcklbw %%ymm9, %%ymm8, %%ymm12\n\t"            \
  "vpunpckhbw %%ymm9, %%ymm8, %%ymm8\n\t"             \
  "vpunpcklbw %%ymm11, %%ymm10, %%ymm9\n\t"           \
  "vpunpckhbw %%ymm11, %%ymm10, %%ymm10\n\t"          \
  "vpunpcklwd %%ymm9, %%ymm12, %%ymm11\n\t"           \
  "vpunpckhwd %%ymm9, %%ymm12, %%ymm12\n\t"           \
  "vpunpcklwd %%ymm10, %%ymm8, %%ymm9\n\t"            \
  "vpunpckhwd %%ymm10, %%ymm8, %%ymm8\n\t"            \
  "vpmaddubsw %%ymm11, %%ymm15, %%ymm11\n\t"          \
  "vpmaddubsw %%ymm12, %%ymm15, %%ymm12\n\t"          \
  "vpmaddubsw %%ymm9, %%ymm15, %%ymm9\n\t"            \
  "vpmaddubsw %%ymm8, %%ymm15, %%ymm8\n\t"            \
  "vpmaddwd %%ymm14, %%ymm11, %%ymm11\n\t"            \
  "vpmaddwd %%ymm14, %%ymm12, %%ymm12\n\t"            \
  "vpmaddwd %%ymm14, %%ymm9, %%ymm9\n\t"              \
  "vpmaddwd %%ymm14, %%ymm8, %%ymm8\n\t"
// The third group (NC = 3) has no registers left: its four sums live in t + 64, added to and
// stored each quad (store-to-load forwarding, far shorter than a quad's shuffles).
#define SWQ_QUAD_MEM(O)                                                                          \
  SWQ_QUAD_SUMS(O)                                                                              \
  "vpaddd 256(%[t]), %%ymm11, %%ymm11\n\t vmovdqa %%ymm11, 256(%[t])\n\t"                             \
  "vpaddd 288(%[t]), %%ymm12, %%ymm12\n\t vmovdqa %%ymm12, 288(%[t])\n\t"                         \
  "vpaddd 320(%[t]), %%ymm9, %%ymm9\n\t vmovdqa %%ymm9, 320(%[t])\n\t"                            \
  "vpaddd 352(%[t]), %%ymm8, %%ymm8\n\t vmovdqa %%ymm8, 352(%[t])\n\t"
template <int NC>
static inline void gemm_u8s8_s32_sparse_1x96_avx2(const char* b, int64_t ldb, const uint16_t* idx, const uint8_t* code, int64_t n,
                                                  int32_t* acc) {
  static_assert(NC >= 1 && NC <= 3, "NC must be 1, 2 or 3");
  int64_t i = 0;
  // t + 64: the third group's sums (NC = 3). At t itself (a 32-entry array) the call measured
  // 0.268–0.270 instead of 0.261–0.263 ms on 3136×384×96 at 0 % density (stack placement)
  alignas(32) int32_t t[96];
#define SWQ_INIT                                                  \
  "vpxor %%ymm0, %%ymm0, %%ymm0\n\t vpxor %%ymm1, %%ymm1, %%ymm1\n\t" \
  "vpxor %%ymm2, %%ymm2, %%ymm2\n\t vpxor %%ymm3, %%ymm3, %%ymm3\n\t" \
  "vpxor %%ymm4, %%ymm4, %%ymm4\n\t vpxor %%ymm5, %%ymm5, %%ymm5\n\t" \
  "vpxor %%ymm6, %%ymm6, %%ymm6\n\t vpxor %%ymm7, %%ymm7, %%ymm7\n\t" \
  "vpcmpeqw %%ymm14, %%ymm14, %%ymm14\n\t"                        \
  "vpsrlw $15, %%ymm14, %%ymm14\n\t"
#define SWQ_ZERO_T                                                \
  "vmovdqa %%ymm0, 256(%[t])\n\t vmovdqa %%ymm0, 288(%[t])\n\t"        \
  "vmovdqa %%ymm0, 320(%[t])\n\t vmovdqa %%ymm0, 352(%[t])\n\t"
#define SWQ_LOOP                                                  \
  "test %[n], %[n]\n\t"                                           \
  "jle 2f\n\t"                                                    \
  ".p2align 5\n"                                                   \
  "1:\n\t"                                                        \
  "movzwl (%[idx],%[i],2), %%r8d\n\t imul %[ldb], %%r8\n\t"        \
  "movzwl 2(%[idx],%[i],2), %%r9d\n\t imul %[ldb], %%r9\n\t"       \
  "movzwl 4(%[idx],%[i],2), %%r10d\n\t imul %[ldb], %%r10\n\t"     \
  "movzwl 6(%[idx],%[i],2), %%r11d\n\t imul %[ldb], %%r11\n\t"     \
  "vpbroadcastd (%[code],%[i]), %%ymm15\n\t"
#define SWQ_END                                                   \
  "add $4, %[i]\n\t"                                              \
  "cmp %[n], %[i]\n\t"                                            \
  "jl 1b\n"                                                        \
  "2:\n\t"
// a register group's columns back in order, straight to acc (O: its byte offset there)
#define SWQ_OUT(O, A0, A1, A2, A3)                                          \
  "vperm2i128 $0x20, %%ymm" A1 ", %%ymm" A0 ", %%ymm8\n\t"                 \
  "vperm2i128 $0x20, %%ymm" A3 ", %%ymm" A2 ", %%ymm9\n\t"                 \
  "vperm2i128 $0x31, %%ymm" A1 ", %%ymm" A0 ", %%ymm10\n\t"                \
  "vperm2i128 $0x31, %%ymm" A3 ", %%ymm" A2 ", %%ymm11\n\t"                \
  "vmovdqu %%ymm8, " O "(%[o])\n\t vmovdqu %%ymm9, " O "+32(%[o])\n\t"     \
  "vmovdqu %%ymm10, " O "+64(%[o])\n\t vmovdqu %%ymm11, " O "+96(%[o])\n\t"
#define SWQ_OPS                                                                                \
  : [i] "+r"(i)                                                                                \
  : [n] "r"(n), [idx] "r"(idx), [ldb] "r"(ldb), [code] "r"(code), [b] "r"(b), [t] "r"(t), [o] "r"(acc) \
  : "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
    "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm14", "xmm15"
  if (NC == 3)
    __asm__ volatile(SWQ_INIT SWQ_ZERO_T SWQ_LOOP SWQ_QUAD("0", "0", "1", "2", "3") SWQ_QUAD("32", "4", "5", "6", "7") SWQ_QUAD_MEM("64")
                         SWQ_END SWQ_OUT("0", "0", "1", "2", "3") SWQ_OUT("128", "4", "5", "6", "7") SWQ_OPS);
  else if (NC == 2)
    __asm__ volatile(SWQ_INIT SWQ_LOOP SWQ_QUAD("0", "0", "1", "2", "3") SWQ_QUAD("32", "4", "5", "6", "7") SWQ_END
                         SWQ_OUT("0", "0", "1", "2", "3") SWQ_OUT("128", "4", "5", "6", "7") SWQ_OPS);
  else
    __asm__ volatile(SWQ_INIT SWQ_LOOP SWQ_QUAD("0", "0", "1", "2", "3") SWQ_END SWQ_OUT("0", "0", "1", "2", "3") SWQ_OPS);
#undef SWQ_INIT
#undef SWQ_ZERO_T
#undef SWQ_LOOP
#undef SWQ_END
#undef SWQ_OUT
#undef SWQ_OPS
  if (NC == 3) {  // the third group, from t + 64, to columns 64..95
    const int32_t* a = t + 64;
    const __m256i q0 = _mm256_load_si256((const __m256i*)a), q1 = _mm256_load_si256((const __m256i*)(a + 8)),
                  q2 = _mm256_load_si256((const __m256i*)(a + 16)), q3 = _mm256_load_si256((const __m256i*)(a + 24));
    int32_t* o = acc + 64;
    _mm256_storeu_si256((__m256i*)o, _mm256_permute2x128_si256(q0, q1, 0x20));
    _mm256_storeu_si256((__m256i*)(o + 8), _mm256_permute2x128_si256(q2, q3, 0x20));
    _mm256_storeu_si256((__m256i*)(o + 16), _mm256_permute2x128_si256(q0, q1, 0x31));
    _mm256_storeu_si256((__m256i*)(o + 24), _mm256_permute2x128_si256(q2, q3, 0x31));
  }
}
#undef SWQ_QUAD
#undef SWQ_QUAD_SUMS
#undef SWQ_QUAD_MEM

// The AVX2 quad kernel as a SparseQuadKernel: 32-, 64- or 96-column calls.
static void sparse_quad_1x96_avx2(const char* b, int64_t ldb, const uint16_t* idx, const uint8_t* code, int64_t n,
                                  int32_t* acc, int64_t cols) {
  // an odd panel count ends with whole 32-column groups: the extra 16 columns read the next weight
  // row (or bk8's slack) and are never stored (N = 48: one call, not two)
  if (cols > 64) gemm_u8s8_s32_sparse_1x96_avx2<3>(b, ldb, idx, code, n, acc);
  else if (cols > 32) gemm_u8s8_s32_sparse_1x96_avx2<2>(b, ldb, idx, code, n, acc);
  else gemm_u8s8_s32_sparse_1x96_avx2<1>(b, ldb, idx, code, n, acc);
}

void gemm_sparse_rows_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  gemm_sparse_rows_with_avx2(c, m0, m1, p0, p1, sparse_quad_1x96_avx2, 6);
}

void gemm_sparse_rows_with_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1, SparseQuadKernel quad_kernel,
                                int quad_panels) {
  const PackedB& B = *c.B;
  const bool quad = !B.bk8.empty();  // codes ≤ 127: the int8 vpmaddubsw kernel, else int16 pairs
  const int wbytes = quad ? 1 : 2;
  const int64_t K = B.K, ldb = (int64_t)B.Np * wbytes;  // bytes per K-major weight row
  const char* w = quad ? reinterpret_cast<const char*>(B.bk8.data()) : reinterpret_cast<const char*>(B.bk16.data());
  const SparseBlocking bl = sparse_blocking(K, m1 - m0, p1 - p0, wbytes, quad_panels == 8 ? 4 : 2);
  // scratch (malloc, not std::vector: an AVX2 object must define no weak template symbols, see
  // scripts/check-avx2-objects.sh); nothing below throws before the free
  const int64_t ld = K + 16;  // compaction writes up to 8 entries past the count, then pads to 4
  const int64_t acc_ld = (bl.panels + 3) / 4 * 64;  // quad kernels fill whole 32- or 64-column groups
  const size_t idx_bytes = (size_t)(bl.rows * ld) * 2, code_bytes = (size_t)(bl.rows * ld) * 2;
  const size_t acc_bytes = (size_t)(bl.rows * acc_ld) * 4;
  char* mem = static_cast<char*>(std::malloc(idx_bytes + acc_bytes + code_bytes + (size_t)bl.rows * 12));
  if (!mem) throw std::bad_alloc();
  int32_t* acc = reinterpret_cast<int32_t*>(mem);
  uint16_t* idxs = reinterpret_cast<uint16_t*>(mem + acc_bytes);
  char* codes = mem + acc_bytes + idx_bytes;
  int64_t* count = reinterpret_cast<int64_t*>(codes + code_bytes);
  int32_t* rowsum = reinterpret_cast<int32_t*>(count + bl.rows);
  for (int64_t mb = m0; mb < m1; mb += bl.rows) {
    const int64_t nr = std::min<int64_t>(bl.rows, m1 - mb);
    for (int64_t r = 0; r < nr; ++r) {
      const uint8_t* a = c.A + (mb + r) * c.lda;
      count[r] = quad ? compact_row_avx2(a, K, idxs + r * ld, reinterpret_cast<uint8_t*>(codes) + r * ld)
                      : compact_row_avx2(a, K, idxs + r * ld, reinterpret_cast<uint16_t*>(codes) + r * ld);
      rowsum[r] = B.w_zero_point ? (int32_t)rowsum_u8_avx2(a, K) : 0;
    }
    for (int64_t pb = p0; pb < p1; pb += bl.panels) {
      const int64_t pe = std::min<int64_t>(p1, pb + bl.panels);
      if (K * (pe - pb) * 16 * wbytes > 32768) {
        // an L2-sized slice: touch its lines in order first; the rows' random-k reads would
        // otherwise each wait for memory (49×3072×768 at 10 %: 1.11 → 0.85 ms, docs/sparsity.md)
        const char* s0 = w + pb * 16 * wbytes;
        for (int64_t k = 0; k < K; ++k)
          for (int64_t o = 0; o < (pe - pb) * 16 * wbytes; o += 64) _mm_prefetch(s0 + k * ldb + o, _MM_HINT_T1);
      }
      for (int64_t r = 0; r < nr; ++r) {
        const uint16_t* idx = idxs + r * ld;
        int32_t* out = acc + r * acc_ld;
        for (int64_t p = pb; p < pe;) {
          const char* b = w + p * 16 * wbytes;
          int32_t* o = out + (p - pb) * 16;
          const int64_t left = pe - p;
          if (quad) {
            const uint8_t* code = reinterpret_cast<const uint8_t*>(codes) + r * ld;
            const int64_t np = std::min<int64_t>(left, quad_panels);
            quad_kernel(b, ldb, idx, code, count[r], o, np * 16);
            p += np;
          } else {
            const uint16_t* code = reinterpret_cast<const uint16_t*>(codes) + r * ld;
            if (left >= 4) gemm_u8s16_s32_sparse_1x64_avx2<4>(b, ldb, idx, code, count[r], o);
            else if (left >= 2) gemm_u8s16_s32_sparse_1x64_avx2<2>(b, ldb, idx, code, count[r], o);
            else gemm_u8s16_s32_sparse_1x64_avx2<1>(b, ldb, idx, code, count[r], o);
            p += left >= 4 ? 4 : left >= 2 ? 2 : 1;
          }
        }
      }
      gemm_epilogue_rows_avx2(c, mb, nr, pb, pe, acc, acc_ld, rowsum);
    }
  }
  std::free(mem);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
