// Integer kernels of the plan's matmul_q, quantize and dequantize ops (native/kernels/int/
// qmatmul*.cc, qconvert*.cc), and the one integer dispatch: q::Kernels, a table per Isa of every
// integer kernel (these and the ones behind qkernels.h, declared in kernels/int/qinternal.h).
// Each kernel has a scalar reference (*_scalar) and an AVX2 form that agrees with it bit-exactly
// (native/tests/qplan_kernels_test.cc, qkernels_test.cc); the unsuffixed entry point validates and
// calls through the table.
#pragma once
#include <cstdint>

#include "swinq/cpu.h"
#include "swinq/qkernels.h"

namespace swinq {
namespace q {

// C[m,n] = Σ_k (a[m,k] − za)(op(b)[k,n] − zb) as int32 for one batch item; b is [K,N] (ldb = N)
// or, when trans_b, [N,K] (ldb = K). b_u8 selects u8 vs s8 b. K ≤ 32768 so no sum can overflow.
void matmul_u8x8_s32(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b, int64_t M,
                     int64_t K, int64_t N, int32_t* c, Isa isa);
// ap, bp: the scratch the AVX2 form needs (unused here, may be null).
void matmul_u8x8_s32_scalar(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                            int64_t M, int64_t K, int64_t N, int32_t* c, int32_t* ap = nullptr, int32_t* bp = nullptr);
// AVX2 4×16 tiles over k pairs (vpmaddwd); ap: M·⌈K/2⌉ int32, bp: ⌈K/2⌉·⌈N/16⌉·16 int32 scratch.
void matmul_u8x8_s32_4x16_avx2(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                               int64_t M, int64_t K, int64_t N, int32_t* c, int32_t* ap, int32_t* bp);

// ONNX QuantizeLinear of x[i0, i1): y = saturate(round_half_even(x / scale) + zp), NaN → zp; y of type t.
void quantize_f32(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp, Isa isa);
void quantize_f32_q_scalar(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp);
// 8-lane blocks of an 8/16-bit y; s32 and the tail (< 8) by the scalar kernel.
void quantize_f32_q_avx2(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp);

// y[i] = (x[i] − zp)·s for i in [i0, i1), s = scales[i mod C] when scales, else scale.
void dequantize_f32(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                    const float* scales, int64_t C, Isa isa);
void dequantize_q_f32_scalar(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                             const float* scales, int64_t C);
// Per-tensor 8/16-bit x in 8-lane blocks; per-channel scales, s32 and the tail by the scalar kernel.
void dequantize_q_f32_avx2(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                           const float* scales, int64_t C);

namespace detail {
struct GemmCtx;  // kernels/int/qinternal.h
}

// The one integer dispatch: the kernel table of an Isa (native/kernels/kernels_q.cc, the only
// place an integer kernel is picked). Names by contract: docs/architecture.md (kernels).
struct Kernels {
  void (*requantize)(const int32_t* x, int64_t rows, int64_t cols, const Requant& rq, QType out, void* y);
  void (*gemm)(const detail::GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
  void (*gemm_sparse)(const detail::GemmCtx& c, int64_t m0, int64_t m1, int64_t p0, int64_t p1);
  int64_t (*count_nonzero)(const uint8_t* a, int64_t K);  // the sparse path's density probe
  double (*sparse_max_density)(const PackedB& B);          // and the density it pays below
  void (*matmul)(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b, int64_t M,
                 int64_t K, int64_t N, int32_t* c, int32_t* ap, int32_t* bp);
  void (*quantize)(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp);
  void (*dequantize)(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                     const float* scales, int64_t C);
  void (*softmax)(const int32_t* x, int64_t rows, int64_t D, const int32_t* table, int64_t table_rows,
                  const SoftmaxParams& p, uint8_t* y);
  void (*attention)(const uint8_t* qkv, const AttentionParams& p, int64_t t, void* scratch, uint8_t* y);
  void (*layernorm)(QType in, const void* x, int64_t rows, const LayerNormParams& p, void* y, const int32_t* y_rows);
  void (*gelu_ibert)(const int8_t* x, int64_t n, const GeluParams& p, int32_t* y);
  void (*lookup)(const uint8_t* x, int64_t n, const uint8_t* table, uint8_t* y);
  void (*relu)(QType t, const void* x, int64_t n, int32_t zero_point, void* y);
  void (*add)(QType ta, const void* a, QType tb, const void* b, int64_t n, const AddParams& p, QType ty, void* y);
  void (*avgpool)(QType in, const void* x, int64_t batch, int64_t T, int64_t C, int32_t in_zp, const Requant& rq,
                  QType out, void* y);
  void (*argmax)(QType in, const void* x, int64_t rows, int64_t D, int64_t* y);
};
// Throws std::invalid_argument for Isa::avx2 on a CPU without AVX2+FMA (the kernels take an
// explicit Isa, so a test or caller may ask for one set_isa() would refuse).
const Kernels& kernels(Isa isa);

}  // namespace q
}  // namespace swinq
