// Few-bit backward: built-in functions, quadrature, the exact DP solver, polish and table cache.
#include "swinq/fewbit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>

namespace swinq {
namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}
double softplus1(double x) { return std::log1p(std::exp(-std::fabs(x))) + std::max(x, 0.0); }

struct Params { double p0, p1; };

// One built-in function: f, f' and the points where f' (or f'') jumps, so quadrature splits there.
struct FnDef {
  const char* name;
  bool exact;
  double (*f)(double, const Params&);
  double (*df)(double, const Params&);
  Params defaults;
};

double gelu_f(double x, const Params&) { return x * 0.5 * std::erfc(-x * kInvSqrt2); }
double gelu_df(double x, const Params&) {
  return 0.5 * std::erfc(-x * kInvSqrt2) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x);
}
constexpr double kGeluC = 0.79788456080286535588;  // sqrt(2/pi)
double gelu_tanh_f(double x, const Params&) {
  return 0.5 * x * (1.0 + std::tanh(kGeluC * (x + 0.044715 * x * x * x)));
}
double gelu_tanh_df(double x, const Params&) {
  const double t = std::tanh(kGeluC * (x + 0.044715 * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * kGeluC * (1.0 + 3.0 * 0.044715 * x * x);
}
double silu_f(double x, const Params&) { return x * sigmoid(x); }
double silu_df(double x, const Params&) {
  const double s = sigmoid(x);
  return s * (1.0 + x * (1.0 - s));
}
double mish_f(double x, const Params&) { return x * std::tanh(softplus1(x)); }
double mish_df(double x, const Params&) {
  const double t = std::tanh(softplus1(x));
  return t + x * (1.0 - t * t) * sigmoid(x);
}
double elu_f(double x, const Params& p) { return x > 0 ? x : p.p0 * std::expm1(x); }
double elu_df(double x, const Params& p) { return x > 0 ? 1.0 : p.p0 * std::exp(x); }
double celu_f(double x, const Params& p) { return x > 0 ? x : p.p0 * std::expm1(x / p.p0); }
double celu_df(double x, const Params& p) { return x > 0 ? 1.0 : std::exp(x / p.p0); }
double selu_f(double x, const Params&) { return kSeluScale * (x > 0 ? x : kSeluAlpha * std::expm1(x)); }
double selu_df(double x, const Params&) { return x > 0 ? kSeluScale : kSeluScale * kSeluAlpha * std::exp(x); }
// PyTorch softplus: linear once beta*x > threshold.
double softplus_f(double x, const Params& p) { return p.p0 * x > p.p1 ? x : softplus1(p.p0 * x) / p.p0; }
double softplus_df(double x, const Params& p) { return p.p0 * x > p.p1 ? 1.0 : sigmoid(p.p0 * x); }
double softsign_f(double x, const Params&) { return x / (1.0 + std::fabs(x)); }
double softsign_df(double x, const Params&) {
  const double d = 1.0 + std::fabs(x);
  return 1.0 / (d * d);
}
double sigmoid_f(double x, const Params&) { return sigmoid(x); }
double sigmoid_df(double x, const Params&) {
  const double s = sigmoid(x);
  return s * (1.0 - s);
}
double tanh_f(double x, const Params&) { return std::tanh(x); }
double tanh_df(double x, const Params&) {
  const double t = std::tanh(x);
  return 1.0 - t * t;
}
double tanhshrink_f(double x, const Params&) { return x - std::tanh(x); }
double tanhshrink_df(double x, const Params&) {
  const double t = std::tanh(x);
  return t * t;
}
double logsigmoid_f(double x, const Params&) { return -softplus1(-x); }
double logsigmoid_df(double x, const Params&) { return sigmoid(-x); }
double hardswish_f(double x, const Params&) { return x <= -3 ? 0.0 : x >= 3 ? x : x * (x + 3.0) / 6.0; }
double hardswish_df(double x, const Params&) { return x < -3 ? 0.0 : x > 3 ? 1.0 : (2.0 * x + 3.0) / 6.0; }
// Exact (piecewise-constant f'). NaN stays NaN in f, like PyTorch.
double relu_f(double x, const Params&) { return x > 0 ? x : (x <= 0 ? 0.0 : x); }
double relu_df(double x, const Params&) { return x > 0 ? 1.0 : 0.0; }
double leaky_f(double x, const Params& p) { return x > 0 ? x : p.p0 * x; }
double leaky_df(double x, const Params& p) { return x > 0 ? 1.0 : p.p0; }
double clamp_nan(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }
double relu6_f(double x, const Params&) { return clamp_nan(x, 0.0, 6.0); }
double relu6_df(double x, const Params&) { return x > 0 && x < 6 ? 1.0 : 0.0; }
double hardtanh_f(double x, const Params& p) { return clamp_nan(x, p.p0, p.p1); }
double hardtanh_df(double x, const Params& p) { return x > p.p0 && x < p.p1 ? 1.0 : 0.0; }
double hardsigmoid_f(double x, const Params&) { return clamp_nan(x / 6.0 + 0.5, 0.0, 1.0); }
double hardsigmoid_df(double x, const Params&) { return x > -3 && x < 3 ? 1.0 / 6.0 : 0.0; }
double threshold_f(double x, const Params& p) { return x <= p.p0 ? p.p1 : x; }
double threshold_df(double x, const Params& p) { return x > p.p0 ? 1.0 : 0.0; }

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const FnDef kFns[] = {
    {"gelu", false, gelu_f, gelu_df, {kNaN, kNaN}},
    {"gelu_tanh", false, gelu_tanh_f, gelu_tanh_df, {kNaN, kNaN}},
    {"silu", false, silu_f, silu_df, {kNaN, kNaN}},
    {"mish", false, mish_f, mish_df, {kNaN, kNaN}},
    {"elu", false, elu_f, elu_df, {1.0, kNaN}},
    {"celu", false, celu_f, celu_df, {1.0, kNaN}},
    {"selu", false, selu_f, selu_df, {kNaN, kNaN}},
    {"softplus", false, softplus_f, softplus_df, {1.0, 20.0}},
    {"softsign", false, softsign_f, softsign_df, {kNaN, kNaN}},
    {"sigmoid", false, sigmoid_f, sigmoid_df, {kNaN, kNaN}},
    {"tanh", false, tanh_f, tanh_df, {kNaN, kNaN}},
    {"tanhshrink", false, tanhshrink_f, tanhshrink_df, {kNaN, kNaN}},
    {"logsigmoid", false, logsigmoid_f, logsigmoid_df, {kNaN, kNaN}},
    {"hardswish", false, hardswish_f, hardswish_df, {kNaN, kNaN}},
    {"relu", true, relu_f, relu_df, {kNaN, kNaN}},
    {"leaky_relu", true, leaky_f, leaky_df, {0.01, kNaN}},
    {"relu6", true, relu6_f, relu6_df, {kNaN, kNaN}},
    {"hardtanh", true, hardtanh_f, hardtanh_df, {-1.0, 1.0}},
    {"hardsigmoid", true, hardsigmoid_f, hardsigmoid_df, {kNaN, kNaN}},
    {"threshold", true, threshold_f, threshold_df, {0.0, 0.0}},
};

const FnDef* find_fn(const std::string& name) {
  for (const FnDef& d : kFns)
    if (name == d.name) return &d;
  return nullptr;
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Resolved function: definition, parameters, kinks of f'.
struct Fn {
  const FnDef* def;
  Params p;
  std::vector<double> kinks;
  double f(double x) const { return def->f(x, p); }
  double df(double x) const { return def->df(x, p); }
};

Fn resolve_fn(const std::string& name, const FewbitOptions& opt) {
  const FnDef* d = find_fn(name);
  if (!d) {
    std::string list;
    for (const FnDef& e : kFns) list += (list.empty() ? "" : ", ") + std::string(e.name);
    throw std::invalid_argument("fewbit: unknown function '" + name + "' (expected one of " + list + ")");
  }
  Fn fn{d, d->defaults, {}};
  if (!std::isnan(opt.p0)) fn.p.p0 = opt.p0;
  if (!std::isnan(opt.p1)) fn.p.p1 = opt.p1;
  const std::string n = name;
  auto need_finite = [&](double v, const char* what) {
    if (!std::isfinite(v)) throw std::invalid_argument("fewbit: " + n + " parameter " + what + " must be finite");
  };
  if (n == "elu" || n == "celu") {
    need_finite(fn.p.p0, "alpha");
    if (n == "celu" && !(fn.p.p0 > 0)) throw std::invalid_argument("fewbit: celu alpha must be > 0, got " + fmt(fn.p.p0));
    fn.kinks = {0.0};
  } else if (n == "selu" || n == "softsign") {
    fn.kinks = {0.0};
  } else if (n == "softplus") {
    need_finite(fn.p.p0, "beta");
    need_finite(fn.p.p1, "threshold");
    if (!(fn.p.p0 > 0)) throw std::invalid_argument("fewbit: softplus beta must be > 0, got " + fmt(fn.p.p0));
    fn.kinks = {fn.p.p1 / fn.p.p0};
  } else if (n == "hardswish" || n == "hardsigmoid") {
    fn.kinks = {-3.0, 3.0};
  } else if (n == "relu" || n == "leaky_relu") {
    if (n == "leaky_relu") need_finite(fn.p.p0, "negative_slope");
    fn.kinks = {0.0};
  } else if (n == "relu6") {
    fn.kinks = {0.0, 6.0};
  } else if (n == "hardtanh") {
    need_finite(fn.p.p0, "min_val");
    need_finite(fn.p.p1, "max_val");
    if (!(fn.p.p0 < fn.p.p1))
      throw std::invalid_argument("fewbit: hardtanh min_val must be < max_val, got " + fmt(fn.p.p0) + ", " + fmt(fn.p.p1));
    fn.kinks = {fn.p.p0, fn.p.p1};
  } else if (n == "threshold") {
    need_finite(fn.p.p0, "threshold");
    need_finite(fn.p.p1, "value");
    fn.kinks = {fn.p.p0};
  }
  return fn;
}

// 8-point Gauss-Legendre on [-1, 1]: exact for degree 15, so a smooth integrand over a grid cell
// is integrated to round-off; kinks are made cell-piece ends so the integrand is smooth on each piece.
const double kGlX[8] = {-0.96028985649753623168, -0.79666647741362673959, -0.52553240991632898582,
                        -0.18343464249564980494, 0.18343464249564980494, 0.52553240991632898582,
                        0.79666647741362673959, 0.96028985649753623168};
const double kGlW[8] = {0.10122853629037625915, 0.22238103445337447054, 0.31370664587788728734,
                        0.36268378337836198297, 0.36268378337836198297, 0.31370664587788728734,
                        0.22238103445337447054, 0.10122853629037625915};

struct Moments {
  double w = 0, fw = 0, ffw = 0;  // ∫w, ∫f'w, ∫f'^2 w
  double abs = 0;                  // ∫w(1 + |f'| + f'^2): the scale of the quadrature error (gauss() only)
};

// The objective's measure: weight w and the fn, over [lo, hi]; integrals between arbitrary points.
class Problem {
 public:
  Problem(const Fn& fn, const FewbitOptions& opt, double lo, double hi, int n) : fn_(fn), opt_(opt), lo_(lo), hi_(hi), n_(n) {
    breaks_ = fn.kinks;
    if (opt.weight == FewbitWeight::histogram) {
      breaks_.insert(breaks_.end(), opt.hist_edges.begin(), opt.hist_edges.end());
      if (opt.fold)
        for (double e : opt.hist_edges) breaks_.push_back(-e);
      double total = 0;
      for (double c : opt.hist_counts) total += c;
      dens_.resize(opt.hist_counts.size());
      for (size_t b = 0; b < dens_.size(); ++b)
        dens_[b] = opt.hist_counts[b] / (total * (opt.hist_edges[b + 1] - opt.hist_edges[b]));
    }
    std::sort(breaks_.begin(), breaks_.end());
    breaks_.erase(std::remove_if(breaks_.begin(), breaks_.end(), [&](double b) { return !(b > lo_ && b < hi_); }), breaks_.end());
    breaks_.erase(std::unique(breaks_.begin(), breaks_.end()), breaks_.end());
    // Prefix moments at the grid points, accumulated in long double.
    W_.assign(n + 1, 0.0);
    F_.assign(n + 1, 0.0);
    S_.assign(n + 1, 0.0);
    long double w = 0, fw = 0, ffw = 0;
    for (int j = 0; j < n; ++j) {
      Moments m = integrate(x(j), x(j + 1));
      w += m.w;
      fw += m.fw;
      ffw += m.ffw;
      W_[j + 1] = (double)w;
      F_[j + 1] = (double)fw;
      S_[j + 1] = (double)ffw;
    }
  }

  double x(int j) const { return j == n_ ? hi_ : lo_ + (hi_ - lo_) * ((double)j / n_); }
  int n() const { return n_; }
  const Fn& fn() const { return fn_; }

  // Cost of one grid interval (i, j) with its optimal level: ∫f'^2 w - (∫f'w)^2 / ∫w.
  double grid_cost(int i, int j) const {
    const double dw = W_[j] - W_[i];
    if (!(dw > 0)) return 0.0;
    const double df = F_[j] - F_[i];
    const double c = (S_[j] - S_[i]) - df * df / dw;
    return c > 0 ? c : 0.0;
  }

  // Moments from lo to an arbitrary point t (clamped to the domain).
  Moments prefix(double t) const {
    if (!(t > lo_)) return {};
    if (t >= hi_) return {W_[n_], F_[n_], S_[n_]};
    int j = (int)std::floor((t - lo_) / (hi_ - lo_) * n_);
    j = std::min(std::max(j, 0), n_ - 1);
    while (j > 0 && x(j) > t) --j;
    while (j + 1 < n_ && x(j + 1) <= t) ++j;
    Moments m = integrate(x(j), t);
    return {W_[j] + m.w, F_[j] + m.fw, S_[j] + m.ffw};
  }

  Moments between(double a, double b) const {
    Moments pa = prefix(a), pb = prefix(b);
    return {pb.w - pa.w, pb.fw - pa.fw, pb.ffw - pa.ffw};
  }

  // Optimal level on [a, b] and its cost. A zero-weight interval gets f' at its middle (cost 0).
  void best_level(double a, double b, double* level, double* cost) const {
    Moments m = between(a, b);
    if (!(m.w > 0)) {
      *level = fn_.df(0.5 * (a + b));
      *cost = 0;
      return;
    }
    *level = m.fw / m.w;
    const double c = m.ffw - m.fw * m.fw / m.w;
    *cost = c > 0 ? c : 0.0;
  }

 private:
  // Folded: the measure of |x| is w(t) + w(-t) on t >= 0 (f' is even, so J is unchanged).
  double weight(double t, double piece_mid) const {
    return opt_.fold ? base_weight(t, piece_mid) + base_weight(-t, -piece_mid) : base_weight(t, piece_mid);
  }
  double base_weight(double t, double piece_mid) const {
    switch (opt_.weight) {
      case FewbitWeight::uniform: return 1.0;
      case FewbitWeight::normal: return kInvSqrt2Pi * std::exp(-0.5 * t * t);
      case FewbitWeight::histogram: {
        const std::vector<double>& e = opt_.hist_edges;
        // The piece lies inside one bin (edges are breaks): find it by the piece's middle.
        if (piece_mid < e.front() || piece_mid >= e.back()) return 0.0;
        size_t b = std::upper_bound(e.begin(), e.end(), piece_mid) - e.begin() - 1;
        return dens_[std::min(b, dens_.size() - 1)];
      }
    }
    return 0.0;
  }
  // Adaptive: a piece is accepted when GL on it agrees with GL on its halves, so a wide cell
  // (large domain, coarse grid) still resolves f' features much narrower than the cell.
  Moments integrate_piece(double a, double b, int depth = 0) const {
    const Moments whole = gauss(a, b);
    if (!(b > a)) return whole;
    const double mid = 0.5 * (a + b);
    const Moments l = gauss(a, mid), r = gauss(mid, b);
    const Moments halves{l.w + r.w, l.fw + r.fw, l.ffw + r.ffw, 0};
    // Tolerance against ∫ w (1 + |f'| + f'^2), so cancelling signs of f' cannot demand the impossible.
    const double diff = std::fabs(whole.w - halves.w) + std::fabs(whole.fw - halves.fw) + std::fabs(whole.ffw - halves.ffw);
    if (depth >= 12 || diff <= 1e-12 * (l.abs + r.abs) + 1e-300) return halves;
    const Moments lm = integrate_piece(a, mid, depth + 1), rm = integrate_piece(mid, b, depth + 1);
    return {lm.w + rm.w, lm.fw + rm.fw, lm.ffw + rm.ffw, 0};
  }
  Moments gauss(double a, double b) const {
    Moments m;
    if (!(b > a)) return m;
    const double h = 0.5 * (b - a), c = 0.5 * (a + b);
    for (int q = 0; q < 8; ++q) {
      const double t = c + h * kGlX[q];
      const double w = kGlW[q] * h * weight(t, c);
      const double d = fn_.df(t);
      m.w += w;
      m.fw += w * d;
      m.ffw += w * d * d;
      m.abs += w * (1.0 + std::fabs(d) + d * d);
    }
    return m;
  }
  Moments integrate(double a, double b) const {
    Moments m;
    double s = a;
    auto it = std::upper_bound(breaks_.begin(), breaks_.end(), a);
    for (; it != breaks_.end() && *it < b; ++it) {
      Moments p = integrate_piece(s, *it);
      m.w += p.w, m.fw += p.fw, m.ffw += p.ffw;
      s = *it;
    }
    Moments p = integrate_piece(s, b);
    m.w += p.w, m.fw += p.fw, m.ffw += p.ffw;
    return m;
  }

  Fn fn_;
  FewbitOptions opt_;
  double lo_, hi_;
  int n_;
  std::vector<double> breaks_, dens_;
  std::vector<double> W_, F_, S_;
};

void resolve_domain(const FewbitOptions& opt, double* lo, double* hi) {
  if (opt.weight == FewbitWeight::histogram) {
    const auto& e = opt.hist_edges;
    const auto& c = opt.hist_counts;
    if (e.size() < 2) throw std::invalid_argument("fewbit: histogram edges need at least 2 values, got " + std::to_string(e.size()));
    if (c.size() + 1 != e.size())
      throw std::invalid_argument("fewbit: histogram counts must have edges.length - 1 = " + std::to_string(e.size() - 1) +
                                  " values, got " + std::to_string(c.size()));
    for (size_t i = 0; i < e.size(); ++i) {
      if (!std::isfinite(e[i])) throw std::invalid_argument("fewbit: histogram edge " + std::to_string(i) + " is not finite");
      if (i > 0 && !(e[i] > e[i - 1]))
        throw std::invalid_argument("fewbit: histogram edges must be strictly ascending (edge " + std::to_string(i) + ")");
    }
    double total = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      if (!std::isfinite(c[i]) || c[i] < 0)
        throw std::invalid_argument("fewbit: histogram count " + std::to_string(i) + " must be finite and >= 0");
      total += c[i];
    }
    if (!(total > 0)) throw std::invalid_argument("fewbit: histogram counts sum to 0");
    *lo = e.front();
    *hi = e.back();
    return;
  }
  if (opt.lo == 0 && opt.hi == 0) {
    *lo = opt.weight == FewbitWeight::normal ? -10.0 : -100.0;
    *hi = -*lo;
  } else {
    *lo = opt.lo;
    *hi = opt.hi;
  }
  if (!std::isfinite(*lo) || !std::isfinite(*hi) || !(*lo < *hi))
    throw std::invalid_argument("fewbit: domain must be finite with lo < hi, got [" + fmt(*lo) + ", " + fmt(*hi) + "]");
}

bool even_derivative(const std::string& n) { return n == "tanh" || n == "sigmoid" || n == "softsign" || n == "tanhshrink"; }

// The solver's domain: the weight's domain, or [0, R] when folded.
void problem_domain(const std::string& fn, const FewbitOptions& opt, double* lo, double* hi) {
  resolve_domain(opt, lo, hi);
  if (!opt.fold) return;
  if (!even_derivative(fn))
    throw std::invalid_argument("fewbit: fold needs an even derivative (tanh, sigmoid, softsign, tanhshrink), not " + fn);
  if (opt.weight != FewbitWeight::histogram && !(std::fabs(*lo + *hi) <= 1e-12 * std::fabs(*hi)))
    throw std::invalid_argument("fewbit: fold needs a symmetric domain [-R, R], got [" + fmt(*lo) + ", " + fmt(*hi) + "]");
  *hi = std::max(std::fabs(*lo), std::fabs(*hi));
  *lo = 0;
}

// J of fixed borders with the given levels: Σ ∫(f' - l_i)^2 w = Σ S_i - 2 l_i F_i + l_i^2 W_i.
double objective_of(const Problem& pr, double lo, double hi, const std::vector<double>& borders,
                    const std::vector<double>& levels) {
  double j = 0, a = lo;
  for (size_t i = 0; i <= borders.size(); ++i) {
    const double b = i < borders.size() ? std::min(std::max(borders[i], lo), hi) : hi;
    Moments m = pr.between(a, b);
    const double l = levels[i];
    j += m.ffw - 2.0 * l * m.fw + l * l * m.w;
    a = std::max(a, b);
  }
  return j > 0 ? j : 0.0;
}

// Exact DP over grid borders: dp_t[j] = min_{i<j} dp_{t-1}[i] + c(i, j). c(i, j) only grows as i
// falls (a larger interval never costs less) and dp >= 0, so the scan over i stops once c(i, j)
// alone reaches the best value: exact, and it skips most pairs where f' varies.
std::vector<int> solve_dp(const Problem& pr, int k) {
  const int n = pr.n();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> prev(n + 1, inf), cur(n + 1, inf);
  std::vector<int32_t> arg((size_t)(k + 1) * (n + 1), 0);
  for (int j = 1; j <= n; ++j) prev[j] = pr.grid_cost(0, j);
  for (int t = 2; t <= k; ++t) {
    std::fill(cur.begin(), cur.end(), inf);
    const int jlo = t == k ? n : t;
    for (int j = jlo; j <= n; ++j) {
      double best = inf;
      int bi = j - 1;
      for (int i = j - 1; i >= t - 1; --i) {
        const double c = pr.grid_cost(i, j);
        if (c >= best) break;
        const double v = prev[i] + c;
        if (v < best) best = v, bi = i;
      }
      cur[j] = best;
      arg[(size_t)t * (n + 1) + j] = bi;
    }
    std::swap(prev, cur);
  }
  // Backtrack the k-1 inner border indices.
  std::vector<int> idx(k + 1);
  idx[k] = n;
  for (int t = k; t >= 2; --t) idx[t - 1] = arg[(size_t)t * (n + 1) + idx[t]];
  idx[0] = 0;
  return idx;
}

// Move each border off the grid (golden-section search on its two neighbouring intervals),
// keeping a move only when it lowers J. The DP gives the basin; this gives the last digits.
void polish(const Problem& pr, double lo, double hi, std::vector<double>& s) {
  const int k = (int)s.size() + 1;
  const double h = (hi - lo) / pr.n();
  auto local = [&](int i, double v) {
    const double a = i == 0 ? lo : s[i - 1];
    const double b = i + 1 == (int)s.size() ? hi : s[i + 1];
    double l, c1, c2;
    pr.best_level(a, v, &l, &c1);
    pr.best_level(v, b, &l, &c2);
    return c1 + c2;
  };
  auto total = [&](const std::vector<double>& b, std::vector<double>* lv) {
    double j = 0, c;
    lv->resize(k);
    for (int i = 0; i < k; ++i) {
      pr.best_level(i == 0 ? lo : b[i - 1], i + 1 == k ? hi : b[i], &(*lv)[i], &c);
      j += c;
    }
    return j;
  };
  // Lloyd steps: levels = weighted means; each border moves to where f' crosses the midpoint of
  // its two levels (the stationarity condition for any w > 0), searched near the border. Stop when
  // J stops falling.
  std::vector<double> lv, lv2, t = s;
  double j0 = total(s, &lv);
  for (int it = 0; it < 2000; ++it) {
    double moved = 0;
    for (int i = 0; i + 1 < k; ++i) {
      const double mid = 0.5 * (lv[i] + lv[i + 1]), dir = lv[i + 1] - lv[i];
      auto slope = [&](double v) { return dir * (2.0 * pr.fn().df(v) - 2.0 * mid); };  // sign of dJ/ds
      const double left = i == 0 ? lo : s[i - 1], right = i + 2 == k ? hi : s[i + 1];
      double a = std::max(s[i] - 4 * h, left), b = std::min(s[i] + 4 * h, right);
      // nearest sign change - to + of the slope around s[i]
      const int m = 16;
      double best = s[i], bestd = std::numeric_limits<double>::infinity();
      double pv = a, ps = slope(a);
      for (int q = 1; q <= m; ++q) {
        const double v = a + (b - a) * q / m, sv = slope(v);
        if (ps < 0 && sv >= 0) {
          double x0 = pv, x1 = v;
          for (int bi = 0; bi < 60; ++bi) {
            const double xm = 0.5 * (x0 + x1);
            (slope(xm) < 0 ? x0 : x1) = xm;
          }
          const double r = 0.5 * (x0 + x1);
          if (std::fabs(r - s[i]) < bestd) bestd = std::fabs(r - s[i]), best = r;
        }
        pv = v, ps = sv;
      }
      t[i] = best;
      moved = std::max(moved, std::fabs(best - s[i]));
    }
    for (int i = 1; i + 1 < k; ++i) t[i] = std::max(t[i], t[i - 1]);
    const double j1 = total(t, &lv2);
    if (!(j1 < j0)) break;
    s = t, lv = lv2, j0 = j1;
    if (moved < 1e-13 * (hi - lo)) break;
  }
  const double g = 0.61803398874989484820;
  for (int sweep = 0; sweep < 2; ++sweep) {
    for (int i = 0; i + 1 < k; ++i) {
      const double left = i == 0 ? lo : s[i - 1];
      const double right = i + 2 == k ? hi : s[i + 1];
      double a = std::max(s[i] - 2 * h, left + 1e-9 * h), b = std::min(s[i] + 2 * h, right - 1e-9 * h);
      if (!(b > a)) continue;
      const double f0 = local(i, s[i]);
      double c = b - g * (b - a), d = a + g * (b - a);
      double fc = local(i, c), fd = local(i, d);
      for (int it = 0; it < 48; ++it) {
        if (fc < fd) {
          b = d, d = c, fd = fc;
          c = b - g * (b - a);
          fc = local(i, c);
        } else {
          a = c, c = d, fc = fd;
          d = a + g * (b - a);
          fd = local(i, d);
        }
      }
      const double v = fc < fd ? c : d, fv = std::min(fc, fd);
      if (fv < f0) s[i] = v;
    }
  }
}

std::string table_key(const std::string& fn, int bits, const FewbitOptions& o, double lo, double hi, const Fn& f) {
  std::string k = fn + "|" + std::to_string(bits) + "|" + fmt(lo) + "|" + fmt(hi) + "|" + std::to_string((int)o.weight) +
                  "|" + fmt(f.p.p0) + "|" + fmt(f.p.p1) + "|" + std::to_string(o.grid) + "|" + (o.polish ? "p" : "-") + (o.fold ? "f" : "-");
  if (o.weight == FewbitWeight::histogram) {
    uint64_t hsh = 1469598103934665603ull;  // FNV-1a over the histogram bytes
    auto mix = [&](const std::vector<double>& v) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(v.data());
      for (size_t i = 0; i < v.size() * sizeof(double); ++i) hsh = (hsh ^ p[i]) * 1099511628211ull;
    };
    mix(o.hist_edges);
    mix(o.hist_counts);
    k += "|" + std::to_string(o.hist_edges.size()) + ":" + std::to_string(hsh);
  }
  return k;
}

// Exact tables for piecewise-constant derivatives (minimal code: 1 bit). Bands use steps (+1, -1).
void exact_table(const Fn& f, FewbitTable& t) {
  const std::string n = f.def->name;
  if (n == "relu") t.borders = {0.0}, t.steps = {1}, t.levels = {0.0, 1.0};
  else if (n == "leaky_relu") t.borders = {0.0}, t.steps = {1}, t.levels = {f.p.p0, 1.0};
  else if (n == "threshold") t.borders = {f.p.p0}, t.steps = {1}, t.levels = {0.0, 1.0};
  else if (n == "relu6") t.borders = {0.0, 6.0}, t.steps = {1, -1}, t.levels = {0.0, 1.0};
  else if (n == "hardtanh") t.borders = {f.p.p0, f.p.p1}, t.steps = {1, -1}, t.levels = {0.0, 1.0};
  else if (n == "hardsigmoid") t.borders = {-3.0, 3.0}, t.steps = {1, -1}, t.levels = {0.0, 1.0 / 6.0};
  // Wider codes than needed: pad with the last level (those codes never occur).
  while ((int)t.levels.size() < (1 << t.bits)) t.levels.push_back(t.levels.back());
}

void check_bits(int bits) {
  if (bits < 1 || bits > 4) throw std::invalid_argument("fewbit: bits must be 1, 2, 3 or 4, got " + std::to_string(bits));
}

}  // namespace

