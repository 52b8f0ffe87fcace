// Sparse-A int8 quad kernel for AVX-512 VNNI (the avx512vnni set's sparse path; compaction,
// blocking and epilogue are the AVX2 driver's, gemm_sparse_rows_with_avx2). Per quad of a row's
// compacted non-zero codes (a_1..a_4 at K-major weight rows k_1..k_4): four 64-byte row loads,
// vpunpck{l,h}bw then vpunpck{l,h}wd interleave them into (w_1..w_4) quads per column — the dense
// kernels' packed layout — and one vpdpbusd per 16 columns adds a_1·w_1 + … + a_4·w_4 to int32.
// vpdpbusd has no int16 step, so the sum is exact for any u8 code and s8 weight. The unpacks work
// inside 128-bit lanes: accumulator j holds columns 16L + 4j … 16L + 4j + 3 in lane L; a 4 × 4
// transpose of lanes (vshufi32x4) restores the order at the end. The last group of a call loads
// under a byte mask, so no weight row is read past its own columns.
#include <immintrin.h>

#include <cstring>

#include "qavx512.h"
#include "qinternal.h"

namespace swinq {
namespace q {
namespace detail {

namespace {
template <int NG>
inline void sparse_quad_groups(const char* b, int64_t ldb, const uint16_t* idx, const uint8_t* code, int64_t n,
                               int32_t* acc, int64_t cols) {
  __m512i c[NG][4];
  for (int g = 0; g < NG; ++g)
    for (int j = 0; j < 4; ++j) c[g][j] = _mm512_setzero_si512();
  const int64_t tail = cols - 64 * (NG - 1);  // columns of the last group, 1…64
  const __mmask64 mlast = tail >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << tail) - 1);
  for (int64_t i = 0; i < n; i += 4) {
    const char* r0 = b + (int64_t)idx[i] * ldb;
    const char* r1 = b + (int64_t)idx[i + 1] * ldb;
    const char* r2 = b + (int64_t)idx[i + 2] * ldb;
    const char* r3 = b + (int64_t)idx[i + 3] * ldb;
    uint32_t a4;
    std::memcpy(&a4, code + i, 4);
    const __m512i av = _mm512_set1_epi32((int)a4);
    for (int g = 0; g < NG; ++g) {
      const __mmask64 m = g == NG - 1 ? mlast : ~(__mmask64)0;
      const __m512i w0 = _mm512_maskz_loadu_epi8(m, r0 + 64 * g), w1 = _mm512_maskz_loadu_epi8(m, r1 + 64 * g),
                    w2 = _mm512_maskz_loadu_epi8(m, r2 + 64 * g), w3 = _mm512_maskz_loadu_epi8(m, r3 + 64 * g);
      const __m512i t01l = _mm512_unpacklo_epi8(w0, w1), t01h = _mm512_unpackhi_epi8(w0, w1);
      const __m512i t23l = _mm512_unpacklo_epi8(w2, w3), t23h = _mm512_unpackhi_epi8(w2, w3);
      c[g][0] = _mm512_dpbusd_epi32(c[g][0], av, _mm512_unpacklo_epi16(t01l, t23l));  // columns 16L + 0…3
      c[g][1] = _mm512_dpbusd_epi32(c[g][1], av, _mm512_unpackhi_epi16(t01l, t23l));  // 16L + 4…7
      c[g][2] = _mm512_dpbusd_epi32(c[g][2], av, _mm512_unpacklo_epi16(t01h, t23h));  // 16L + 8…11
      c[g][3] = _mm512_dpbusd_epi32(c[g][3], av, _mm512_unpackhi_epi16(t01h, t23h));  // 16L + 12…15
    }
  }
  for (int g = 0; g < NG; ++g) {  // lanes back in column order: a 4 × 4 transpose of 128-bit lanes
    const __m512i x0 = _mm512_shuffle_i32x4(c[g][0], c[g][1], 0x44), x1 = _mm512_shuffle_i32x4(c[g][2], c[g][3], 0x44);
    const __m512i x2 = _mm512_shuffle_i32x4(c[g][0], c[g][1], 0xEE), x3 = _mm512_shuffle_i32x4(c[g][2], c[g][3], 0xEE);
    int32_t* o = acc + 64 * g;
    _mm512_storeu_si512((void*)o, _mm512_shuffle_i32x4(x0, x1, 0x88));         // columns 0…15
    _mm512_storeu_si512((void*)(o + 16), _mm512_shuffle_i32x4(x0, x1, 0xDD));  // 16…31
    _mm512_storeu_si512((void*)(o + 32), _mm512_shuffle_i32x4(x2, x3, 0x88));  // 32…47
    _mm512_storeu_si512((void*)(o + 48), _mm512_shuffle_i32x4(x2, x3, 0xDD));  // 48…63
  }
}

// up to 128 columns (8 panels) a call: one or two 64-column groups (8 accumulators for two)
void gemm_u8s8_s32_sparse_1x128_avx512vnni(const char* b, int64_t ldb, const uint16_t* idx, const uint8_t* code,
                                           int64_t n, int32_t* acc, int64_t cols) {
  if (cols > 64) sparse_quad_groups<2>(b, ldb, idx, code, n, acc, cols);
  else sparse_quad_groups<1>(b, ldb, idx, code, n, acc, cols);
}
}  // namespace

void gemm_sparse_rows_avx512vnni(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  gemm_sparse_rows_with_avx2(c, m0, m1, p0, p1, gemm_u8s8_s32_sparse_1x128_avx512vnni, 8);
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
