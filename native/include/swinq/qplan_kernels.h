// Integer kernels of the plan's matmul_q, quantize and dequantize ops (native/kernels/int/
// qmatmul*.cc, qconvert*.cc). Each has a scalar reference (*_scalar) and an AVX2 form that agrees
// with it bit-exactly (native/tests/qplan_kernels_test.cc); the unsuffixed entry point dispatches.
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
void matmul_u8x8_s32_scalar(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                            int64_t M, int64_t K, int64_t N, int32_t* c);
// AVX2 4×16 tiles over k pairs (vpmaddwd); ap: M·⌈K/2⌉ int32, bp: ⌈K/2⌉·⌈N/16⌉·16 int32 scratch.
void matmul_u8x8_s32_4x16_avx2(const uint8_t* a, int32_t za, const void* b, bool b_u8, int32_t zb, bool trans_b,
                               int64_t M, int64_t K, int64_t N, int32_t* c, int32_t* ap, int32_t* bp);

// ONNX QuantizeLinear of x[i0, i1): y = saturate(round_half_even(x / scale) + zp), NaN → zp; y of type t.
void quantize_f32(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp, Isa isa);
void quantize_f32_scalar(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp);
// 8-lane blocks of an 8/16-bit y from i0 on; returns where it stopped (the caller does the tail).
int64_t quantize_f32_avx2(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp);

// y[i] = (x[i] − zp)·s for i in [i0, i1), s = scales[i mod C] when scales, else scale.
void dequantize_f32(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                    const float* scales, int64_t C, Isa isa);
void dequantize_f32_scalar(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                           const float* scales, int64_t C);
// Per-tensor 8/16-bit x, 8-lane blocks from i0 on; returns where it stopped.
int64_t dequantize_f32_avx2(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale);

}  // namespace q
}  // namespace swinq
