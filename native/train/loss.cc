// Losses: mean over rows, gradients w.r.t. the logits (double accumulation per row).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "swinq/train.h"

namespace swinq {
namespace train {

static void log_softmax(const float* x, int64_t C, float T, std::vector<double>& out) {
  double mx = x[0] / T;
  for (int64_t c = 1; c < C; ++c) mx = std::max(mx, (double)x[c] / T);
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(x[c] / T - mx);
  const double lse = mx + std::log(s);
  for (int64_t c = 0; c < C; ++c) out[c] = x[c] / T - lse;
}

double cross_entropy(const float* logits, const int32_t* labels, int64_t B, int64_t C, float smoothing, float* d) {
  if (B <= 0 || C <= 0) throw std::invalid_argument("cross_entropy: batch and classes must be positive");
  if (!(smoothing >= 0 && smoothing < 1)) throw std::invalid_argument("cross_entropy: label smoothing must be in [0, 1)");
  std::vector<double> lp((size_t)C);
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int32_t y = labels[b];
    if (y < 0 || y >= C)
      throw std::invalid_argument("cross_entropy: labels[" + std::to_string(b) + "] = " + std::to_string(y) + " is not a class 0.." + std::to_string(C - 1));
    log_softmax(logits + b * C, C, 1.f, lp);
    for (int64_t c = 0; c < C; ++c) {
      const double t = (c == y ? 1.0 - smoothing : 0.0) + smoothing / C;
      total -= t * lp[c];
      if (d) d[b * C + c] = (float)((std::exp(lp[c]) - t) / B);
    }
  }
  return total / B;
}

double kl_div(const float* s, const float* t, int64_t B, int64_t C, float T, float* d) {
  if (B <= 0 || C <= 0) throw std::invalid_argument("kl_div: batch and classes must be positive");
  if (!(T > 0) || !std::isfinite(T)) throw std::invalid_argument("kl_div: temperature must be positive");
  std::vector<double> ls((size_t)C), lt((size_t)C);
  double total = 0;
  for (int64_t b = 0; b < B; ++b) {
    log_softmax(s + b * C, C, T, ls);
    log_softmax(t + b * C, C, T, lt);
    for (int64_t c = 0; c < C; ++c) {
      const double pt = std::exp(lt[c]);
      total += pt * (lt[c] - ls[c]);
      // d/ds (T²·KL) = T·(softmax(s/T) - softmax(t/T))
      if (d) d[b * C + c] = (float)(T * (std::exp(ls[c]) - pt) / B);
    }
  }
  return total * T * T / B;
}

}  // namespace train
}  // namespace swinq
