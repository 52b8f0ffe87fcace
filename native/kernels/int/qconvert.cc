// quantize / dequantize between f32 and integer codes: the scalar references (ONNX QuantizeLinear /
// DequantizeLinear) and the entry points; the AVX2 kernels are in qconvert_avx2.cc.
#include <cmath>
#include <limits>

#include "swinq/qplan_kernels.h"

namespace swinq {
namespace q {
namespace {

template <class T>
void quantize_range(const float* x, T* y, int64_t b, int64_t e, float scale, int32_t zp) {
  const double lo = (double)std::numeric_limits<T>::min(), hi = (double)std::numeric_limits<T>::max();
  for (int64_t i = b; i < e; ++i) {
    // ONNX QuantizeLinear: the division in float, round half to even (default FP rounding mode).
    double r = (double)std::nearbyint(x[i] / scale);
    if (r != r) r = 0;
    r += zp;
    y[i] = (T)(r < lo ? lo : r > hi ? hi : r);
  }
}

template <class T>
void dequantize_range(const T* x, float* y, int64_t b, int64_t e, int32_t zp, float scale, const float* scales,
                      int64_t C) {
  for (int64_t i = b; i < e; ++i) {
    const float v = (float)((int64_t)x[i] - zp);
    y[i] = v * (scales ? scales[i % C] : scale);
  }
}

}  // namespace

void quantize_f32_q_scalar(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp) {
  switch (t) {
    case QType::s8: return quantize_range(x, (int8_t*)y, i0, i1, scale, zp);
    case QType::u8: return quantize_range(x, (uint8_t*)y, i0, i1, scale, zp);
    case QType::s16: return quantize_range(x, (int16_t*)y, i0, i1, scale, zp);
    case QType::s32: return quantize_range(x, (int32_t*)y, i0, i1, scale, zp);
  }
}

void quantize_f32(const float* x, QType t, void* y, int64_t i0, int64_t i1, float scale, int32_t zp, Isa isa) {
  kernels(isa).quantize(x, t, y, i0, i1, scale, zp);
}

void dequantize_q_f32_scalar(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                           const float* scales, int64_t C) {
  switch (t) {
    case QType::s8: return dequantize_range((const int8_t*)x, y, i0, i1, zp, scale, scales, C);
    case QType::u8: return dequantize_range((const uint8_t*)x, y, i0, i1, zp, scale, scales, C);
    case QType::s16: return dequantize_range((const int16_t*)x, y, i0, i1, zp, scale, scales, C);
    case QType::s32: return dequantize_range((const int32_t*)x, y, i0, i1, zp, scale, scales, C);
  }
}

void dequantize_f32(QType t, const void* x, float* y, int64_t i0, int64_t i1, int32_t zp, float scale,
                    const float* scales, int64_t C, Isa isa) {
  kernels(isa).dequantize(t, x, y, i0, i1, zp, scale, scales, C);
}

}  // namespace q
}  // namespace swinq
