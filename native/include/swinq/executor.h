// The plan executor: validates a PlanDesc completely at load, prepares every op once (packed
// weights, integer parameters), then runs the flat op list over one arena through the op table
// (swinq/op.h, native/ops/). Runs on one Plan are serialised by its mutex.
#pragma once
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "swinq/cpu.h"
#include "swinq/plan.h"
#include "swinq/thread_choice.h"
#include "swinq/threadpool.h"

namespace swinq {

namespace f32 {
struct Kernels;  // swinq/kernels_f32.h
}
struct OpState;  // per-op state computed at load (swinq/op.h)

struct PlanOptions {
  int threads = 1;      // 0 = all hardware threads
  bool profile = false; // record per-op wall time of each run
  // linear_q ops whose input has zero point 0 (a ReLU output) keep a K-major weight copy, so each
  // run can take the exact sparse-A GEMM when the input's measured density is low (docs/sparsity.md)
  bool sparse_a = true;
  // with threads > 1: each op runs on the pool or on the caller alone, whichever the plan measured
  // faster on this host (swinq/thread_choice.h); false: every op on the pool
  bool adapt_threads = true;
  // with threads > 1: consecutive row-local ops on the same rows (a LayerNorm, the linears after it,
  // a windowed attention with merged heads) run as one pool job, each thread taking its rows
  // through all of them, so they hand off once instead of once per op (executor.cc, RowSplit)
  bool row_regions = true;
};

struct ConstBuffer { const void* data; size_t bytes; };
struct MutBuffer { void* data; size_t bytes; };

struct OpProfile {
  std::string op, name;
  double ms;
};

class Plan {
 public:
  // Throws std::runtime_error naming the op index, op, node and field on any invalid size.
  static std::unique_ptr<Plan> create(PlanDesc desc, const PlanOptions& options);
  ~Plan();

  // inputs/outputs in plan order with exactly the plan's byte sizes (checked; errors name the index).
  // `isa` picks the kernel set of this run (the fp32 table and the integer kernels' dispatch).
  void run(const std::vector<ConstBuffer>& inputs, const std::vector<MutBuffer>& outputs, Isa isa);
  void run(const std::vector<ConstBuffer>& inputs, const std::vector<MutBuffer>& outputs) {
    run(inputs, outputs, active_isa());
  }

  size_t input_count() const { return desc_.inputs.size(); }
  size_t output_count() const { return desc_.outputs.size(); }
  int64_t input_bytes(size_t i) const { return desc_.tensors[desc_.inputs[i]].nbytes(); }
  int64_t output_bytes(size_t i) const { return desc_.tensors[desc_.outputs[i]].nbytes(); }
  std::vector<OpProfile> profile() const;
  void set_threads(int threads);
  int threads() const;
  // The per-op thread choice so far (ThreadChoice: configuration, ops on the caller alone).
  struct ThreadChoiceInfo {
    bool adaptive;
    const char* config;  // "pool", "caller" or "mixed"
    int64_t serial_ops, ops, choices;
    int64_t jobs;  // pool jobs a run hands out: one per op, or one per row region (PlanOptions::row_regions)
  };
  ThreadChoiceInfo thread_choice() const;
  const PlanDesc& desc() const { return desc_; }

 private:
  Plan() = default;
  void validate();
  void prepare();
  void plan_regions();
  // a run's ops [begin, end) as one pool job over `rows` (parts of whole `unit`s), or one op
  struct Region {
    size_t begin, end;
    int64_t rows, unit;
  };
  void run_region(const Region& g, const f32::Kernels& k, Isa isa, bool timed);

  PlanDesc desc_;
  PlanOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<ThreadPool> pool_;
  struct Free { void operator()(void* p) const; };  // for executor.cc's aligned_bytes()
  // 64-byte aligned regions
  uint8_t* arena_ = nullptr;
  uint8_t* constants_ = nullptr;
  std::vector<std::unique_ptr<OpState>> states_;     // per op: its prepared state, or null
  std::vector<void*> ptr_;                            // per tensor: its address during a run
  std::vector<double> op_ms_;
  std::vector<Region> regions_;
  std::vector<double> part_ns_;  // per op: the caller's part of its region (profiled runs)
  bool profiled_ = false;
  ThreadChoice choice_;
};

}  // namespace swinq
