// Elementwise fp32 kernels (scalar references), reduce, argmax and index_map.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "swinq/kernels_f32.h"

namespace swinq {
namespace f32 {

static inline float unary_one(int op, float p0, float p1, float x) {
  switch (op) {
    case u_relu: return x > 0.0f ? x : 0.0f;
    case u_gelu_erf: return gelu_erf(x);
    case u_gelu_tanh: return gelu_tanh(x);
    case u_erf: return std::erf(x);
    case u_sigmoid: return 1.0f / (1.0f + std::exp(-x));
    case u_tanh: return std::tanh(x);
    case u_exp: return std::exp(x);
    case u_log: return std::log(x);
    case u_sqrt: return std::sqrt(x);
    case u_neg: return -x;
    case u_abs: return std::fabs(x);
    case u_reciprocal: return 1.0f / x;
    case u_silu: return x / (1.0f + std::exp(-x));
    case u_clip: return std::min(std::max(x, p0), p1);
    case u_leaky_relu: return x < 0.0f ? p0 * x : x;
    case u_hardswish: return x * std::min(std::max(x + 3.0f, 0.0f), 6.0f) * (1.0f / 6.0f);
    case u_hardsigmoid: return std::min(std::max(p0 * x + p1, 0.0f), 1.0f);
    case u_softplus: return x > 20.0f ? x : std::log1p(std::exp(x));
    case u_mish: return x * std::tanh(x > 20.0f ? x : std::log1p(std::exp(x)));
    case u_elu: return x < 0.0f ? p0 * (std::exp(x) - 1.0f) : x;
    case u_floor: return std::floor(x);
    case u_ceil: return std::ceil(x);
    case u_round: return std::nearbyint(x);  // default rounding mode: half to even
    case u_scale_shift: return p0 * x + p1;
    default: return x;
  }
}

void unary_f32_scalar(int op, float p0, float p1, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = unary_one(op, p0, p1, x[i]);
}

float binary_one(int op, float a, float b) {
  switch (op) {
    case b_add: return a + b;
    case b_sub: return a - b;
    case b_mul: return a * b;
    case b_div: return a / b;
    case b_pow: return std::pow(a, b);
    case b_max: return a > b ? a : b;
    case b_min: return a < b ? a : b;
    default: return 0.0f;
  }
}

template <int OP>
static void binary_loop(const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = binary_one(OP, a[i * as], b[i * bs]);
}

void binary_f32_scalar(int op, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n) {
  switch (op) {
    case b_add: return binary_loop<b_add>(a, as, b, bs, y, n);
    case b_sub: return binary_loop<b_sub>(a, as, b, bs, y, n);
    case b_mul: return binary_loop<b_mul>(a, as, b, bs, y, n);
    case b_div: return binary_loop<b_div>(a, as, b, bs, y, n);
    case b_pow: return binary_loop<b_pow>(a, as, b, bs, y, n);
    case b_max: return binary_loop<b_max>(a, as, b, bs, y, n);
    case b_min: return binary_loop<b_min>(a, as, b, bs, y, n);
  }
}

void reduce_f32(int op, const float* x, float* y, int64_t outer, int64_t red, int64_t inner, int64_t o0, int64_t o1) {
  for (int64_t o = o0; o < o1; ++o) {
    const float* xo = x + o * red * inner;
    float* yo = y + o * inner;
    for (int64_t i = 0; i < inner; ++i) yo[i] = xo[i];
    for (int64_t r = 1; r < red; ++r) {
      const float* xr = xo + r * inner;
      switch (op) {
        case r_mean: case r_sum: for (int64_t i = 0; i < inner; ++i) yo[i] += xr[i]; break;
        case r_max: for (int64_t i = 0; i < inner; ++i) yo[i] = xr[i] > yo[i] ? xr[i] : yo[i]; break;
        case r_min: for (int64_t i = 0; i < inner; ++i) yo[i] = xr[i] < yo[i] ? xr[i] : yo[i]; break;
      }
    }
    if (op == r_mean) {
      const float inv = 1.0f / (float)red;
      for (int64_t i = 0; i < inner; ++i) yo[i] *= inv;
    }
  }
}

void argmax_f32(const float* x, int64_t* y, int64_t D, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    int64_t best = 0;
    for (int64_t j = 1; j < D; ++j)
      if (xr[j] > xr[best]) best = j;
    y[r] = best;
  }
}

}  // namespace f32

void index_map_scalar(const uint8_t* x, const int32_t* idx, uint8_t* y, int64_t esize, int64_t block,
                      int64_t x_item, int64_t y_item, int64_t i0, int64_t i1) {
  const int64_t rows = y_item / block;
  const size_t bytes = (size_t)(block * esize);
  int64_t t = i0 / rows, r = i0 % rows;
  for (int64_t i = i0; i < i1;) {
    const int64_t r_end = std::min(rows, r + (i1 - i));
    const uint8_t* xt = x + t * x_item * esize;
    uint8_t* yt = y + t * y_item * esize;
    if (esize == 4 && block == 1) {  // the common element-wise gather (transposes): no memcpy calls
      const uint32_t* xf = reinterpret_cast<const uint32_t*>(xt);
      uint32_t* yf = reinterpret_cast<uint32_t*>(yt);
      for (int64_t q = r; q < r_end; ++q) yf[q] = idx[q] < 0 ? 0u : xf[idx[q]];
    } else {
      for (int64_t q = r; q < r_end; ++q) {
        uint8_t* dst = yt + q * bytes;
        if (idx[q] < 0) std::memset(dst, 0, bytes);
        else std::memcpy(dst, xt + (int64_t)idx[q] * esize, bytes);
      }
    }
    i += r_end - r;
    r = 0;
    ++t;
  }
}

}  // namespace swinq
