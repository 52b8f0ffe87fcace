// Sparse-A u8 × s8 GEMM for AVX2 (a ReLU output feeding fc2): per row, the non-zero codes are
// compacted once (their K-major weight-row offsets and the codes as int16), then
// gemm_u8s16_s32_sparse_1x64_avx2 sums only those rows of the K-major int16 weights, two codes per
// vpmaddwd. Blocking: a block of rows shares each column block's weight slice (sized for L2), so a
// large B streams from memory once per row block. Exact: the same int32 sums as the dense kernels
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
// kSel.v[m]: the positions of the set bits of the byte m, in order (then zeros): the shuffle that
// packs the non-zero codes of 8 bytes to the front.
struct SelTable {
  uint8_t v[256][8];
  constexpr SelTable() : v() {
    for (int m = 0; m < 256; ++m) {
      int n = 0;
      for (int j = 0; j < 8; ++j)
        if (m >> j & 1) v[m][n++] = (uint8_t)j;
    }
  }
};
constexpr SelTable kSel;
}  // namespace

// One row's non-zero codes, without a branch per code: off[i] = k_i·ldb (byte offset of weight row
// k_i), code[i] = a[k_i] as uint16. Each group of 8 codes writes 8 entries and advances by its
// popcount (off/code need 8 spare entries). The count is padded to a multiple of 4 with code-0
// entries at offset 0 (whole pairs of pairs for the kernel). Returns the count of pairs.
static inline int64_t compact_row_avx2(const uint8_t* a, int64_t K, int32_t ldb, int32_t* off, uint16_t* code) {
  const __m256i z = _mm256_setzero_si256(), vldb = _mm256_set1_epi32(ldb);
  int64_t n = 0, k = 0;
  for (; k + 32 <= K; k += 32) {
    uint32_t nz = ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i*)(a + k)), z));
    for (int g = 0; g < 32; g += 8, nz >>= 8) {
      const uint32_t m8 = nz & 0xff;
      int64_t sel64;
      std::memcpy(&sel64, kSel.v[m8], 8);
      const __m128i sel = _mm_cvtsi64_si128(sel64);
      const __m256i kv = _mm256_add_epi32(_mm256_cvtepu8_epi32(sel), _mm256_set1_epi32((int)(k + g)));
      _mm256_storeu_si256((__m256i*)(off + n), _mm256_mullo_epi32(kv, vldb));
      const __m128i a8 = _mm_loadl_epi64((const __m128i*)(a + k + g));
      _mm_storeu_si128((__m128i*)(code + n), _mm_cvtepu8_epi16(_mm_shuffle_epi8(a8, sel)));
      n += __builtin_popcount(m8);
    }
  }
  for (; k < K; ++k)
    if (a[k]) {
      off[n] = (int32_t)k * ldb;
      code[n] = a[k];
      ++n;
    }
  for (; n & 3; ++n) {
    off[n] = 0;
    code[n] = 0;
  }
  return n / 2;
}

