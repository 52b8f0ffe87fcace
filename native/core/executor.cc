// The plan executor. Everything a plan says is checked before any memory is touched: the tensors
// here, every op by its OpDef's validate (native/ops/, one definition per op of ops.def). Then
// each op is prepared once (packed weights, integer parameters) and the run loop only calls the
// ops' run functions (no checks, no allocation per run).
#include "swinq/executor.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <algorithm>
#include <stdexcept>

#include "swinq/cpu.h"
#include "swinq/kernels_f32.h"
#include "swinq/op.h"

namespace swinq {

namespace {

bool mul_ok(int64_t a, int64_t b, int64_t* r) { return !__builtin_mul_overflow(a, b, r); }
bool add_ok(int64_t a, int64_t b, int64_t* r) { return !__builtin_add_overflow(a, b, r); }

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

constexpr int64_t kMaxArena = int64_t(1) << 36;  // 64 GiB: the arena is allocated up front

// Zeroed, 64-byte aligned memory from calloc: large blocks come from fresh mmap pages, so a big
// arena costs no time (and no RSS) until it is written. The raw pointer sits just below.
void* aligned_bytes(int64_t bytes) {
  const size_t n = (size_t)bytes + 64 + sizeof(void*);
  void* raw = std::calloc(1, n);
  if (!raw) fail("plan: out of memory allocating " + str(bytes) + " bytes");
  uintptr_t p = ((uintptr_t)raw + sizeof(void*) + 63) & ~(uintptr_t)63;
  reinterpret_cast<void**>(p)[-1] = raw;
  return reinterpret_cast<void*>(p);
}

}  // namespace

void Plan::Free::operator()(void* p) const {
  if (p) std::free(reinterpret_cast<void**>(p)[-1]);
}

// --- validation -------------------------------------------------------------------------

namespace {

// The plan-level checks: tensor table, inputs/outputs; ops() hands each op to its OpDef.
struct Validator {
  const PlanDesc& d;

  const TensorDesc& t(int32_t id) const { return d.tensors[(size_t)id]; }


