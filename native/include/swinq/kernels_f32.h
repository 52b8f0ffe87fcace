// fp32 kernels used by the plan executor. Each family has a scalar reference (*_scalar) and,
// where it pays, an AVX2+FMA variant (*_avx2, in native/kernels/*_avx2.cc). Kernels work on a
// sub-range handed out by the executor's thread pool and trust their (validated) arguments.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "swinq/cpu.h"

namespace swinq {
namespace f32 {

enum Act : int { act_none = 0, act_relu = 1, act_gelu_erf = 2, act_gelu_tanh = 3 };
// f(std::integral_constant<int, act>{}): the one switch from a run-time activation to the kernels'
// compile-time one (their epilogue is a template on it); anything else is act_none
template <class F>
inline void with_act(int act, F&& f) {
  switch (act) {
    case act_relu: return f(std::integral_constant<int, act_relu>{});
    case act_gelu_erf: return f(std::integral_constant<int, act_gelu_erf>{});
    case act_gelu_tanh: return f(std::integral_constant<int, act_gelu_tanh>{});
    default: return f(std::integral_constant<int, act_none>{});
  }
}

// ---- GEMM: y[M,N] = act(x[M,K]·w[K,N] + bias) + residual, w pre-packed ----
// Packed layout (the same for every ISA, so set_isa() never needs a repack): panels of
// kGemmNr columns, panel p holds w[k][p*16 + j] at p*K*16 + k*16 + j, zero-padded past N.
constexpr int kGemmNr = 16;
inline int64_t gemm_panels(int64_t N) { return (N + kGemmNr - 1) / kGemmNr; }
inline int64_t packed_b_floats(int64_t K, int64_t N) { return gemm_panels(N) * K * kGemmNr; }
void pack_b_f32(const float* w, int64_t K, int64_t N, float* packed);

struct GemmArgs {
  const float* x;         // [M, K] row-major
  const float* packed_b;  // pack_b_f32 layout
  const float* bias;      // [N] or null
  const float* residual;  // [M, N] or null (may alias y exactly)
  float* y;               // [M, N]
  int64_t M, K, N;
  int act;
};
// Computes rows [m0, m1) × panels [p0, p1) of y.
void gemm_f32_scalar(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
void gemm_f32_6x16_avx2(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
// The avx512vnni set's (gemm_f32_avx512.cc): 8 rows × 2 panels on zmm.
void gemm_f32_8x32_avx512(const GemmArgs& a, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// ---- batched matmul: y[t] = alpha·a[t]·op(b[t]) ----
struct MatmulArgs {
  const float* a;
  const float* b;
  float* y;
  int64_t batch, M, K, N, a_stride, b_stride;
  bool trans_b;
  float alpha;
};
// Computes batches [t0, t1).
void matmul_f32_scalar(const MatmulArgs& a, int64_t t0, int64_t t1);
void matmul_f32_avx2(const MatmulArgs& a, int64_t t0, int64_t t1);

// ---- row ops (rows [r0, r1)); y may alias x exactly ----
void layernorm_f32_scalar(const float* x, const float* gamma, const float* beta, float* y, int64_t D, float eps,
                          int64_t r0, int64_t r1);
void layernorm_f32_avx2(const float* x, const float* gamma, const float* beta, float* y, int64_t D, float eps,
                        int64_t r0, int64_t r1);
void softmax_f32_scalar(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0,
                        int64_t r1);
void softmax_f32_avx2(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0,
                      int64_t r1);

// ---- elementwise ----
enum UnaryOp : int {
  u_relu = 0, u_gelu_erf, u_gelu_tanh, u_erf, u_sigmoid, u_tanh, u_exp, u_log, u_sqrt, u_neg, u_abs,
  u_reciprocal, u_silu, u_clip, u_leaky_relu, u_hardswish, u_hardsigmoid, u_softplus, u_mish, u_elu,
  u_floor, u_ceil, u_round, u_scale_shift, u_count
};
// y[i] = op(x[i]) for i in [0, n); y may alias x.
void unary_f32_scalar(int op, float p0, float p1, const float* x, float* y, int64_t n);
void unary_f32_avx2(int op, float p0, float p1, const float* x, float* y, int64_t n);

enum BinaryOp : int { b_add = 0, b_sub, b_mul, b_div, b_pow, b_max, b_min, b_count };
// Contiguous forms: y = a op b with b_step 0 (scalar b) or 1 (same shape), a_step likewise.
void binary_f32_scalar(int op, const float* a, int64_t a_step, const float* b, int64_t b_step, float* y, int64_t n);
void binary_f32_avx2(int op, const float* a, int64_t a_step, const float* b, int64_t b_step, float* y, int64_t n);
// Single element, for the general strided path.
float binary_one(int op, float a, float b);

// The plan's reduce ops (ReduceOp in src/plan/ops.ts): y[o][i] = op over r of x[o][r][i].
enum ReduceOp : int { r_mean = 0, r_sum, r_max, r_min };
void reduce_f32(int op, const float* x, float* y, int64_t outer, int64_t red, int64_t inner, int64_t o0, int64_t o1);
void argmax_f32(const float* x, int64_t* y, int64_t D, int64_t r0, int64_t r1);

// Scalar activations shared by the epilogues.
float gelu_erf(float x);
float gelu_tanh(float x);

}  // namespace f32
}  // namespace swinq

namespace swinq {
// ---- index_map (any element size) over flat (item, row) pairs [i0, i1), rows = y_item / block ----
// y[t*y_item + r*block + j] = idx[r] < 0 ? 0 : x[t*x_item + idx[r] + j], element size `esize` bytes.
void index_map_scalar(const uint8_t* x, const int32_t* idx, uint8_t* y, int64_t esize, int64_t block,
                      int64_t x_item, int64_t y_item, int64_t i0, int64_t i1);
void index_map_avx2(const uint8_t* x, const int32_t* idx, uint8_t* y, int64_t esize, int64_t block,
                    int64_t x_item, int64_t y_item, int64_t i0, int64_t i1);
}  // namespace swinq

namespace swinq {
struct FewbitCodec;  // swinq/fewbit.h; its kernels: native/kernels/fewbit_f32*.cc
namespace f32 {
// The one fp32 dispatch: a kernel table per Isa (kernels/kernels_f32.cc; the integer kernels have
// theirs, q::Kernels in qplan_kernels.h). The executor takes the table of the active Isa once per
// run; ops call through it and never test the Isa themselves.
struct Kernels {
  void (*gemm)(const GemmArgs&, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
  void (*matmul)(const MatmulArgs&, int64_t t0, int64_t t1);
  void (*layernorm)(const float* x, const float* gamma, const float* beta, float* y, int64_t D, float eps, int64_t r0,
                    int64_t r1);
  void (*softmax)(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0, int64_t r1);
  void (*unary)(int op, float p0, float p1, const float* x, float* y, int64_t n);
  void (*binary)(int op, const float* a, int64_t a_step, const float* b, int64_t b_step, float* y, int64_t n);
  void (*index_map)(const uint8_t* x, const int32_t* idx, uint8_t* y, int64_t esize, int64_t block, int64_t x_item,
                    int64_t y_item, int64_t i0, int64_t i1);
  void (*fewbit_encode)(const FewbitCodec& c, const float* x, size_t n, uint8_t* codes);
  void (*fewbit_decode_mul)(const FewbitCodec& c, const uint8_t* codes, const float* grad_out, size_t n,
                            float* grad_in);
};
const Kernels& kernels(Isa isa);
}  // namespace f32
}  // namespace swinq