const std::vector<std::string>& fewbit_function_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const FnDef& d : kFns) v.push_back(d.name);
    return v;
  }();
  return names;
}

bool fewbit_has_function(const std::string& fn) { return find_fn(fn) != nullptr; }
bool fewbit_has_even_derivative(const std::string& fn) { return even_derivative(fn); }
bool fewbit_is_exact(const std::string& fn) {
  const FnDef* d = find_fn(fn);
  return d && d->exact;
}

double fewbit_eval(const std::string& fn, double x, const FewbitOptions& opt) { return resolve_fn(fn, opt).f(x); }
double fewbit_eval_deriv(const std::string& fn, double x, const FewbitOptions& opt) { return resolve_fn(fn, opt).df(x); }

void fewbit_apply_f32(const std::string& fn, const FewbitOptions& opt, const float* x, size_t n, float* y) {
  const Fn f = resolve_fn(fn, opt);
  for (size_t i = 0; i < n; ++i) y[i] = (float)f.def->f((double)x[i], f.p);
}

static int resolve_grid(int grid, int bits) {
  const int n = grid == 0 ? fewbit_default_grid : grid;
  if (n < (1 << bits) || n > (1 << 14))  // O(k·n²) worst case: 16384 cells is ~2 s at 4 bits
    throw std::invalid_argument("fewbit: grid must be between " + std::to_string(1 << bits) + " and 16384 cells, got " +
                                std::to_string(n));
  return n;
}

