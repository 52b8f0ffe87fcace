// Sparse-A GEMM (docs/sparsity.md): the choice per call from the measured density of A, the
// blocking, and the scalar reference the AVX2 path (qsparse_avx2.cc) matches bit-exactly.
#include <algorithm>
#include <vector>

#include "qcheck.h"
#include "qinternal.h"
#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {
namespace detail {

int64_t count_nonzero_u8_scalar(const uint8_t* a, int64_t K) {
  int64_t nz = 0;
  for (int64_t k = 0; k < K; ++k) nz += a[k] != 0;
  return nz;
}

// The sparse path's compacted rows hold uint16 weight-row indices. pack_b caps K at 65536 today;
// the check keeps a larger K from wrapping if that cap ever moves.
static bool indices_fit(const PackedB& B) { return B.K <= 65536; }

}  // namespace detail

double sparse_max_density(const PackedB& B, Isa isa) { return kernels(isa).sparse_max_density(B); }

bool gemm_u8s8_uses_sparse(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep,
                           Isa isa) {
  QCHECK(M >= 0 && lda >= B.K && (M == 0 || A), "gemm_u8s8_uses_sparse: bad A");
  return detail::use_sparse_a(M, A, lda, B, ep, kernels(isa));
}

namespace detail {

double sparse_max_density_avx2(const PackedB& B) {
  // break-even on Zen 3, fc2 3136×384×96, 784×768×192, 196×1536×384, 49×3072×768 (docs/sparsity.md):
  // int8 quad kernel ≈ 0.38 / 0.39 / 0.32 / 0.25; int16 pair kernel against the fast dense
  // kernel ≈ 0.28 / 0.27 / 0.21 / 0.17 (higher against the exact int16 one); kept below it so the
  // sparse path is never the slower one
  // short rows (micro-Swin fc2, K = 192) leave little dense work to save: break-even ≈ 0.2 (int8)
  const int64_t K = B.K;
  if (!B.bk8.empty()) return K < 256 ? 0.14 : K <= 1024 ? 0.32 : K <= 2048 ? 0.25 : 0.20;
  return K < 256 ? 0.06 : K <= 1024 ? 0.20 : K <= 2048 ? 0.15 : 0.12;
}

double sparse_max_density_avx512vnni(const PackedB& B) {
  // its zmm quad kernel (qsparse_avx512.cc) against the VNNI dense GEMM on Zen 5 (bench/sparse-gemm.js,
  // i.i.d. zeros): break-even ≈ 0.055 / 0.19 / 0.20 / 0.19 on the Swin-T fc2 shapes above, never for
  // micro-Swin's 196×192×48, ≈ 0.05 for its 49×384×96 (short rows: the compaction dominates); the
  // int16 pair kernel (codes up to 255) is AVX2's, ≈ 3× slower than this dense GEMM, so lower still
  const int64_t K = B.K;
  if (!B.bk8.empty()) return K < 256 ? 0.0 : K <= 512 ? 0.04 : 0.16;
  return K < 256 ? 0.0 : K <= 512 ? 0.02 : K <= 1024 ? 0.06 : 0.07;
}

bool use_sparse_a(int64_t M, const uint8_t* A, int64_t lda, const PackedB& B, const GemmEpilogue& ep, const Kernels& k) {
  if (B.bk16.empty() || ep.sparse == 2 || M == 0) return false;
  if (!indices_fit(B)) {  // auto declines; forcing it is an error
    QCHECK(ep.sparse != 1, "gemm_u8s8: ep.sparse = 1 needs K ≤ 65536 (uint16 weight-row indices)");
    return false;
  }
  if (ep.sparse == 1) return true;
  // density of up to 16 evenly spaced rows (≥ 3k codes on fc2 shapes): the decision needs a share,
  // not an exact count, and 64 rows cost 3 % of a micro-Swin fc2 (49×384×96, 20 µs)
  const int64_t rows = std::min<int64_t>(M, 16);
  int64_t nz = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const uint8_t* a = A + (i * M / rows) * lda;
    nz += k.count_nonzero(a, B.K);
  }
  return (double)nz < k.sparse_max_density(B) * (double)(rows * B.K);
}

SparseBlocking sparse_blocking(int64_t K, int64_t rows, int64_t panels, int wbytes, int group) {
  SparseBlocking b;
  // the column block's weight slice (K·16·wbytes per panel) in L1 (24 KiB) when that still leaves
  // 2 panels per row sweep, else in L2 (256 KiB, half of Zen 3's): fc2 3136×384×96 at 10 % density
  // 0.93 ms with 2-panel L1 blocks vs 1.22 ms with 6-panel L2 blocks; 49×3072×768 1.24 ms (L2) vs
  // 2.65 ms (1-panel L1 blocks) — docs/sparsity.md
  const int64_t per_panel = K * 16 * wbytes, l1 = (int64_t)24576 / per_panel, l2 = (int64_t)262144 / per_panel;
  b.panels = std::max<int64_t>(1, std::min<int64_t>(panels, l1 >= 2 ? l1 : l2));
  // whole column groups of the int8 kernel (a zmm group of 64 columns on a 2-panel block did half
  // its work for nothing: 784×768×192 at 10 % 0.285 ms vs 0.23 with the AVX2 kernel)
  if (wbytes == 1 && b.panels < panels) b.panels = std::min<int64_t>(panels, std::max<int64_t>(group, b.panels / group * group));
  // up to the int8 kernel's widest call (3 or 2 groups: 96 or 128 columns) in one sweep when the
  // slice stays near L1
  if (wbytes == 1 && panels <= (group == 4 ? 8 : 6) && per_panel * panels <= 49152) b.panels = panels;
  b.rows = std::max<int64_t>(4, std::min<int64_t>(64, (rows + 3) / 4 * 4));
  return b;
}

// Reference: per row, Σ over the non-zero codes only of a·(K-major weight row), then the dense
// scalar epilogue. Exact int32 sums, so neither the order nor the AVX2 blocking changes the result.
void gemm_sparse_rows_scalar(const GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  const PackedB& B = *c.B;
  std::vector<int32_t> idx((size_t)B.K);
  std::vector<uint32_t> acc((size_t)B.Np);
  for (int64_t m = m0; m < m1; ++m) {
    const uint8_t* a = c.A + m * c.lda;
    int64_t n = 0;
    uint32_t rowsum = 0;
    for (int64_t k = 0; k < B.K; ++k)
      if (a[k]) {
        idx[(size_t)n++] = (int32_t)k;
        rowsum += a[k];
      }
    std::fill(acc.begin(), acc.end(), 0u);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = idx[(size_t)i];
      const int16_t* w = B.bk16.data() + k * B.Np;
      for (int64_t col = p0 * 16; col < p1 * 16; ++col) acc[(size_t)col] += (uint32_t)((int32_t)a[k] * w[col]);
    }
    const uint32_t zr = (uint32_t)B.w_zero_point * rowsum;
    for (int64_t col = p0 * 16; col < std::min<int64_t>(p1 * 16, B.N); ++col)
      epilogue_one_scalar(c, m, col, acc[(size_t)col], zr);
  }
}

}  // namespace detail
}  // namespace q
}  // namespace swinq
