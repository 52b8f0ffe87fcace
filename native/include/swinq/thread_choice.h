// Per-op choice between the thread pool and the caller alone, measured while a plan runs. At batch 1
// an op's share of work can be smaller than what handing half of it to another core costs (a
// publish, a claim and a completion, each a cache-line transfer: ≈ 0.3 µs between two cores of a
// CCD, ≈ 1.5 µs for an op between the two vCPUs of some VMs), so the pool helps some ops and
// slows others, and by how much depends on the host. The plan measures it after kWarmRuns runs on
// the pool: kProbeRuns runs with every op on the pool, kProbeRuns with every op on the caller (each
// op's minimum time kept; in blocks, because a worker idle for a whole caller run goes to sleep and
// its wake-up would be charged to the next pool run), then kProbeRuns with each op where it was
// faster. The caller alone or the mix is kept only when its whole-run minimum beats the pool's by
// kMargin; the choice holds for kFirstHoldRuns runs, then twice as many each time up to kHoldRuns,
// and the plan measures again (the other core may have become busy or free). Outputs do not depend
// on the choice (every op computes the same integers on any split).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace swinq {

class ThreadChoice {
 public:
  static constexpr int kWarmRuns = 8, kProbeRuns = 8;
  static constexpr int64_t kFirstHoldRuns = 256, kHoldRuns = 2048;
  static constexpr double kMargin = 0.97;
  enum class Config : uint8_t { pool, caller, mixed };

  // ops: the plan's op count; enabled: the plan has more than one thread and adapts
  void reset(size_t ops, bool enabled);
  bool enabled() const { return enabled_; }
  // This run times its ops (probe and check runs only).
  bool timing() const { return enabled_ && step_ >= 0 && step_ < 3 * kProbeRuns; }
  // Whether op i runs on the caller alone in this run.
  bool op_serial(size_t i) const;
  // Whether some op of this run may go to the pool (false: every op on the caller).
  bool run_uses_pool() const;
  // Op i took ns in this run (timing() runs).
  void record(size_t i, double ns);
  // The run took ns; advances the schedule.
  void end_run(double ns);

  // What was chosen last (pool until the first choice): the configuration and how many ops run
  // on the caller alone in it.
  Config config() const { return config_; }
  int64_t serial_ops() const;
  int64_t choices() const { return choices_; }  // completed measurements

 private:
  bool enabled_ = false;
  // position in the cycle: < 0 warm-up, [0, P) pool, [P, 2P) caller, [2P, 3P) the mix, then hold
  int64_t step_ = -kWarmRuns, hold_ = kFirstHoldRuns;
  std::vector<double> min_pool_, min_caller_;
  std::vector<uint8_t> mixed_serial_;  // per op, in the mixed configuration
  int64_t mixed_serial_count() const;
  double run_pool_ = 0, run_caller_ = 0, run_mixed_ = 0;
  Config config_ = Config::pool;
  int64_t choices_ = 0;
};

}  // namespace swinq
