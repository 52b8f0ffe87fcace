// AVX2 unary/binary fast paths. Ops without a vector form here call the scalar reference, so
// every op works on both kernel sets. Tails go through the scalar kernels (same formulas for the
// exact ops; the transcendental ones agree with std:: to ~1e-7 absolute).
#include <immintrin.h>

#include "swinq/kernels_f32.h"
#include "vmath_f32_avx2.h"

namespace swinq {
namespace f32 {

namespace {
template <class F>
inline void map8(const float* x, float* y, int64_t n, F f, int op, float p0, float p1) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {  // tail through the vector path too, so results do not depend on the position
    const __m256i m = v8::tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
  (void)op, (void)p0, (void)p1;
}
}  // namespace

void unary_f32_avx2(int op, float p0, float p1, const float* x, float* y, int64_t n) {
  const __m256 zero = _mm256_setzero_ps(), P0 = _mm256_set1_ps(p0), P1 = _mm256_set1_ps(p1);
  switch (op) {
    case u_relu: return map8(x, y, n, [&](__m256 v) { return _mm256_max_ps(v, zero); }, op, p0, p1);
    case u_gelu_erf: return map8(x, y, n, [](__m256 v) { return v8::gelu_erf(v); }, op, p0, p1);
    case u_gelu_tanh: return map8(x, y, n, [](__m256 v) { return v8::gelu_tanh(v); }, op, p0, p1);
    case u_sigmoid: return map8(x, y, n, [](__m256 v) { return v8::sigmoid(v); }, op, p0, p1);
    case u_exp: return map8(x, y, n, [](__m256 v) { return v8::exp(v); }, op, p0, p1);
    case u_tanh: return map8(x, y, n, [](__m256 v) { return v8::tanh(v); }, op, p0, p1);
    case u_erf: return map8(x, y, n, [](__m256 v) { return v8::erf(v); }, op, p0, p1);
    case u_silu: return map8(x, y, n, [](__m256 v) { return _mm256_mul_ps(v, v8::sigmoid(v)); }, op, p0, p1);
    case u_neg: return map8(x, y, n, [&](__m256 v) { return _mm256_sub_ps(zero, v); }, op, p0, p1);
    case u_abs:
      return map8(x, y, n, [](__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }, op, p0, p1);
    case u_clip: return map8(x, y, n, [&](__m256 v) { return _mm256_min_ps(_mm256_max_ps(v, P0), P1); }, op, p0, p1);
    case u_scale_shift: return map8(x, y, n, [&](__m256 v) { return _mm256_fmadd_ps(v, P0, P1); }, op, p0, p1);
    case u_hardswish:
      return map8(x, y, n, [&](__m256 v) {
        const __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(3.0f)), zero), _mm256_set1_ps(6.0f));
        return _mm256_mul_ps(_mm256_mul_ps(v, t), _mm256_set1_ps(1.0f / 6.0f));
      }, op, p0, p1);
    default: return unary_f32_scalar(op, p0, p1, x, y, n);
  }
}

namespace {
template <class F>
inline void zip8(const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n, F f) {
  int64_t i = 0;
  if (as == 1 && bs == 1) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    if (i < n) {
      const __m256i m = v8::tail_mask(n - i);
      _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m)));
    }
  } else if (as == 1 && bs == 0) {
    const __m256 bv = _mm256_set1_ps(*b);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), bv));
    if (i < n) {
      const __m256i m = v8::tail_mask(n - i);
      _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(a + i, m), bv));
    }
  } else {  // as == 0, bs == 1
    const __m256 av = _mm256_set1_ps(*a);
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(av, _mm256_loadu_ps(b + i)));
    if (i < n) {
      const __m256i m = v8::tail_mask(n - i);
      _mm256_maskstore_ps(y + i, m, f(av, _mm256_maskload_ps(b + i, m)));
    }
  }
}
}  // namespace

void binary_f32_avx2(int op, const float* a, int64_t as, const float* b, int64_t bs, float* y, int64_t n) {
  const bool fast = (as == 1 && (bs == 0 || bs == 1)) || (as == 0 && bs == 1);
  if (!fast || n < 8) return binary_f32_scalar(op, a, as, b, bs, y, n);
  switch (op) {
    case b_add: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_add_ps(p, q); });
    case b_sub: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_sub_ps(p, q); });
    case b_mul: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_mul_ps(p, q); });
    case b_div: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_div_ps(p, q); });
    // max/min: a > b ? a : b, as the scalar reference (NaN in a gives b)
    case b_max: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_max_ps(p, q); });
    case b_min: return zip8(a, as, b, bs, y, n, [](__m256 p, __m256 q) { return _mm256_min_ps(p, q); });
    default: return binary_f32_scalar(op, a, as, b, bs, y, n);
  }
}

}  // namespace f32
}  // namespace swinq
