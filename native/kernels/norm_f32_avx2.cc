// AVX2 layernorm and softmax (row kernels). y may alias x exactly: each pass reads an element
// before writing the same index, later passes read y only.
#include <immintrin.h>

#include <cmath>

#include "swinq/kernels_f32.h"
#include "vmath_f32_avx2.h"

namespace swinq {
namespace f32 {

namespace {
// Rows of D = 16, 32, 48, 64 or 96 elements (Swin-like widths; others take the generic loop):
// the row is loaded once into registers for the mean, the variance and the output.
template <int NV>
void layernorm_rows_reg(const float* x, const float* gamma, const float* beta, float* y, float eps, int64_t r0,
                        int64_t r1) {
  const float inv_d = 1.0f / (float)(NV * 8);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * NV * 8;
    float* yr = y + r * NV * 8;
    __m256 v[NV];
    __m256 s = _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) {
      v[i] = _mm256_loadu_ps(xr + i * 8);
      s = _mm256_add_ps(s, v[i]);
    }
    const float mean = v8::hsum(s) * inv_d;
    const __m256 mv = _mm256_set1_ps(mean);
    __m256 q = _mm256_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) {
      v[i] = _mm256_sub_ps(v[i], mv);
      q = _mm256_fmadd_ps(v[i], v[i], q);
    }
    const __m256 rv = _mm256_set1_ps(1.0f / std::sqrt(v8::hsum(q) * inv_d + eps));
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) {
      __m256 o = _mm256_mul_ps(v[i], rv);
      if (gamma) o = _mm256_mul_ps(o, _mm256_loadu_ps(gamma + i * 8));
      if (beta) o = _mm256_add_ps(o, _mm256_loadu_ps(beta + i * 8));
      _mm256_storeu_ps(yr + i * 8, o);
    }
  }
}
}  // namespace

void layernorm_f32_avx2(const float* x, const float* gamma, const float* beta, float* y, int64_t D, float eps,
                        int64_t r0, int64_t r1) {
  if (D % 8 == 0) {
    switch (D / 8) {
      case 2: return layernorm_rows_reg<2>(x, gamma, beta, y, eps, r0, r1);
      case 4: return layernorm_rows_reg<4>(x, gamma, beta, y, eps, r0, r1);
      case 6: return layernorm_rows_reg<6>(x, gamma, beta, y, eps, r0, r1);
      case 8: return layernorm_rows_reg<8>(x, gamma, beta, y, eps, r0, r1);
      case 12: return layernorm_rows_reg<12>(x, gamma, beta, y, eps, r0, r1);
      default: break;
    }
  }
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= D; j += 16) {
      s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + j));
      s1 = _mm256_add_ps(s1, _mm256_loadu_ps(xr + j + 8));
    }
    for (; j + 8 <= D; j += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(xr + j));
    float sum = v8::hsum(_mm256_add_ps(s0, s1));
    for (; j < D; ++j) sum += xr[j];
    const float mean = sum / (float)D;
    const __m256 mv = _mm256_set1_ps(mean);
    __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
    for (j = 0; j + 16 <= D; j += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + j), mv);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(xr + j + 8), mv);
      q0 = _mm256_fmadd_ps(d0, d0, q0);
      q1 = _mm256_fmadd_ps(d1, d1, q1);
    }
    for (; j + 8 <= D; j += 8) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(xr + j), mv);
      q0 = _mm256_fmadd_ps(d0, d0, q0);
    }
    float sq = v8::hsum(_mm256_add_ps(q0, q1));
    for (; j < D; ++j) sq += (xr[j] - mean) * (xr[j] - mean);
    const float rstd = 1.0f / std::sqrt(sq / (float)D + eps);
    const __m256 rv = _mm256_set1_ps(rstd);
    for (j = 0; j + 8 <= D; j += 8) {
      __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), mv), rv);
      if (gamma) v = _mm256_mul_ps(v, _mm256_loadu_ps(gamma + j));
      if (beta) v = _mm256_add_ps(v, _mm256_loadu_ps(beta + j));
      _mm256_storeu_ps(yr + j, v);
    }
    for (; j < D; ++j) {
      float v = (xr[j] - mean) * rstd;
      if (gamma) v *= gamma[j];
      if (beta) v += beta[j];
      yr[j] = v;
    }
  }
}

