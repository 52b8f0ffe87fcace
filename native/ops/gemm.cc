// fp32 GEMM ops: linear (packed constant weights, fused bias/activation/residual) and the batched
// matmul. Contracts: ops.def; kernels: kernels/gemm_f32*.cc, matmul_f32_avx2.cc.
#include <algorithm>
#include <vector>

#include "swinq/executor.h"
#include "swinq/op.h"
#include "swinq/threadpool.h"

namespace swinq {
namespace {

// ---- linear ----

void linear_validate(const OpCheck& c) {
  c.arity(2, 4, {"x", "w", "bias", "residual"});
  c.ints_len(4, "[M, K, N, act]");
  c.nonneg({"M", "K", "N"});
  const int64_t M = c.I(0), K = c.I(1), N = c.I(2);
  if (c.I(3) < 0 || c.I(3) > 3)
    c.fail("ints[3] act = " + str(c.I(3)) + " is unknown (0 none, 1 relu, 2 gelu_erf, 3 gelu_tanh)");
  const int32_t x = c.in(0), w = c.in(1), b = c.in(2), r = c.in(3), y = c.out();
  c.all_f32({{x, "x"}, {w, "w"}, {b, "bias"}, {r, "residual"}, {y, "y"}});
  c.elems(x, "x", c.prod({M, K}, "M·K"), "M·K");
  c.elems(w, "w", c.prod({K, N}, "K·N"), "K·N");
  if (c.t(w).storage != Storage::constant)
    c.fail("w (tensor #" + str(w) + ") must be a constant (it is packed at load)");
  if (b >= 0) c.elems(b, "bias", N, "N");
  if (r >= 0) c.elems(r, "residual", c.prod({M, N}, "M·N"), "M·N");
  c.elems(y, "y", c.prod({M, N}, "M·N"), "M·N");
  c.no_overlap(x, "x", false);
  c.no_overlap(b, "bias", false);
  c.no_overlap(r, "residual", true);
}

// w packed once (pack_b_f32 layout, the same for every Isa), 64-byte aligned.
struct LinearState : OpState {
  std::vector<float> buf;
  const float* packed = nullptr;
};

std::unique_ptr<OpState> linear_prepare(const OpCheck& c, const PlanOptions&) {
  const int64_t K = c.I(1), N = c.I(2);
  auto st = std::make_unique<LinearState>();
  st->buf.assign((size_t)std::max<int64_t>(1, f32::packed_b_floats(K, N)) + 16, 0.0f);
  float* p = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(st->buf.data()) + 63) & ~uintptr_t(63));
  f32::pack_b_f32(c.cdata<float>(c.in(1)), K, N, p);
  st->packed = p;
  return st;
}

void linear_run(const OpRun& r) {
  const auto& I = r.op.ints;
  f32::GemmArgs a{r.inf(0), r.st<LinearState>().packed, r.inf(2), r.inf(3), static_cast<float*>(r.out()),
                  I[0], I[1], I[2], (int)I[3]};
  const int64_t panels = f32::gemm_panels(a.N);
  // Tasks are blocks of 48 rows × 4 panels (64 columns), m-major so an x block stays in cache; 48
  // rows are whole tiles of both kernels (AVX2 6 rows, AVX-512 8: with 36, a 4-row tile per task).
  // Fewer panels per task when K is large, so a task's B panels (K·64 bytes each) stay in L2, but
  // two at least: the AVX-512 tile pairs panels (ViT-B fc2, K 3072, alone: 68.6 ms a run, paired 53–56)
  const int64_t mb = 48,
                nb = std::max<int64_t>(2, std::min<int64_t>(4, (256 << 10) / (std::max<int64_t>(a.K, 1) * 64)));
  const int64_t m_blocks = (a.M + mb - 1) / mb, n_blocks = (panels + nb - 1) / nb;
  const int64_t task_work = mb * nb * f32::kGemmNr * std::max<int64_t>(a.K, 1);
  // The larger operand outside, so it passes through the caches once: m-major when x is larger
  // (Swin stage 1: 3136 rows, 147 KB of weights), n-major when the weights are (ViT-B at batch 1:
  // 197 rows, 2.4–9.4 MB a linear, which m-major read once per 48-row block)
  const bool n_major = a.N > a.M;
  auto gemm = r.k.gemm;
  r.pool.parallel_for(m_blocks * n_blocks, chunk_for(task_work, 200000), [&](int64_t b, int64_t e) {
    for (int64_t tsk = b; tsk < e; ++tsk) {
      const int64_t mi = n_major ? tsk % m_blocks : tsk / n_blocks, ni = n_major ? tsk / m_blocks : tsk % n_blocks;
      gemm(a, mi * mb, std::min(a.M, (mi + 1) * mb), ni * nb, std::min(panels, (ni + 1) * nb));
    }
  });
}

// ---- matmul ----

void matmul_validate(const OpCheck& c) {
  c.arity(2, 2, {"a", "b"});
  c.ints_len(7, "[batch, M, K, N, trans_b, a_batch_stride, b_batch_stride]");
  c.nonneg({"batch", "M", "K", "N", "trans_b", "a_batch_stride", "b_batch_stride"});
  if (c.I(4) > 1) c.fail("ints[4] trans_b = " + str(c.I(4)) + " must be 0 or 1");
  c.floats_len(1, "[alpha]");
  const int64_t batch = c.I(0), M = c.I(1), K = c.I(2), N = c.I(3);
  const int32_t a = c.in(0), b = c.in(1), y = c.out();
  c.all_f32({{a, "a"}, {b, "b"}, {y, "y"}});
  c.elems(y, "y", c.prod({batch, M, N}, "batch·M·N"), "batch·M·N");
  c.batch_strides(a, b, batch, M, K, N, 5);
  c.no_overlap(a, "a", false);
  c.no_overlap(b, "b", false);
}

void matmul_run(const OpRun& r) {
  const auto& I = r.op.ints;
  f32::MatmulArgs a{r.inf(0), r.inf(1), static_cast<float*>(r.out()), I[0], I[1], I[2], I[3], I[5], I[6], I[4] != 0,
                    r.op.floats[0]};
  auto mm = r.k.matmul;
  r.pool.parallel_for(a.batch, chunk_for(a.M * a.N * std::max<int64_t>(a.K, 1), 100000),
                      [&](int64_t b, int64_t e) { mm(a, b, e); });
}

}  // namespace

extern const OpDef op_linear{linear_validate, linear_prepare, linear_run};
extern const OpDef op_matmul{matmul_validate, nullptr, matmul_run};

}  // namespace swinq