  void tensors() {
    if (d.arena_bytes < 0 || d.arena_bytes > kMaxArena)
      fail("plan: arenaBytes = " + str(d.arena_bytes) + " is out of range [0, 2^36 = 64 GiB]");
    for (size_t i = 0; i < d.tensors.size(); ++i) {
      const TensorDesc& x = d.tensors[i];
      const std::string w = "plan tensor #" + str((int64_t)i) + ": ";
      if ((int)x.dtype < 0 || (int)x.dtype > (int)DType::i64) fail(w + "dtype " + str((int)x.dtype) + " is unknown");
      if (x.rank < 0 || x.rank > kMaxRank) fail(w + "rank " + str(x.rank) + " is out of range [0, 8]");
      int64_t n = 1;
      for (int k = 0; k < x.rank; ++k) {
        if (x.dims[k] < 0) fail(w + "dims[" + str(k) + "] = " + str(x.dims[k]) + " is negative");
        if (!mul_ok(n, x.dims[k], &n) || n > kMaxBytes)
          fail(w + "element count overflows (dims[" + str(k) + "] = " + str(x.dims[k]) + ")");
      }
      int64_t bytes;
      if (!mul_ok(n, (int64_t)dtype_size(x.dtype), &bytes) || bytes > kMaxBytes) fail(w + "byte size overflows");
      if (x.offset < 0) fail(w + "offset " + str(x.offset) + " is negative");
      int64_t end;
      switch (x.storage) {
        case Storage::arena:
          if (!add_ok(x.offset, bytes, &end) || end > d.arena_bytes)
            fail(w + "arena bytes [" + str(x.offset) + ", " + str(x.offset + bytes) + ") exceed arenaBytes = " +
                 str(d.arena_bytes));
          if (x.offset % (int64_t)dtype_size(x.dtype))
            fail(w + "arena offset " + str(x.offset) + " is not aligned to its " + dtype_name(x.dtype) + " elements");
          break;
        case Storage::constant:
          if (!add_ok(x.offset, bytes, &end) || end > (int64_t)d.constants.size())
            fail(w + "constant bytes [" + str(x.offset) + ", " + str(x.offset + bytes) +
                 ") exceed the constant region (" + str((int64_t)d.constants.size()) + " bytes)");
          if (x.offset % (int64_t)dtype_size(x.dtype))
            fail(w + "constant offset " + str(x.offset) + " is not aligned to its " + dtype_name(x.dtype) +
                 " elements");
          break;
        case Storage::input:
          if (x.offset >= (int64_t)d.inputs.size())
            fail(w + "input index " + str(x.offset) + " is out of range (plan has " + str((int64_t)d.inputs.size()) +
                 " inputs)");
          break;
        case Storage::output:
          if (x.offset >= (int64_t)d.outputs.size())
            fail(w + "output index " + str(x.offset) + " is out of range (plan has " +
                 str((int64_t)d.outputs.size()) + " outputs)");
          break;
        default:
          fail(w + "storage " + str((int)x.storage) + " is unknown");
      }
    }
    for (int io = 0; io < 2; ++io) {
      const std::vector<int32_t>& list = io ? d.outputs : d.inputs;
      const char* what = io ? "outputs" : "inputs";
      const Storage want = io ? Storage::output : Storage::input;
      for (size_t i = 0; i < list.size(); ++i) {
        const std::string w = std::string("plan ") + what + "[" + str((int64_t)i) + "]";
        if (list[i] < 0 || list[i] >= (int32_t)d.tensors.size())
          fail(w + " = " + str(list[i]) + " is not a tensor id (plan has " + str((int64_t)d.tensors.size()) +
               " tensors)");
        const TensorDesc& x = t(list[i]);
        if (x.storage != want || x.offset != (int64_t)i)
          fail(w + ": tensor #" + str(list[i]) + " must have storage " + (io ? "output" : "input") + " and offset " +
               str((int64_t)i));
      }
    }
    // Views of an input/output (other tensors naming the same index) must fit inside it.
    for (size_t i = 0; i < d.tensors.size(); ++i) {
      const TensorDesc& x = d.tensors[i];
      if (x.storage != Storage::input && x.storage != Storage::output) continue;
      const auto& list = x.storage == Storage::input ? d.inputs : d.outputs;
      const TensorDesc& main = t(list[(size_t)x.offset]);
      if (x.nbytes() > main.nbytes())
        fail("plan tensor #" + str((int64_t)i) + ": " + str(x.nbytes()) + " bytes do not fit in " +
             (x.storage == Storage::input ? "input " : "output ") + str(x.offset) + " (" + str(main.nbytes()) +
             " bytes)");
    }
  }

