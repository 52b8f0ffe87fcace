// Row kernels: layernorm and softmax (scalar references). y may alias x exactly: every element
// is read before the same index is written, and later passes read y only.
#include <cmath>

#include "swinq/kernels_f32.h"

namespace swinq {
namespace f32 {

void layernorm_f32_scalar(const float* x, const float* gamma, const float* beta, float* y, int64_t D, float eps,
                          int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    float sum = 0.0f;
    for (int64_t j = 0; j < D; ++j) sum += xr[j];
    const float mean = sum / (float)D;
    float sq = 0.0f;
    for (int64_t j = 0; j < D; ++j) {
      const float d = xr[j] - mean;
      sq += d * d;
    }
    const float rstd = 1.0f / std::sqrt(sq / (float)D + eps);
    for (int64_t j = 0; j < D; ++j) {
      float v = (xr[j] - mean) * rstd;
      if (gamma) v *= gamma[j];
      if (beta) v += beta[j];
      yr[j] = v;
    }
  }
}

void softmax_f32_scalar(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0,
                        int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    const float* br = bias ? bias + (r % bias_rows) * D : nullptr;
    float m = -INFINITY;
    for (int64_t j = 0; j < D; ++j) {
      const float v = br ? xr[j] + br[j] : xr[j];
      yr[j] = v;
      m = v > m ? v : m;
    }
    // A row of all -inf (fully masked) gives NaN in ONNX too; keep exp finite for the finite case.
    float s = 0.0f;
    for (int64_t j = 0; j < D; ++j) {
      const float e = std::exp(yr[j] - m);
      yr[j] = e;
      s += e;
    }
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < D; ++j) yr[j] *= inv;
  }
}

}  // namespace f32
}  // namespace swinq