double fewbit_objective(const std::string& fn, const std::vector<double>& borders, const std::vector<double>& levels,
                        const FewbitOptions& opt) {
  const Fn f = resolve_fn(fn, opt);
  double lo, hi;
  problem_domain(fn, opt, &lo, &hi);
  if (levels.size() != borders.size() + 1)
    throw std::invalid_argument("fewbit: levels must have borders.length + 1 = " + std::to_string(borders.size() + 1) +
                                " values, got " + std::to_string(levels.size()));
  for (size_t i = 0; i < borders.size(); ++i) {
    if (!std::isfinite(borders[i])) throw std::invalid_argument("fewbit: border " + std::to_string(i) + " is not finite");
    if (i > 0 && borders[i] < borders[i - 1])
      throw std::invalid_argument("fewbit: borders must be ascending (border " + std::to_string(i) + ")");
  }
  for (size_t i = 0; i < levels.size(); ++i)
    if (!std::isfinite(levels[i])) throw std::invalid_argument("fewbit: level " + std::to_string(i) + " is not finite");
  const Problem pr(f, opt, lo, hi, resolve_grid(opt.grid, 1));
  return objective_of(pr, lo, hi, borders, levels);
}

double fewbit_fit_levels(const std::string& fn, const std::vector<double>& borders, const FewbitOptions& opt,
                         std::vector<double>* levels) {
  const Fn f = resolve_fn(fn, opt);
  double lo, hi;
  problem_domain(fn, opt, &lo, &hi);
  for (size_t i = 0; i < borders.size(); ++i) {
    if (!std::isfinite(borders[i])) throw std::invalid_argument("fewbit: border " + std::to_string(i) + " is not finite");
    if (i > 0 && borders[i] < borders[i - 1])
      throw std::invalid_argument("fewbit: borders must be ascending (border " + std::to_string(i) + ")");
  }
  const Problem pr(f, opt, lo, hi, resolve_grid(opt.grid, 1));
  levels->assign(borders.size() + 1, 0.0);
  double a = lo;
  for (size_t i = 0; i <= borders.size(); ++i) {
    const double b = i < borders.size() ? std::min(std::max(borders[i], lo), hi) : hi;
    double c;
    pr.best_level(a, std::max(a, b), &(*levels)[i], &c);
    a = std::max(a, b);
  }
  return objective_of(pr, lo, hi, borders, *levels);
}

