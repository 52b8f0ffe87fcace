// Training engine: forward and backward of the fused ops Swin/ViT need, losses, AdamW.
// An op is batch-agnostic: its attributes describe one item and the outer count (rows, batches,
// windows) follows from the input sizes, so one op list trains and exports at any batch size.
// Every function checks the sizes it is handed and throws std::invalid_argument naming the field.
// Backward rules live in one place: native/train/backward.cc (one function per op kind).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "swinq/fewbit.h"

namespace swinq {
class ThreadPool;
namespace train {

// The train ops: the SWINQ_TRAIN_OP list of swinq/ops.def (each with the plan op it is).
#pragma push_macro("X")
#undef X
#define X(name, wire)
#define SWINQ_TRAIN_OP(kind, plan_op) kind,
enum class Kind {
#include "swinq/ops.def"
};
#undef SWINQ_TRAIN_OP
#undef X
#pragma pop_macro("X")
Kind kind_from_name(const std::string& name);  // throws naming the op
const char* kind_name(Kind k);
const char* plan_op_of(Kind k);  // the plan op's wire name, or "none" for a training-only op

struct Op {
  Kind kind = Kind::add;
  // linear: x[M,K]·w[K,N] + b[N]          inputs (x, w, b)
  // layernorm: rows of D, gamma/beta [D]   inputs (x, gamma, beta)
  // matmul: y[T,M,N] = alpha·a[T,M,K]·op(b[T]) with b [T,K,N] or [T,N,K] (trans_b)   inputs (a, b)
  // softmax: rows of D                    inputs (x)
  // add: same sizes                       inputs (a, b)
  // add_bcast: a viewed [A0,dims[1..3]], b [1,bdims[1..3]] with each bdim 1 or the a dim   inputs (a, b)
  // gather: y[t, r*block + j] = idx[r] < 0 ? 0 : x[t*x_item + idx[r] + j]   inputs (x)
  // act: y = f(x) for a few-bit function name (gelu, relu, silu, ...)   inputs (x)
  // mean_pool: y[t, c] = mean_l x[t, l, c] with L = M, C = D   inputs (x)
  // fakequant: y = (clamp(round_half_even(x/q_scale) + q_zp, q_min, q_max) − q_zp)·q_scale   inputs (x)
  //   backward: the clipped straight-through estimator dx = dy where q_min ≤ x/q_scale + q_zp ≤ q_max, else 0
  // binary: y[i] = a[Σ i_d·sa[d]] ∘ b[Σ i_d·sb[d]] over row-major output dims odims[0..rank) (rank ≤ 8;
  //   stride 0 = broadcast), ∘ = bop (0 add, 1 sub, 2 mul, 3 div)   inputs (a, b)
  // scale_shift: y = alpha·x + shift   inputs (x)
  int64_t M = 0, K = 0, N = 0, D = 0;
  bool trans_b = false;
  float alpha = 1.f, eps = 1e-5f;
  int64_t adims[4] = {0, 1, 1, 1}, bdims[4] = {1, 1, 1, 1};
  int64_t x_item = 0, block = 1;
  std::vector<int32_t> idx;
  std::string fn;                 // act
  int bits = 0;                   // act: 0 = exact backward (keep x), 1..4 = keep few-bit codes
  std::shared_ptr<const FewbitTable> table;
  // act with bits > 0: a fixed table instead of the solved one (2^bits − 1 ascending inner borders,
  // 2^bits levels; code = number of borders below x), e.g. Approx-BP's ReGELU2
  std::vector<double> table_borders, table_levels;
  FewbitCodec codec;
  int unary = -1;                 // act: the plan's unary op computing fn (PyTorch defaults), −1 = none
  float unary_p0 = 0.f, unary_p1 = 0.f;
  float q_scale = 1.f;            // fakequant
  int32_t q_zp = 0, q_min = 0, q_max = 255;
  int bop = 0, rank = 0;          // binary
  int64_t odims[8] = {0}, sa[8] = {0}, sb[8] = {0};
  float shift = 0.f;              // scale_shift
};

// Checks an op's own attributes (call once after filling it in; resolves act tables).
void prepare(Op& op);

// Output element count for the given input element counts (throws naming the bad input).
size_t output_size(const Op& op, const std::vector<size_t>& in_sizes);

struct Saved {
  std::vector<const float*> in;   // inputs (in[0] may be null for act with bits > 0)
  std::vector<size_t> in_n;
  const float* out = nullptr;     // forward output
  const uint8_t* codes = nullptr; // act with bits > 0
  size_t codes_n = 0;
  // layernorm from its output (memory-sharing LayerNorm, in[0] null): 1/σ per row; out = y, in[2] = β
  const float* aux = nullptr;
  size_t aux_n = 0;
};

// What an op's backward rule reads for the gradients asked for (need[i]: dL/d in[i] wanted). The one
// source of truth: backward() checks exactly these, and the trainer (src/train/onnx-graph.ts, through
// the binding's trainReads) keeps exactly these for backward. from_output: a LayerNorm whose backward
// runs from its output y, β and 1/σ per row (memory-sharing LayerNorm) instead of its input x.
struct Reads {
  std::vector<bool> in;  // one per input
  bool out = false;      // the forward output
  bool codes = false;    // act with bits > 0: the few-bit codes
  bool aux = false;      // layernorm from its output: 1/σ per row
};
Reads reads(const Op& op, const std::vector<bool>& need, bool from_output = false);
int input_count(Kind k);
// 1/σ of each row of x (n elements, rows of op.D) as the layernorm backward rule computes it: what a
// memory-sharing LayerNorm saves (Saved::aux) instead of its input.
void layernorm_rstd(const Op& op, const float* x, size_t n, float* rstd);

// y must hold output_size(...) floats; codes (act with bits > 0) fewbit_packed_bytes(n, bits).
void forward(const Op& op, const std::vector<const float*>& in, const std::vector<size_t>& in_n, float* y,
             uint8_t* codes, ThreadPool* pool);
// grads[i] (null = not wanted) receive dL/d in[i], overwritten; dy has output_size floats.
void backward(const Op& op, const Saved& s, const float* dy, const std::vector<float*>& grads, ThreadPool* pool);

// ---- losses (native/train/loss.cc); return the mean loss over rows, write dL/dlogits ----
// Cross-entropy with label smoothing eps: target = (1-eps)·onehot + eps/C.
double cross_entropy(const float* logits, const int32_t* labels, int64_t B, int64_t C, float smoothing, float* dlogits);
// KL(softmax(teacher/T) ‖ softmax(student/T))·T², the distillation loss.
double kl_div(const float* student, const float* teacher, int64_t B, int64_t C, float T, float* dstudent);

// ---- optimiser (native/train/optim.cc) ----
struct AdamW { float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.05f; };
// One AdamW step (decoupled weight decay); step counts from 1.
void adamw_step(const AdamW& o, int64_t step, float* p, const float* g, float* m, float* v, size_t n);
// Linear warm-up to base over `warmup` steps, then cosine to min_lr at `total`.
double lr_at(int64_t step, int64_t total, int64_t warmup, double base, double min_lr);
double sum_squares(const float* g, size_t n);
void scale(float* g, size_t n, float s);

ThreadPool* pool(int threads);  // process-wide training pool, resized on demand

}  // namespace train
}  // namespace swinq