  // Every op: a known kind, then its OpDef's checks.
  void ops() {
    for (size_t i = 0; i < d.ops.size(); ++i) {
      const OpDesc& op = d.ops[i];
      if ((int)op.kind < 0 || (int)op.kind >= (int)OpKind::count_)
        fail("plan op #" + str((int64_t)i) + ": kind " + str((int)op.kind) + " is unknown" +
             (op.name.empty() ? "" : " (node '" + op.name + "')"));
      op_def(op.kind).validate(OpCheck{d, i, op, d.constants.data()});
    }
  }
};

}  // namespace

// --- Plan -------------------------------------------------------------------------------

std::unique_ptr<Plan> Plan::create(PlanDesc desc, const PlanOptions& options) {
  std::unique_ptr<Plan> p(new Plan());
  p->desc_ = std::move(desc);
  p->options_ = options;
  p->validate();
  p->prepare();
  return p;
}

Plan::~Plan() {
  Free()(arena_);
  Free()(constants_);
}

void Plan::validate() {
  Validator v{desc_};
  v.tensors();
  v.ops();
}

void Plan::prepare() {
  arena_ = static_cast<uint8_t*>(aligned_bytes(desc_.arena_bytes));
  constants_ = static_cast<uint8_t*>(aligned_bytes((int64_t)desc_.constants.size()));
  if (!desc_.constants.empty()) std::memcpy(constants_, desc_.constants.data(), desc_.constants.size());
  desc_.constants.clear();
  desc_.constants.shrink_to_fit();
  states_.resize(desc_.ops.size());
  for (size_t i = 0; i < desc_.ops.size(); ++i) {
    const OpDesc& op = desc_.ops[i];
    const OpDef& def = op_def(op.kind);
    if (def.prepare) states_[i] = def.prepare(OpCheck{desc_, i, op, constants_}, options_);
  }
  ptr_.assign(desc_.tensors.size(), nullptr);
  op_ms_.assign(desc_.ops.size(), 0.0);
  pool_.reset(new ThreadPool(options_.threads));
  plan_regions();
  choice_.reset(desc_.ops.size(), options_.adapt_threads && pool_->threads() > 1);
}

// Regions: maximal runs of consecutive ops with a RowSplit of the same row count, each op after the
// first safe to start on a thread's rows before the other threads finish the ops before it (so not
// an op whose part reads every row, RowSplit::reads_all, which only starts a region): no op's
// output may share arena bytes with a tensor an earlier op of the region reads or writes, and no op
// may read an earlier op's output through another tensor that shares its bytes (a view). An op
// whose rows scatter (y_rows) ends its region.
void Plan::plan_regions() {
  regions_.clear();
  part_ns_.assign(desc_.ops.size(), 0.0);
  // how tensors a and b share arena bytes
  enum class Share { none, partly, same };
  auto share = [&](int32_t a, int32_t b) {
    if (a < 0 || b < 0) return Share::none;
    const TensorDesc &x = desc_.tensors[(size_t)a], &y = desc_.tensors[(size_t)b];
    if (x.storage != Storage::arena || y.storage != Storage::arena || !x.nbytes() || !y.nbytes()) return Share::none;
    const int64_t a0 = x.offset, a1 = a0 + x.nbytes(), b0 = y.offset, b1 = b0 + y.nbytes();
    if (!(a0 < b1 && b0 < a1)) return Share::none;
    return a0 == b0 && a1 == b1 ? Share::same : Share::partly;
  };
  // An output may share no byte with a tensor of the region, not even the very same bytes: equal
  // rows are safe only for row-shaped tensors of ops that neither read every row (one window's
  // attention) nor scatter them, and the planner never reuses a buffer inside a region anyway.
  // A read of an earlier op's output must be exactly its bytes (not a partial view).
  auto clash = [&](int32_t a, int32_t b) { return share(a, b) != Share::none; };
  auto partial = [&](int32_t a, int32_t b) { return share(a, b) == Share::partly; };
  std::vector<RowSplit> split(desc_.ops.size());
  for (size_t i = 0; i < desc_.ops.size(); ++i) {
    const OpDef& def = op_def(desc_.ops[i].kind);
    if (options_.row_regions && def.row_split && def.run_rows) split[i] = def.row_split(desc_.ops[i]);
  }
  auto hazard = [&](size_t begin, size_t j) {
    const OpDesc& o = desc_.ops[j];
    for (size_t i = begin; i < j; ++i) {
      const OpDesc& p = desc_.ops[i];
      for (int32_t t : p.inputs)
        if (clash(o.outputs[0], t)) return true;
      if (clash(o.outputs[0], p.outputs[0])) return true;
      for (int32_t t : o.inputs)
        if (partial(t, p.outputs[0])) return true;
    }
    return false;
  };
  bool open = false;
  Region cur{0, 0, 0, 1};
  for (size_t i = 0; i < desc_.ops.size(); ++i) {
    const RowSplit& rs = split[i];
    if (open && rs.rows > 0 && rs.rows == cur.rows && !rs.reads_all && !hazard(cur.begin, i)) {
      cur.end = i + 1;
      cur.unit = std::lcm(cur.unit, std::max<int64_t>(1, rs.unit));
    } else {
      if (open) regions_.push_back(cur);
      cur = Region{i, i + 1, rs.rows, std::max<int64_t>(1, rs.unit)};
      open = true;
    }
    if (rs.rows == 0 || rs.scatters) {
      regions_.push_back(cur);
      open = false;
    }
  }
  if (open) regions_.push_back(cur);
}

void Plan::set_threads(int threads) {
  std::lock_guard<std::mutex> lk(mu_);
  pool_->set_threads(threads);
  choice_.reset(desc_.ops.size(), options_.adapt_threads && pool_->threads() > 1);  // measured for the old count
}

Plan::ThreadChoiceInfo Plan::thread_choice() const {
  std::lock_guard<std::mutex> lk(mu_);
  static const char* const names[] = {"pool", "caller", "mixed"};
  return {choice_.enabled(), names[(int)choice_.config()], choice_.serial_ops(), (int64_t)desc_.ops.size(),
          choice_.choices(), (int64_t)regions_.size()};
}

int Plan::threads() const {
  std::lock_guard<std::mutex> lk(mu_);
  return pool_->threads();
}

std::vector<OpProfile> Plan::profile() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<OpProfile> r;
  if (!options_.profile || !profiled_) return r;
  for (size_t i = 0; i < desc_.ops.size(); ++i) r.push_back({op_name(desc_.ops[i].kind), desc_.ops[i].name, op_ms_[i]});
  return r;
}