std::shared_ptr<const FewbitTable> fewbit_table(const std::string& fn, int bits, const FewbitOptions& opt) {
  check_bits(bits);
  const Fn f = resolve_fn(fn, opt);
  double lo, hi, plo, phi;
  resolve_domain(opt, &lo, &hi);
  problem_domain(fn, opt, &plo, &phi);
  const int n = resolve_grid(opt.grid, bits);
  const std::string key = table_key(fn, bits, opt, lo, hi, f);
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const FewbitTable>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  auto t = std::make_shared<FewbitTable>();
  t->fn = fn;
  t->bits = bits;
  t->lo = lo;
  t->hi = hi;
  t->weight = opt.weight;
  t->grid = n;
  t->exact = f.def->exact;
  t->fold = opt.fold;
  if (t->exact) {
    exact_table(f, *t);
    t->error = 0;
  } else {
    const int k = 1 << bits;
    const Problem pr(f, opt, plo, phi, n);
    std::vector<int> idx = solve_dp(pr, k);
    t->borders.resize(k - 1);
    for (int i = 1; i < k; ++i) t->borders[i - 1] = pr.x(idx[i]);
    if (opt.polish) polish(pr, plo, phi, t->borders);
    t->steps.assign(k - 1, 1);
    t->levels.resize(k);
    for (int i = 0; i < k; ++i) {
      double c;
      pr.best_level(i == 0 ? plo : t->borders[i - 1], i + 1 == k ? phi : t->borders[i], &t->levels[i], &c);
    }
    t->error = objective_of(pr, plo, phi, t->borders, t->levels);
  }
  for (double b : t->borders) t->borders_f32.push_back((float)b);
  for (double l : t->levels) t->levels_f32.push_back((float)l);
  std::lock_guard<std::mutex> lock(mu);
  auto ins = cache.emplace(key, t);
  return ins.first->second;
}

}  // namespace swinq
