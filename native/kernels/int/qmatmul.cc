// matmul_q's kernel: the scalar reference and the entry point (the AVX2 tiles: qmatmul_avx2.cc).
#include <algorithm>
#include <vector>

#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {

void matmul_u8x8_s32_scalar(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                            int64_t M, int64_t K, int64_t N, int32_t* c, int32_t* /*ap*/, int32_t* /*bp*/) {
  auto bval = [&](int64_t k, int64_t n) -> int32_t {
    const int64_t i = trans_b ? n * K + k : k * N + n;
    return b_u8 ? (int32_t) static_cast<const uint8_t*>(b)[i] : (int32_t) static_cast<const int8_t*>(b)[i];
  };
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int32_t s = 0;
      for (int64_t k = 0; k < K; ++k) s += ((int32_t)a[m * K + k] - za) * (bval(k, n) - zb);
      c[m * N + n] = s;
    }
}

void matmul_u8x8_s32(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b, int64_t M,
                     int64_t K, int64_t N, int32_t* c, Isa isa) {
  const Kernels& k = kernels(isa);
  if (M <= 0 || N <= 0) return;
  // Per-thread scratch for the AVX2 form's widened pair layouts (zero-padded: K to even, N to 16);
  // kept here, not in the AVX2 object, so no std::vector code is compiled for AVX2
  // (check-avx2-objects.sh). The scalar kernel ignores it.
  const int64_t Kh = (K + 1) / 2, Np = (N + 15) / 16 * 16;
  thread_local std::vector<int32_t> bscratch, ascratch;
  if ((int64_t)bscratch.size() < Kh * Np) bscratch.resize((size_t)(Kh * Np));
  if ((int64_t)ascratch.size() < M * Kh) ascratch.resize((size_t)(M * Kh));
  k.matmul(a, za, b, b_u8, zb, trans_b, M, K, N, c, ascratch.data(), bscratch.data());
}

}  // namespace q
}  // namespace swinq