namespace {
// Rows of at most NV·8 elements (attention rows: 49, 64): the row stays in registers, one load
// and one store per element; the tail is loaded masked (lanes = -inf) and stored via a buffer.
template <int NV>
void softmax_rows_reg(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0,
                      int64_t r1) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  const int64_t tail = D - (NV - 1) * 8;  // 1..8 elements in the last vector
  const __m256i tm = v8::tail_mask(tail);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    const float* br = bias ? bias + (r % bias_rows) * D : nullptr;
    __m256 v[NV];
    __m256 mx = ninf;
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) {
      if (i < NV - 1) {
        v[i] = _mm256_loadu_ps(xr + i * 8);
        if (br) v[i] = _mm256_add_ps(v[i], _mm256_loadu_ps(br + i * 8));
      } else {
        v[i] = _mm256_maskload_ps(xr + i * 8, tm);
        if (br) v[i] = _mm256_add_ps(v[i], _mm256_maskload_ps(br + i * 8, tm));
        v[i] = _mm256_blendv_ps(ninf, v[i], _mm256_castsi256_ps(tm));
      }
      mx = _mm256_max_ps(mx, v[i]);
    }
    const __m256 m = _mm256_set1_ps(v8::hmax(mx));
    __m256 s = _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) {
      v[i] = v8::exp(_mm256_sub_ps(v[i], m));  // masked lanes: exp(-inf) = 0
      s = _mm256_add_ps(s, v[i]);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / v8::hsum(s));
#pragma GCC unroll 8
    for (int i = 0; i < NV - 1; ++i) _mm256_storeu_ps(yr + i * 8, _mm256_mul_ps(v[i], inv));
    alignas(32) float t[8];
    _mm256_store_ps(t, _mm256_mul_ps(v[NV - 1], inv));
    for (int64_t j = 0; j < tail; ++j) yr[(NV - 1) * 8 + j] = t[j];
  }
}
}  // namespace

void softmax_f32_avx2(const float* x, const float* bias, int64_t bias_rows, float* y, int64_t D, int64_t r0,
                      int64_t r1) {
  switch ((D + 7) / 8) {
    case 1: return softmax_rows_reg<1>(x, bias, bias_rows, y, D, r0, r1);
    case 2: return softmax_rows_reg<2>(x, bias, bias_rows, y, D, r0, r1);
    case 3: return softmax_rows_reg<3>(x, bias, bias_rows, y, D, r0, r1);
    case 4: return softmax_rows_reg<4>(x, bias, bias_rows, y, D, r0, r1);
    case 5: return softmax_rows_reg<5>(x, bias, bias_rows, y, D, r0, r1);
    case 6: return softmax_rows_reg<6>(x, bias, bias_rows, y, D, r0, r1);
    case 7: return softmax_rows_reg<7>(x, bias, bias_rows, y, D, r0, r1);
    case 8: return softmax_rows_reg<8>(x, bias, bias_rows, y, D, r0, r1);
    default: break;
  }
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * D;
    float* yr = y + r * D;
    const float* br = bias ? bias + (r % bias_rows) * D : nullptr;
    const int64_t tail = D % 8, body = D - tail;
    const __m256i tm = v8::tail_mask(tail);
    __m256 mx = ninf;
    for (int64_t j = 0; j < body; j += 8) {
      __m256 v = _mm256_loadu_ps(xr + j);
      if (br) v = _mm256_add_ps(v, _mm256_loadu_ps(br + j));
      _mm256_storeu_ps(yr + j, v);
      mx = _mm256_max_ps(mx, v);
    }
    if (tail) {
      __m256 v = _mm256_maskload_ps(xr + body, tm);
      if (br) v = _mm256_add_ps(v, _mm256_maskload_ps(br + body, tm));
      _mm256_maskstore_ps(yr + body, tm, v);
      mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(tm)));
    }
    const __m256 m = _mm256_set1_ps(v8::hmax(mx));
    __m256 s = _mm256_setzero_ps();
    for (int64_t j = 0; j < body; j += 8) {
      const __m256 e = v8::exp(_mm256_sub_ps(_mm256_loadu_ps(yr + j), m));
      _mm256_storeu_ps(yr + j, e);
      s = _mm256_add_ps(s, e);
    }
    if (tail) {
      __m256 e = v8::exp(_mm256_sub_ps(_mm256_maskload_ps(yr + body, tm), m));
      e = _mm256_and_ps(e, _mm256_castsi256_ps(tm));
      _mm256_maskstore_ps(yr + body, tm, e);
      s = _mm256_add_ps(s, e);
    }
    const __m256 inv = _mm256_set1_ps(1.0f / v8::hsum(s));
    for (int64_t j = 0; j < body; j += 8) _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_loadu_ps(yr + j), inv));
    if (tail) _mm256_maskstore_ps(yr + body, tm, _mm256_mul_ps(_mm256_maskload_ps(yr + body, tm), inv));
  }
}

}  // namespace f32
}  // namespace swinq
