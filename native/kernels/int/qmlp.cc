// mlp_u8s8 (qkernels.h): fc1 → fc2 per row block through a cache-resident hidden tile. Both
// halves are gemm_u8s8 calls, so the result is the unfused one bit for bit for either ISA.
#include <algorithm>
#include <vector>

#include "qcheck.h"
#include "qinternal.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace q {

void mlp_u8s8(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B1, const GemmEpilogue& ep1, const PackedB& B2,
              const GemmEpilogue& ep2, void* C, int64_t ldc, int64_t rows_per_block, Isa isa, ThreadPool* pool) {
  QCHECK(M >= 0, "mlp_u8s8: M must be ≥ 0");
  QCHECK(B1.N > 0 && B1.N == B2.K,
         "mlp_u8s8: fc1 N " + std::to_string(B1.N) + " must equal fc2 K " + std::to_string(B2.K));
  QCHECK(ep1.out == QType::u8, "mlp_u8s8: ep1.out must be u8 (the hidden codes fc2 reads)");
  QCHECK(rows_per_block >= 0, "mlp_u8s8: rows_per_block must be ≥ 0");
  QCHECK(lda >= B1.K, "mlp_u8s8: lda " + std::to_string(lda) + " < K " + std::to_string(B1.K));
  QCHECK(ldc >= B2.N, "mlp_u8s8: ldc " + std::to_string(ldc) + " < N " + std::to_string(B2.N));
  if (M == 0) return;
  QCHECK(A && C, "mlp_u8s8: null buffer");
  const int64_t H = B1.N;
  int64_t rb = rows_per_block ? rows_per_block : std::max<int64_t>(4, (65536 / H) / 4 * 4);
  rb = std::min(rb, M);
  const int64_t blocks = (M + rb - 1) / rb;
  const int esz = qtype_size(ep2.out);
  auto run = [&](int64_t b0, int64_t b1) {
    thread_local std::vector<uint8_t> tile;
    if ((int64_t)tile.size() < rb * H) tile.resize((size_t)(rb * H));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t m0 = b * rb, rows = std::min(rb, M - m0);
      gemm_u8s8(rows, A + m0 * lda, lda, B1, ep1, tile.data(), H, 1, isa);
      GemmEpilogue e2 = ep2;  // a residual's rows of this block
      if (e2.residual) e2.residual = static_cast<const uint8_t*>(e2.residual) + m0 * e2.ldr * qtype_size(e2.residual_type);
      gemm_u8s8(rows, tile.data(), H, B2, e2, static_cast<uint8_t*>(C) + m0 * ldc * esz, ldc, 1, isa);
    }
  };
  if (pool && pool->threads() > 1 && blocks > 1) pool->parallel_for(blocks, 1, run);
  else run(0, blocks);
}

}  // namespace q
}  // namespace swinq