void Plan::run(const std::vector<ConstBuffer>& inputs, const std::vector<MutBuffer>& outputs, Isa isa) {
  std::lock_guard<std::mutex> lk(mu_);
  // first, so a sleeping worker's wake-up overlaps the checks and the ops before the first pool job
  if (choice_.run_uses_pool()) pool_->wake_sleepers();
  if (inputs.size() != desc_.inputs.size())
    fail("run: got " + str((int64_t)inputs.size()) + " inputs, the plan has " + str((int64_t)desc_.inputs.size()));
  if (outputs.size() != desc_.outputs.size())
    fail("run: got " + str((int64_t)outputs.size()) + " outputs, the plan has " + str((int64_t)desc_.outputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorDesc& t = desc_.tensors[desc_.inputs[i]];
    if ((int64_t)inputs[i].bytes != t.nbytes())
      fail("run: input " + str((int64_t)i) + " has " + str((int64_t)inputs[i].bytes) + " bytes, expected " +
           str(t.nbytes()) + " (" + dtype_name(t.dtype) + " × " + str(t.elements()) + ")");
    if (t.nbytes() && !inputs[i].data) fail("run: input " + str((int64_t)i) + " has no data");
    if ((uintptr_t)inputs[i].data % dtype_size(t.dtype))
      fail("run: input " + str((int64_t)i) + " is not aligned to its " + dtype_name(t.dtype) + " elements");
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorDesc& t = desc_.tensors[desc_.outputs[i]];
    if ((int64_t)outputs[i].bytes != t.nbytes())
      fail("run: output " + str((int64_t)i) + " has " + str((int64_t)outputs[i].bytes) + " bytes, expected " +
           str(t.nbytes()) + " (" + dtype_name(t.dtype) + " × " + str(t.elements()) + ")");
    if (t.nbytes() && !outputs[i].data) fail("run: output " + str((int64_t)i) + " has no data");
    if ((uintptr_t)outputs[i].data % dtype_size(t.dtype))
      fail("run: output " + str((int64_t)i) + " is not aligned to its " + dtype_name(t.dtype) + " elements");
    const uint8_t* ob = static_cast<const uint8_t*>(outputs[i].data);
    for (size_t j = 0; j < inputs.size(); ++j) {
      const uint8_t* ib = static_cast<const uint8_t*>(inputs[j].data);
      if (outputs[i].bytes && inputs[j].bytes && ob < ib + inputs[j].bytes && ib < ob + outputs[i].bytes)
        fail("run: output " + str((int64_t)i) + " overlaps input " + str((int64_t)j));
    }
    for (size_t j = 0; j < i; ++j) {
      const uint8_t* pb = static_cast<const uint8_t*>(outputs[j].data);
      if (outputs[i].bytes && outputs[j].bytes && ob < pb + outputs[j].bytes && pb < ob + outputs[i].bytes)
        fail("run: output " + str((int64_t)i) + " overlaps output " + str((int64_t)j));
    }
  }
  for (size_t i = 0; i < desc_.tensors.size(); ++i) {
    const TensorDesc& t = desc_.tensors[i];
    switch (t.storage) {
      case Storage::arena: ptr_[i] = arena_ + t.offset; break;
      case Storage::constant: ptr_[i] = constants_ + t.offset; break;
      case Storage::input: ptr_[i] = const_cast<void*>(inputs[(size_t)t.offset].data); break;
      case Storage::output: ptr_[i] = outputs[(size_t)t.offset].data; break;
    }
  }
  const f32::Kernels& k = f32::kernels(isa);
  using clock = std::chrono::steady_clock;
  const bool adapt = choice_.enabled(), timed = options_.profile || choice_.timing();
  const auto t_run = clock::now();
  for (const Region& g : regions_) {
    if (g.end - g.begin > 1) {
      run_region(g, k, isa, timed);
      continue;
    }
    const size_t i = g.begin;
    const OpDesc& op = desc_.ops[i];
    const OpRun r{desc_, op, states_[i].get(), ptr_.data(), *pool_, isa, k};
    if (adapt) pool_->set_serial(choice_.op_serial(i));
    if (timed) {
      const auto t0 = clock::now();
      op_def(op.kind).run(r);
      const double ns = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
      op_ms_[i] = ns * 1e-6;
      choice_.record(i, ns);
    } else {
      op_def(op.kind).run(r);
    }
  }
  if (adapt) {
    pool_->set_serial(false);
    choice_.end_run(std::chrono::duration<double, std::nano>(clock::now() - t_run).count());
  }
  profiled_ = options_.profile;
}

// One pool job: each thread takes its part of the rows through every op of the region (part 0 on
// the caller; ThreadPool::parallel_for_static). The thread choice treats the region as its first
// op. A profile gives each op the caller's time on its part, and the wait for the other parts to
// the region's last op.
void Plan::run_region(const Region& g, const f32::Kernels& k, Isa isa, bool timed) {
  using clock = std::chrono::steady_clock;
  const bool prof = options_.profile;
  if (choice_.enabled()) pool_->set_serial(choice_.op_serial(g.begin));
  const auto t0 = clock::now();
  pool_->parallel_for_static(g.rows, g.unit == 1 ? 4 : g.unit, [&](int64_t r0, int64_t r1) {
    const bool caller = prof && r0 == 0;
    for (size_t i = g.begin; i < g.end; ++i) {
      const OpRun r{desc_, desc_.ops[i], states_[i].get(), ptr_.data(), *pool_, isa, k};
      const auto ti = caller ? clock::now() : clock::time_point{};
      op_def(desc_.ops[i].kind).run_rows(r, r0, r1);
      if (caller) part_ns_[i] = std::chrono::duration<double, std::nano>(clock::now() - ti).count();
    }
  });
  if (!timed) return;
  const double ns = std::chrono::duration<double, std::nano>(clock::now() - t0).count();
  double parts = 0;
  for (size_t i = g.begin; i < g.end; ++i) {
    choice_.record(i, i == g.begin ? ns : 0.0);
    op_ms_[i] = prof ? part_ns_[i] * 1e-6 : (i == g.begin ? ns * 1e-6 : 0.0);
    parts += part_ns_[i];
  }
  if (prof) op_ms_[g.end - 1] += std::max(0.0, ns - parts) * 1e-6;
}

}  // namespace swinq
