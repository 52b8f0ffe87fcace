// One plan op = one OpDef {validate, prepare, run}, defined in native/ops/<group>.cc and listed in
// the registry (native/ops/registry.cc) that ops.def drives. The executor (core/executor.cc) only
// loops over the ops and calls these three; it has no per-op code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "swinq/cpu.h"
#include "swinq/kernels_f32.h"
#include "swinq/plan.h"

namespace swinq {

class ThreadPool;
struct PlanOptions;

constexpr int64_t kMaxBytes = int64_t(1) << 40;  // 1 TiB: anything larger is a hostile plan

// What prepare derives at load (packed weights, integer parameters, tables); each op defines its
// own subclass. Ops without load-time state have none (null).
struct OpState {
  virtual ~OpState() = default;
};

// Checks of one op of a plan whose tensors are already validated. Every failure throws
// std::runtime_error "plan op #i name (node 'n'): <field> ...".
struct OpCheck {
  const PlanDesc& d;
  size_t index;
  const OpDesc& op;
  const uint8_t* constants;  // the constant region (d.constants at validation, the plan's copy at prepare)

  [[noreturn]] void fail(const std::string& msg) const;
  const TensorDesc& t(int32_t id) const { return d.tensors[(size_t)id]; }
  int32_t in(size_t i) const { return i < op.inputs.size() ? op.inputs[i] : -1; }
  int32_t out() const { return op.outputs[0]; }
  int64_t I(size_t i) const { return op.ints[i]; }
  template <class T>
  const T* cdata(int32_t id) const {
    return reinterpret_cast<const T*>(constants + t(id).offset);
  }

  // min_in..max_in inputs (those past min_in may be -1 = absent), exactly one writable output.
  void arity(size_t min_in, size_t max_in, std::initializer_list<const char*> names) const;
  void ints_len(size_t n, const char* layout) const;
  void ints_len_in(size_t lo, size_t hi, const char* layout) const;
  void floats_len(size_t n, const char* layout) const;
  void nonneg(std::initializer_list<const char*> names) const;  // ints[0..] named, each >= 0
  void dtype(int32_t id, const char* name, std::initializer_list<DType> ok) const;
  void all_f32(std::initializer_list<std::pair<int32_t, const char*>> v) const;  // absent (-1) skipped
  void elems(int32_t id, const char* name, int64_t want, const std::string& formula) const;
  void constant(int32_t id, const char* name) const;
  // a constant i32 tensor of `rows` entries, a permutation of [0, rows) (errors name the entry)
  void row_permutation(int32_t id, const char* name, int64_t rows, const char* rows_name) const;
  int64_t prod(std::initializer_list<int64_t> v, const char* what) const;  // checked product
  // The output must not overlap an input, except an exact alias where `alias_ok`.
  void no_overlap(int32_t input, const char* name, bool alias_ok = false) const;
  // batch strided operands a, b of a matmul: the last item of each must lie inside its tensor
  void batch_strides(int32_t a, int32_t b, int64_t batch, int64_t M, int64_t K, int64_t N, size_t stride_at) const;

  // --- integer ops ---
  // zero point ints[i] must fit `ty` (and be 0 for i16 when zero_only16)
  int32_t zp(size_t i, const char* name, DType ty, bool zero_only16 = false) const;
  // ints[i] = y_max, an optional clamp of y codes: y_zp ≤ y_max ≤ the dtype's max
  int32_t y_max(size_t i, int64_t y_zp, DType ty) const;
  double scale(size_t i, const char* name) const;  // floats[i], finite and > 0
  // mult/shift const i32 tensors with 1 or `channels` entries; shift in [0, 62]; mult > 0 when `positive`.
  void requant_tensors(int32_t m, int32_t s, int64_t channels, bool positive) const;
  // Runs a parameter derivation; its exception becomes an op error naming `what`.
  template <class F>
  auto kernel(const char* what, F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (const std::exception& e) {
      fail(std::string(what) + ": " + e.what());
    }
  }
};

// One op during a run: its tensors' addresses, its state, the pool and the kernel set.
struct OpRun {
  const PlanDesc& d;
  const OpDesc& op;
  const OpState* state;
  void* const* ptr;  // per tensor: its address for this run
  ThreadPool& pool;
  Isa isa;
  const f32::Kernels& k;  // the fp32 kernel set of `isa`

  void* in(size_t i) const { return i < op.inputs.size() && op.inputs[i] >= 0 ? ptr[op.inputs[i]] : nullptr; }
  const float* inf(size_t i) const { return static_cast<const float*>(in(i)); }
  void* out() const { return ptr[op.outputs[0]]; }
  const TensorDesc& in_t(size_t i) const { return d.tensors[(size_t)op.inputs[i]]; }
  const TensorDesc& out_t() const { return d.tensors[(size_t)op.outputs[0]]; }
  template <class S>
  const S& st() const {
    return *static_cast<const S*>(state);
  }
};

// How an op splits by rows, for the executor's row regions (core/executor.cc): an op whose part over
// rows [r0, r1) reads only those rows of its row-shaped inputs and writes only those rows of its
// output. rows 0: the op is not row-local (it splits its own way). unit: parts are whole multiples
// of it (attention: a window's N rows). scatters: the output rows are stored elsewhere (y_rows),
// so no op after it can join its region. reads_all: each part reads every row of its input (one
// window's attention: its keys), so the op can only start a region.
struct RowSplit {
  int64_t rows = 0, unit = 1;
  bool scatters = false, reads_all = false;
};

struct OpDef {
  // Checks everything the op is handed (sizes, dtypes, parameters, aliasing) against ops.def; must
  // not allocate or derive state. Runs for every op before any op is prepared.
  void (*validate)(const OpCheck& c);
  // Derives the op's load-time state (may be null: no state). May still fail (a parameter no
  // kernel can represent), through c.fail / c.kernel.
  std::unique_ptr<OpState> (*prepare)(const OpCheck& c, const PlanOptions& options);
  // Runs the validated, prepared op. Never throws, never allocates per element.
  void (*run)(const OpRun& r);
  // Optional (row-local ops): the op's RowSplit, and its run over rows [r0, r1) on the calling
  // thread alone (it must not use r.pool). The same integers as run.
  RowSplit (*row_split)(const OpDesc& op) = nullptr;
  void (*run_rows)(const OpRun& r, int64_t r0, int64_t r1) = nullptr;
};

// The registry: op_def(k) for every OpKind of ops.def (native/ops/registry.cc).
const OpDef& op_def(OpKind k);

// Items per parallel chunk so that each chunk is ~`work` units of `per_item` cost.
inline int64_t chunk_for(int64_t per_item, int64_t work = 32768) {
  return per_item < 1 ? work : (work / per_item < 1 ? 1 : work / per_item);
}

std::string str(int64_t v);

}  // namespace swinq