// acc[0 .. 16·NP) = Σ over the row's pairs (k_i, k_j) of a_i·W[k_i, cols] + a_j·W[k_j, cols] for
// NP ∈ {1, 2, 4} 16-column panels starting at b (K-major int16 rows; off: byte offsets; npairs
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
static inline void gemm_u8s16_s32_sparse_1x64_avx2(const char* b, const int32_t* off, const uint16_t* code,
                                                   int64_t npairs, int32_t* acc) {
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
  "movslq (%[off],%[i],8), %%r8\n\t"                              \
  "movslq 4(%[off],%[i],8), %%r9\n\t"                             \
  "movslq 8(%[off],%[i],8), %%r10\n\t"                            \
  "movslq 12(%[off],%[i],8), %%r11\n\t"                           \
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
  : [n] "r"(npairs), [off] "r"(off), [code] "r"(code), [b] "r"(b), [t] "r"(t)                  \
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

void gemm_sparse_rows_avx2(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  const int64_t K = B.K, ldb = (int64_t)B.Np * 2;  // bytes per K-major weight row
  const SparseBlocking bl = sparse_blocking(K, m1 - m0, p1 - p0);
  // scratch (malloc, not std::vector: an AVX2 object must define no weak template symbols, see
  // scripts/check-avx2-objects.sh); nothing below throws before the free
  const int64_t ld = K + 16;  // compaction writes up to 8 entries past the count, then pads to 4
  const size_t idx_bytes = (size_t)(bl.rows * ld) * 4, code_bytes = (size_t)(bl.rows * ld) * 2;
  const size_t acc_bytes = (size_t)(bl.rows * bl.panels) * 64;
  char* mem = static_cast<char*>(std::malloc(idx_bytes + acc_bytes + code_bytes + (size_t)bl.rows * 12));
  if (!mem) throw std::bad_alloc();
  int32_t* idxs = reinterpret_cast<int32_t*>(mem);
  int32_t* acc = reinterpret_cast<int32_t*>(mem + idx_bytes);
  uint16_t* codes = reinterpret_cast<uint16_t*>(mem + idx_bytes + acc_bytes);
  int64_t* npairs = reinterpret_cast<int64_t*>(mem + idx_bytes + acc_bytes + code_bytes);
  int32_t* rowsum = reinterpret_cast<int32_t*>(npairs + bl.rows);
  const int64_t acc_ld = bl.panels * 16;
  for (int64_t mb = m0; mb < m1; mb += bl.rows) {
    const int64_t nr = std::min<int64_t>(bl.rows, m1 - mb);
    for (int64_t r = 0; r < nr; ++r) {
      const uint8_t* a = c.A + (mb + r) * c.lda;
      npairs[r] = compact_row_avx2(a, K, (int32_t)ldb, idxs + r * ld, codes + r * ld);
      rowsum[r] = B.w_zero_point ? (int32_t)rowsum_u8_avx2(a, K) : 0;
    }
    for (int64_t pb = p0; pb < p1; pb += bl.panels) {
      const int64_t pe = std::min<int64_t>(p1, pb + bl.panels);
      if (K * (pe - pb) * 32 > 32768) {
        // an L2-sized slice: touch its lines in order first; the rows' random-k reads would
        // otherwise each wait for memory (49×3072×768 at 10 %: 1.11 → see docs/sparsity.md)
        const char* s0 = reinterpret_cast<const char*>(B.bk16.data() + pb * 16);
        for (int64_t k = 0; k < K; ++k)
          for (int64_t o = 0; o < (pe - pb) * 32; o += 64) _mm_prefetch(s0 + k * ldb + o, _MM_HINT_T1);
      }
      for (int64_t r = 0; r < nr; ++r) {
        const int32_t* idx = idxs + r * ld;
        const uint16_t* code = codes + r * ld;
        for (int64_t p = pb; p < pe;) {
          const char* b = reinterpret_cast<const char*>(B.bk16.data() + p * 16);
          int32_t* o = acc + r * acc_ld + (p - pb) * 16;
          const int64_t left = pe - p;
          if (left >= 4) gemm_u8s16_s32_sparse_1x64_avx2<4>(b, idx, code, npairs[r], o);
          else if (left >= 2) gemm_u8s16_s32_sparse_1x64_avx2<2>(b, idx, code, npairs[r], o);
          else gemm_u8s16_s32_sparse_1x64_avx2<1>(b, idx, code, npairs[r], o);
          p += left >= 4 ? 4 : left >= 2 ? 2 : 1;
        }
      }
      for (int64_t r = 0; r < nr; r += 4)
        gemm_epilogue_rows_avx2(c, mb + r, (int)std::min<int64_t>(4, nr - r), pb, pe, acc + r * acc_ld, acc_ld, rowsum + r);
    }
  }
  std::free(mem);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
