#include "swinq/thread_choice.h"

#include <algorithm>
#include <limits>

namespace swinq {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

void ThreadChoice::reset(size_t ops, bool enabled) {
  enabled_ = enabled;
  step_ = -kWarmRuns;
  hold_ = kFirstHoldRuns;
  min_pool_.assign(ops, kInf);
  min_caller_.assign(ops, kInf);
  mixed_serial_.assign(ops, 0);
  run_pool_ = run_caller_ = run_mixed_ = kInf;
  config_ = Config::pool;
  choices_ = 0;
}

bool ThreadChoice::op_serial(size_t i) const {
  if (!enabled_ || step_ < 0) return false;
  if (step_ < 2 * kProbeRuns) return step_ >= kProbeRuns;  // a block on the pool, then one on the caller
  if (step_ < 3 * kProbeRuns) return mixed_serial_[i] != 0;
  switch (config_) {
    case Config::caller: return true;
    case Config::mixed: return mixed_serial_[i] != 0;
    default: return false;
  }
}

void ThreadChoice::record(size_t i, double ns) {
  if (!timing() || i >= min_pool_.size()) return;
  if (step_ < 2 * kProbeRuns) {
    double& m = step_ >= kProbeRuns ? min_caller_[i] : min_pool_[i];
    m = std::min(m, ns);
  }
}

void ThreadChoice::end_run(double ns) {
  if (!enabled_) return;
  if (step_ < 0) {
    ++step_;
    return;
  }
  if (step_ < 2 * kProbeRuns) {
    double& m = step_ >= kProbeRuns ? run_caller_ : run_pool_;
    m = std::min(m, ns);
    if (step_ == 2 * kProbeRuns - 1)  // the mixed configuration: each op where its minimum was lower
      for (size_t i = 0; i < mixed_serial_.size(); ++i) mixed_serial_[i] = min_caller_[i] < min_pool_[i];
  } else if (step_ < 3 * kProbeRuns) {
    run_mixed_ = std::min(run_mixed_, ns);
    if (step_ == 3 * kProbeRuns - 1) {
      // the pool unless the caller alone or the mix is clearly faster (ties and noise: the pool)
      const double best = std::min(run_caller_, run_mixed_);
      config_ = best >= kMargin * run_pool_ ? Config::pool : run_mixed_ <= run_caller_ ? Config::mixed : Config::caller;
      if (config_ == Config::mixed) {  // named for what it is when every op went one way
        const int64_t n = mixed_serial_count();
        if (n == 0) config_ = Config::pool;
        else if (n == (int64_t)mixed_serial_.size()) config_ = Config::caller;
      }
      ++choices_;
    }
  }
  if (++step_ >= 3 * kProbeRuns + hold_) {  // measure again, after a longer hold each time
    step_ = 0;
    hold_ = std::min(kHoldRuns, 2 * hold_);
    std::fill(min_pool_.begin(), min_pool_.end(), kInf);
    std::fill(min_caller_.begin(), min_caller_.end(), kInf);
    run_pool_ = run_caller_ = run_mixed_ = kInf;
  }
}

int64_t ThreadChoice::mixed_serial_count() const {
  int64_t n = 0;
  for (uint8_t s : mixed_serial_) n += s;
  return n;
}

bool ThreadChoice::run_uses_pool() const {
  if (!enabled_ || step_ < kProbeRuns) return true;
  if (step_ < 2 * kProbeRuns) return false;
  if (step_ < 3 * kProbeRuns) return mixed_serial_count() < (int64_t)mixed_serial_.size();
  return config_ != Config::caller;
}

int64_t ThreadChoice::serial_ops() const {
  if (config_ == Config::caller) return (int64_t)mixed_serial_.size();
  return config_ == Config::pool ? 0 : mixed_serial_count();
}

}  // namespace swinq
