// matmul_q's AVX2 kernel: a 4×16 register tile (MR rows); k runs in pairs, bp[kk][n][2] =
// (b[2kk][n], b[2kk+1][n]) − zb as int16, ap[m][kk] = the matching pair of a − za packed in one
// int32, so one vpmaddwd does 16 MACs exactly ((a−za)(b−zb) ≤ 65025, pair ≤ 130050, K ≤ 32768
// keeps every sum inside int32). Bit-exact with matmul_u8x8_s32_scalar (integer sums).
#include <immintrin.h>

#include <cstring>

#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {
namespace {

template <int MR, int NV>  // NV: 16-column tile (2 vectors) or an 8-column tail tile (1 vector)
void tile(const int32_t* ap, int64_t Kh, const int16_t* bp, int64_t Np, int64_t n0, int32_t* c, int64_t ldc,
          int64_t ncols) {
  __m256i acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
  for (int64_t kk = 0; kk < Kh; ++kk) {
    const int16_t* brow = bp + (kk * Np + n0) * 2;
    __m256i bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_si256((const __m256i*)(brow + 16 * v));
    for (int r = 0; r < MR; ++r) {
      const __m256i av = _mm256_set1_epi32(ap[r * Kh + kk]);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_add_epi32(acc[r][v], _mm256_madd_epi16(av, bv[v]));
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (ncols == 8 * NV) {
      for (int v = 0; v < NV; ++v) _mm256_storeu_si256((__m256i*)(c + r * ldc + 8 * v), acc[r][v]);
    } else {
      alignas(32) int32_t tmp[8 * NV];
      for (int v = 0; v < NV; ++v) _mm256_store_si256((__m256i*)(tmp + 8 * v), acc[r][v]);
      std::memcpy(c + r * ldc, tmp, (size_t)ncols * 4);
    }
  }
}

template <int NV>
void rows(int64_t mr, const int32_t* aa, int64_t Kh, const int16_t* bp, int64_t Np, int64_t n0, int32_t* cc,
          int64_t ldc, int64_t nc) {
  switch (mr) {
    case 4: tile<4, NV>(aa, Kh, bp, Np, n0, cc, ldc, nc); break;
    case 3: tile<3, NV>(aa, Kh, bp, Np, n0, cc, ldc, nc); break;
    case 2: tile<2, NV>(aa, Kh, bp, Np, n0, cc, ldc, nc); break;
    default: tile<1, NV>(aa, Kh, bp, Np, n0, cc, ldc, nc); break;
  }
}

inline int32_t pack_pair(int32_t lo, int32_t hi) {
  return (int32_t)((uint32_t)(uint16_t)lo | ((uint32_t)(uint16_t)hi << 16));
}

// bp[kk][n] = pair (b[2kk][n] − zb, b[2kk+1][n] − zb) as two int16 in an int32; zero padding.
template <class TB>
void widen_b(const TB* b, int32_t zb, bool trans_b, int64_t K, int64_t N, int64_t Kh, int64_t Np, int32_t* bp) {
  for (int64_t kk = 0; kk < Kh; ++kk)
    for (int64_t n = N; n < Np; ++n) bp[kk * Np + n] = 0;
  const int64_t Ke = K & ~int64_t(1);
  if (trans_b) {  // b is [N][K]: rows contiguous in k
    for (int64_t n = 0; n < N; ++n) {
      const TB* row = b + n * K;
      for (int64_t k = 0; k < Ke; k += 2) bp[(k >> 1) * Np + n] = pack_pair((int32_t)row[k] - zb, (int32_t)row[k + 1] - zb);
      if (K & 1) bp[(K >> 1) * Np + n] = pack_pair((int32_t)row[K - 1] - zb, 0);
    }
  } else {  // b is [K][N]
    for (int64_t k = 0; k < Ke; k += 2) {
      const TB* r0 = b + k * N;
      const TB* r1 = r0 + N;
      int32_t* dst = bp + (k >> 1) * Np;
      for (int64_t n = 0; n < N; ++n) dst[n] = pack_pair((int32_t)r0[n] - zb, (int32_t)r1[n] - zb);
    }
    if (K & 1) {
      const TB* r0 = b + (K - 1) * N;
      int32_t* dst = bp + (K >> 1) * Np;
      for (int64_t n = 0; n < N; ++n) dst[n] = pack_pair((int32_t)r0[n] - zb, 0);
    }
  }
}

void widen_a(const uint8_t* a, int32_t za, int64_t M, int64_t K, int64_t Kh, int32_t* ap) {
  const int64_t Ke = K & ~int64_t(1);
  for (int64_t m = 0; m < M; ++m) {
    const uint8_t* row = a + m * K;
    int32_t* dst = ap + m * Kh;
    for (int64_t k = 0; k < Ke; k += 2) dst[k >> 1] = pack_pair((int32_t)row[k] - za, (int32_t)row[k + 1] - za);
    if (K & 1) dst[K >> 1] = pack_pair((int32_t)row[K - 1] - za, 0);
  }
}

}  // namespace

void matmul_u8x8_s32_4x16_avx2(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                               int64_t M, int64_t K, int64_t N, int32_t* c, int32_t* ap, int32_t* bp32) {
  if (M <= 0 || N <= 0) return;
  const int64_t Kh = (K + 1) / 2, Np = (N + 15) / 16 * 16;
  if (b_u8) widen_b(static_cast<const uint8_t*>(b), zb, trans_b, K, N, Kh, Np, bp32);
  else widen_b(static_cast<const int8_t*>(b), zb, trans_b, K, N, Kh, Np, bp32);
  widen_a(a, za, M, K, Kh, ap);
  const int16_t* bp = reinterpret_cast<const int16_t*>(bp32);
  for (int64_t m0 = 0; m0 < M; m0 += 4) {
    const int64_t mr = M - m0 < 4 ? M - m0 : 4;
    for (int64_t n0 = 0; n0 < N; n0 += 16) {
      const int64_t nc = N - n0 < 16 ? N - n0 : 16;
      if (nc > 8) rows<2>(mr, ap + m0 * Kh, Kh, bp, Np, n0, c + m0 * N + n0, N, nc);
      else rows<1>(mr, ap + m0 * Kh, Kh, bp, Np, n0, c + m0 * N + n0, N, nc);
    }
  }
}

}  // namespace q
}  // namespace swinq
