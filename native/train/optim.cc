// AdamW (decoupled weight decay), warm-up + cosine schedule, gradient-norm helpers.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "swinq/train.h"

namespace swinq {
namespace train {

void adamw_step(const AdamW& o, int64_t step, float* p, const float* g, float* m, float* v, size_t n) {
  if (step < 1) throw std::invalid_argument("adamw: step must be ≥ 1");
  const double bc1 = 1.0 - std::pow((double)o.beta1, (double)step);
  const double bc2 = 1.0 - std::pow((double)o.beta2, (double)step);
  const float step_size = (float)(o.lr / bc1);
  const float inv_bc2 = (float)(1.0 / std::sqrt(bc2));
  const float decay = 1.f - o.lr * o.weight_decay;
  for (size_t i = 0; i < n; ++i) {
    m[i] = o.beta1 * m[i] + (1.f - o.beta1) * g[i];
    v[i] = o.beta2 * v[i] + (1.f - o.beta2) * g[i] * g[i];
    p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_bc2 + o.eps);
  }
}

double lr_at(int64_t step, int64_t total, int64_t warmup, double base, double min_lr) {
  if (warmup > 0 && step < warmup) return base * (double)(step + 1) / (double)warmup;
  const int64_t span = std::max<int64_t>(1, total - warmup);
  const double t = std::min(1.0, (double)(step - warmup) / (double)span);
  return min_lr + 0.5 * (base - min_lr) * (1.0 + std::cos(M_PI * t));
}

double sum_squares(const float* g, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += (double)g[i] * g[i];
  return s;
}

void scale(float* g, size_t n, float s) {
  for (size_t i = 0; i < n; ++i) g[i] *= s;
}

}  // namespace train
}  // namespace swinq
