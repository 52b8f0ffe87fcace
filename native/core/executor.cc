// The fp32 plan executor. Everything a plan says is checked in validate() before any memory is
// touched; the run loop then trusts the plan (no checks, no allocation per run).
#include "swinq/executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "swinq/cpu.h"
#include "swinq/executor_int.h"
#include "swinq/kernels_f32.h"

namespace swinq {

namespace {

constexpr int64_t kMaxBytes = int64_t(1) << 40;  // 1 TiB: anything larger is a hostile plan

bool mul_ok(int64_t a, int64_t b, int64_t* r) { return !__builtin_mul_overflow(a, b, r); }
bool add_ok(int64_t a, int64_t b, int64_t* r) { return !__builtin_add_overflow(a, b, r); }

std::string str(int64_t v) { return std::to_string(v); }

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

// Per-op state computed once at load.
struct BinaryShape {
  int rank = 0;  // after dropping size-1 dims and merging contiguous ones; >= 1
  int64_t dims[kMaxRank] = {};
  int64_t as[kMaxRank] = {}, bs[kMaxRank] = {};
  int64_t rows = 1;  // product of all dims but the last
};

// Op-level state that is not plain PlanDesc data. Kept in a side table indexed like desc_.ops.
struct OpState {
  BinaryShape bin;
  std::shared_ptr<IntOpState> q;  // integer ops (executor_int.cc)
};

// --- validation -------------------------------------------------------------------------

namespace {

struct Validator {
  const PlanDesc& d;
  size_t op_index = 0;
  const OpDesc* op = nullptr;
  bool sparse_a = true;  // PlanOptions::sparse_a

  std::string where() const {
    std::ostringstream s;
    s << "plan op #" << op_index << " " << op_name(op->kind);
    if (!op->name.empty()) s << " (node '" << op->name << "')";
    return s.str();
  }
  [[noreturn]] void op_fail(const std::string& msg) const { fail(where() + ": " + msg); }

  const TensorDesc& t(int32_t id) const { return d.tensors[(size_t)id]; }

  bool overlap(int32_t a, int32_t b) const { return tensors_overlap(t(a), t(b)); }
  bool same(int32_t a, int32_t b) const { return tensors_alias(t(a), t(b)); }

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

  // --- per-op helpers ---
  int32_t in(size_t i) const { return i < op->inputs.size() ? op->inputs[i] : -1; }
  int32_t out(size_t i) const { return op->outputs[i]; }
  int64_t I(size_t i) const { return op->ints[i]; }

  void arity(size_t min_in, size_t max_in, const char* const* in_names) {
    if (op->inputs.size() < min_in || op->inputs.size() > max_in)
      op_fail("has " + str((int64_t)op->inputs.size()) + " inputs, expected " +
              (min_in == max_in ? str((int64_t)min_in) : str((int64_t)min_in) + ".." + str((int64_t)max_in)));
    if (op->outputs.size() != 1) op_fail("has " + str((int64_t)op->outputs.size()) + " outputs, expected 1");
    for (size_t i = 0; i < op->inputs.size(); ++i) {
      const int32_t id = op->inputs[i];
      if (id == -1 && i >= min_in) continue;
      if (id < 0 || id >= (int32_t)d.tensors.size())
        op_fail(std::string("input ") + in_names[i] + " = " + str(id) + " is not a tensor id" +
                (i >= min_in ? " (or -1 for absent)" : ""));
    }
    const int32_t o = op->outputs[0];
    if (o < 0 || o >= (int32_t)d.tensors.size()) op_fail("output = " + str(o) + " is not a tensor id");
    const Storage s = t(o).storage;
    if (s == Storage::constant || s == Storage::input)
      op_fail(std::string("output tensor #") + str(o) + " is a " + (s == Storage::constant ? "constant" : "graph input") +
              " and cannot be written");
  }
  void ints_len(size_t n, const char* layout) {
    if (op->ints.size() != n)
      op_fail("ints has " + str((int64_t)op->ints.size()) + " values, expected " + str((int64_t)n) + " " + layout);
  }
  void dtype(int32_t id, const char* name, DType want) {
    if (t(id).dtype != want)
      op_fail(std::string(name) + " is " + dtype_name(t(id).dtype) + ", expected " + dtype_name(want));
  }
  void elems(int32_t id, const char* name, int64_t want, const std::string& formula) {
    if (t(id).elements() != want)
      op_fail(std::string(name) + " has " + str(t(id).elements()) + " elements, expected " + formula + " = " +
              str(want));
  }
  void nonneg(size_t i, const char* name) {
    if (I(i) < 0) op_fail(std::string("ints[") + str((int64_t)i) + "] " + name + " = " + str(I(i)) + " is negative");
  }
  int64_t prod(std::initializer_list<int64_t> v, const char* what) {
    int64_t r = 1;
    for (int64_t x : v)
      if (!mul_ok(r, x, &r) || r > kMaxBytes) op_fail(std::string(what) + " overflows");
    return r;
  }
  // The output must not overlap an input, except an exact alias where `alias_ok`.
  void no_overlap(int32_t input, const char* name, bool alias_ok) {
    if (input < 0) return;
    const int32_t o = out(0);
    if (!overlap(input, o)) return;
    if (alias_ok && same(input, o)) return;
    op_fail(std::string("output tensor #") + str(o) + (alias_ok ? " partially overlaps " : " overlaps ") + name +
            " (tensor #" + str(input) + ")" + (alias_ok ? "; only an exact alias is allowed" : ""));
  }
  void all_f32(std::initializer_list<std::pair<int32_t, const char*>> v) {
    for (auto& p : v)
      if (p.first >= 0) dtype(p.first, p.second, DType::f32);
  }

  void ops(std::vector<OpState>& states) {
    states.assign(d.ops.size(), OpState{});
    for (op_index = 0; op_index < d.ops.size(); ++op_index) {
      op = &d.ops[op_index];
      if ((int)op->kind < 0 || (int)op->kind >= (int)OpKind::count_)
        fail("plan op #" + str((int64_t)op_index) + ": kind " + str((int)op->kind) + " is unknown" +
             (op->name.empty() ? "" : " (node '" + op->name + "')"));
      one(states[op_index]);
    }
  }

  void one(OpState& st) {
    static const char* const n_x[] = {"x"};
    static const char* const n_ab[] = {"a", "b"};
    switch (op->kind) {
      case OpKind::copy: {
        arity(1, 1, n_x);
        ints_len(0, "[]");
        if (t(in(0)).nbytes() != t(out(0)).nbytes())
          op_fail("x has " + str(t(in(0)).nbytes()) + " bytes, y has " + str(t(out(0)).nbytes()) +
                  "; copy needs equal byte sizes");
        no_overlap(in(0), "x", true);
        break;
      }
      case OpKind::index_map: {
        static const char* const names[] = {"x", "idx"};
        arity(2, 2, names);
        ints_len(4, "[block, items, x_item_elems, y_item_elems]");
        for (size_t i = 0; i < 4; ++i) nonneg(i, (const char*[]){"block", "items", "x_item_elems", "y_item_elems"}[i]);
        const int64_t block = I(0), items = I(1), xi = I(2), yi = I(3);
        if (block < 1) op_fail("ints[0] block = " + str(block) + " must be >= 1");
        if (yi % block) op_fail("y_item_elems = " + str(yi) + " is not a multiple of block = " + str(block));
        const int32_t x = in(0), idx = in(1), y = out(0);
        if (t(x).dtype != t(y).dtype)
          op_fail(std::string("x is ") + dtype_name(t(x).dtype) + " but y is " + dtype_name(t(y).dtype));
        dtype(idx, "idx", DType::i32);
        if (t(idx).storage != Storage::constant) op_fail("idx (tensor #" + str(idx) + ") must be a constant");
        elems(x, "x", prod({items, xi}, "items·x_item_elems"), "items·x_item_elems");
        elems(y, "y", prod({items, yi}, "items·y_item_elems"), "items·y_item_elems");
        elems(idx, "idx", yi / block, "y_item_elems/block");
        const int32_t* iv = reinterpret_cast<const int32_t*>(d.constants.data() + t(idx).offset);
        for (int64_t r = 0; r < yi / block; ++r) {
          int32_t v;
          std::memcpy(&v, iv + r, 4);
          if (v >= 0 && (int64_t)v + block > xi)
            op_fail("idx[" + str(r) + "] = " + str(v) + " reads past the x item (" + str(v) + " + block " +
                    str(block) + " > x_item_elems " + str(xi) + ")");
        }
        no_overlap(x, "x", false);
        break;
      }
      case OpKind::linear: {
        static const char* const names[] = {"x", "w", "bias", "residual"};
        arity(2, 4, names);
        ints_len(4, "[M, K, N, act]");
        for (size_t i = 0; i < 3; ++i) nonneg(i, (const char*[]){"M", "K", "N"}[i]);
        const int64_t M = I(0), K = I(1), N = I(2);
        if (I(3) < 0 || I(3) > 3) op_fail("ints[3] act = " + str(I(3)) + " is unknown (0 none, 1 relu, 2 gelu_erf, 3 gelu_tanh)");
        const int32_t x = in(0), w = in(1), b = in(2), r = in(3), y = out(0);
        all_f32({{x, "x"}, {w, "w"}, {b, "bias"}, {r, "residual"}, {y, "y"}});
        elems(x, "x", prod({M, K}, "M·K"), "M·K");
        elems(w, "w", prod({K, N}, "K·N"), "K·N");
        if (t(w).storage != Storage::constant) op_fail("w (tensor #" + str(w) + ") must be a constant (it is packed at load)");
        if (b >= 0) elems(b, "bias", N, "N");
        if (r >= 0) elems(r, "residual", prod({M, N}, "M·N"), "M·N");
        elems(y, "y", prod({M, N}, "M·N"), "M·N");
        no_overlap(x, "x", false);
        no_overlap(b, "bias", false);
        no_overlap(r, "residual", true);
        break;
      }
      case OpKind::matmul: {
        arity(2, 2, n_ab);
        ints_len(7, "[batch, M, K, N, trans_b, a_batch_stride, b_batch_stride]");
        const char* nm[] = {"batch", "M", "K", "N", "trans_b", "a_batch_stride", "b_batch_stride"};
        for (size_t i = 0; i < 7; ++i) nonneg(i, nm[i]);
        if (I(4) > 1) op_fail("ints[4] trans_b = " + str(I(4)) + " must be 0 or 1");
        if (op->floats.size() != 1) op_fail("floats has " + str((int64_t)op->floats.size()) + " values, expected 1 [alpha]");
        const int64_t batch = I(0), M = I(1), K = I(2), N = I(3);
        const int32_t a = in(0), b = in(1), y = out(0);
        all_f32({{a, "a"}, {b, "b"}, {y, "y"}});
        elems(y, "y", prod({batch, M, N}, "batch·M·N"), "batch·M·N");
        if (batch > 0) {
          for (int s = 0; s < 2; ++s) {
            const int64_t stride = I(5 + s), mat = prod({s ? K : M, s ? N : K}, "matrix size");
            const int64_t need = prod({batch - 1, stride}, "batch stride") + mat;
            const int64_t have = t(s ? b : a).elements();
            if (need > have)
              op_fail(std::string(s ? "b" : "a") + " has " + str(have) + " elements, but batch " + str(batch) +
                      " × stride " + str(stride) + " needs " + str(need));
          }
        }
        no_overlap(a, "a", false);
        no_overlap(b, "b", false);
        break;
      }
      case OpKind::layernorm: {
        static const char* const names[] = {"x", "gamma", "beta"};
        arity(1, 3, names);
        ints_len(2, "[rows, D]");
        nonneg(0, "rows");
        nonneg(1, "D");
        if (op->floats.size() != 1) op_fail("floats has " + str((int64_t)op->floats.size()) + " values, expected 1 [eps]");
        if (!(op->floats[0] >= 0.0f)) op_fail("eps = " + std::to_string(op->floats[0]) + " must be >= 0");
        const int64_t rows = I(0), D = I(1);
        if (D == 0 && rows > 0) op_fail("D = 0 with " + str(rows) + " rows");
        const int32_t x = in(0), g = in(1), b = in(2), y = out(0);
        all_f32({{x, "x"}, {g, "gamma"}, {b, "beta"}, {y, "y"}});
        elems(x, "x", prod({rows, D}, "rows·D"), "rows·D");
        elems(y, "y", prod({rows, D}, "rows·D"), "rows·D");
        if (g >= 0) elems(g, "gamma", D, "D");
        if (b >= 0) elems(b, "beta", D, "D");
        no_overlap(x, "x", true);
        no_overlap(g, "gamma", false);
        no_overlap(b, "beta", false);
        break;
      }
      case OpKind::softmax: {
        static const char* const names[] = {"x", "bias"};
        arity(1, 2, names);
        ints_len(3, "[rows, D, bias_rows]");
        nonneg(0, "rows");
        nonneg(1, "D");
        nonneg(2, "bias_rows");
        const int64_t rows = I(0), D = I(1), br = I(2);
        const int32_t x = in(0), b = in(1), y = out(0);
        all_f32({{x, "x"}, {b, "bias"}, {y, "y"}});
        elems(x, "x", prod({rows, D}, "rows·D"), "rows·D");
        elems(y, "y", prod({rows, D}, "rows·D"), "rows·D");
        if (b >= 0) {
          if (br < 1) op_fail("ints[2] bias_rows = " + str(br) + " must be >= 1 when bias is given");
          elems(b, "bias", prod({br, D}, "bias_rows·D"), "bias_rows·D");
        }
        no_overlap(x, "x", true);
        no_overlap(b, "bias", false);
        break;
      }
      case OpKind::binary: {
        arity(2, 2, n_ab);
        if (op->ints.size() < 2) op_fail("ints has " + str((int64_t)op->ints.size()) + " values, expected [op, rank, dims, a_strides, b_strides]");
        if (I(0) < 0 || I(0) >= f32::b_count) op_fail("ints[0] op = " + str(I(0)) + " is unknown (0..6)");
        const int64_t rank = I(1);
        if (rank < 0 || rank > kMaxRank) op_fail("ints[1] rank = " + str(rank) + " is out of range [0, 8]");
        ints_len((size_t)(2 + 3 * rank), "[op, rank, dims[rank], a_strides[rank], b_strides[rank]]");
        const int32_t a = in(0), b = in(1), y = out(0);
        all_f32({{a, "a"}, {b, "b"}, {y, "y"}});
        int64_t n = 1, amax = 0, bmax = 0;
        for (int64_t k = 0; k < rank; ++k) {
          const int64_t dim = I(2 + k), as = I(2 + rank + k), bs = I(2 + 2 * rank + k);
          if (dim < 0) op_fail("dims[" + str(k) + "] = " + str(dim) + " is negative");
          if (as < 0) op_fail("a_strides[" + str(k) + "] = " + str(as) + " is negative");
          if (bs < 0) op_fail("b_strides[" + str(k) + "] = " + str(bs) + " is negative");
          n = prod({n, dim}, "element count");
          if (dim > 0) {
            amax += prod({dim - 1, as}, "a extent");
            bmax += prod({dim - 1, bs}, "b extent");
            if (amax > kMaxBytes || bmax > kMaxBytes) op_fail("strides overflow");
          }
        }
        elems(y, "y", n, "prod(dims)");
        if (n > 0) {
          if (amax >= t(a).elements())
            op_fail("a has " + str(t(a).elements()) + " elements, but its strides reach element " + str(amax));
          if (bmax >= t(b).elements())
            op_fail("b has " + str(t(b).elements()) + " elements, but its strides reach element " + str(bmax));
        }
        // Exact alias only when that input is read with the output's own layout.
        for (int s = 0; s < 2; ++s) {
          const int32_t id = s ? b : a;
          if (!overlap(id, y)) continue;
          bool dense = same(id, y);
          int64_t expect = 1;
          for (int64_t k = rank - 1; k >= 0 && dense; --k) {
            if (I(2 + k) > 1 && I(2 + (s ? 2 : 1) * rank + k) != expect) dense = false;
            expect *= I(2 + k);
          }
          if (!dense)
            op_fail(std::string("output tensor #") + str(y) + " overlaps " + (s ? "b" : "a") +
                    " (tensor #" + str(id) + ") other than as an exact same-layout alias");
        }
        // Simplify the iteration shape: drop size-1 dims, merge dims that are contiguous in all three.
        BinaryShape& bs = st.bin;
        bs.rank = 0;
        for (int64_t k = 0; k < rank; ++k) {
          const int64_t dim = I(2 + k), as = I(2 + rank + k), bst = I(2 + 2 * rank + k);
          if (dim == 1) continue;
          if (bs.rank > 0) {
            const int j = bs.rank - 1;
            if (bs.as[j] == as * dim && bs.bs[j] == bst * dim) {
              bs.dims[j] *= dim;
              bs.as[j] = as;
              bs.bs[j] = bst;
              continue;
            }
          }
          bs.dims[bs.rank] = dim;
          bs.as[bs.rank] = as;
          bs.bs[bs.rank] = bst;
          ++bs.rank;
        }
        if (bs.rank == 0) {
          bs.rank = 1;
          bs.dims[0] = 1;
          bs.as[0] = bs.bs[0] = 0;
        }
        bs.rows = 1;
        for (int k = 0; k + 1 < bs.rank; ++k) bs.rows *= bs.dims[k];
        if (n == 0) bs.rows = 0;
        break;
      }
      case OpKind::unary: {
        arity(1, 1, n_x);
        ints_len(1, "[op]");
        const int64_t u = I(0);
        if (u < 0 || u >= f32::u_count) op_fail("ints[0] op = " + str(u) + " is unknown (0..23)");
        if (op->floats.size() > 2) op_fail("floats has " + str((int64_t)op->floats.size()) + " values, expected at most 2 [p0, p1]");
        size_t need = 0;
        if (u == f32::u_clip || u == f32::u_hardsigmoid || u == f32::u_scale_shift) need = 2;
        if (u == f32::u_leaky_relu || u == f32::u_elu) need = 1;
        if (op->floats.size() < need)
          op_fail("floats has " + str((int64_t)op->floats.size()) + " values, this unary op needs " + str((int64_t)need));
        const int32_t x = in(0), y = out(0);
        all_f32({{x, "x"}, {y, "y"}});
        elems(y, "y", t(x).elements(), "x elements");
        no_overlap(x, "x", true);
        break;
      }
      case OpKind::reduce: {
        arity(1, 1, n_x);
        ints_len(4, "[outer, red, inner, op]");
        nonneg(0, "outer");
        nonneg(1, "red");
        nonneg(2, "inner");
        if (I(3) < 0 || I(3) > 3) op_fail("ints[3] op = " + str(I(3)) + " is unknown (0 mean, 1 sum, 2 max, 3 min)");
        const int64_t outer = I(0), red = I(1), inner = I(2);
        const int32_t x = in(0), y = out(0);
        all_f32({{x, "x"}, {y, "y"}});
        if (red == 0 && outer > 0 && inner > 0) op_fail("red = 0: nothing to reduce");
        elems(x, "x", prod({outer, red, inner}, "outer·red·inner"), "outer·red·inner");
        elems(y, "y", prod({outer, inner}, "outer·inner"), "outer·inner");
        no_overlap(x, "x", false);
        break;
      }
      case OpKind::argmax: {
        arity(1, 1, n_x);
        ints_len(2, "[rows, D]");
        nonneg(0, "rows");
        nonneg(1, "D");
        const int64_t rows = I(0), D = I(1);
        if (D == 0 && rows > 0) op_fail("D = 0 with " + str(rows) + " rows");
        dtype(in(0), "x", DType::f32);
        dtype(out(0), "y", DType::i64);
        elems(in(0), "x", prod({rows, D}, "rows·D"), "rows·D");
        elems(out(0), "y", rows, "rows");
        no_overlap(in(0), "x", false);
        break;
      }
      case OpKind::cast: {
        arity(1, 1, n_x);
        ints_len(0, "[]");
        elems(out(0), "y", t(in(0)).elements(), "x elements");
        no_overlap(in(0), "x", dtype_size(t(in(0)).dtype) == dtype_size(t(out(0)).dtype));
        break;
      }
      default:
        if (is_int_op(op->kind)) {
          st.q = prepare_int_op(d, op_index, sparse_a);
          break;
        }
        op_fail("is not supported by the fp32 executor");
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
  v.sparse_a = options_.sparse_a;
  v.tensors();
  v.ops(states_);
}

void Plan::prepare() {
  arena_ = static_cast<uint8_t*>(aligned_bytes(desc_.arena_bytes));
  constants_ = static_cast<uint8_t*>(aligned_bytes((int64_t)desc_.constants.size()));
  if (!desc_.constants.empty()) std::memcpy(constants_, desc_.constants.data(), desc_.constants.size());
  desc_.constants.clear();
  desc_.constants.shrink_to_fit();
  packed_.resize(desc_.ops.size());
  for (size_t i = 0; i < desc_.ops.size(); ++i) {
    const OpDesc& op = desc_.ops[i];
    if (op.kind != OpKind::linear) continue;
    const int64_t K = op.ints[1], N = op.ints[2];
    const float* w = reinterpret_cast<const float*>(constants_ + desc_.tensors[op.inputs[1]].offset);
    packed_[i].reset(static_cast<float*>(aligned_bytes(std::max<int64_t>(1, f32::packed_b_floats(K, N)) * 4)));
    f32::pack_b_f32(w, K, N, packed_[i].get());
  }
  ptr_.assign(desc_.tensors.size(), nullptr);
  op_ms_.assign(desc_.ops.size(), 0.0);
  pool_.reset(new ThreadPool(options_.threads));
}

void Plan::set_threads(int threads) {
  std::lock_guard<std::mutex> lk(mu_);
  pool_->set_threads(threads);
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

void Plan::run(const std::vector<ConstBuffer>& inputs, const std::vector<MutBuffer>& outputs) {
  std::lock_guard<std::mutex> lk(mu_);
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
  isa_ = active_isa();
  for (size_t i = 0; i < desc_.ops.size(); ++i) {
    if (options_.profile) {
      const auto t0 = std::chrono::steady_clock::now();
      run_op(i);
      op_ms_[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    } else {
      run_op(i);
    }
  }
  profiled_ = options_.profile;
}

// --- op execution ----------------------------------------------------------------------

namespace {

template <class S, class D>
void convert(const void* xs, void* ys, int64_t b, int64_t e) {
  const S* x = static_cast<const S*>(xs);
  D* y = static_cast<D*>(ys);
  for (int64_t i = b; i < e; ++i) {
    if constexpr (std::is_floating_point<S>::value && !std::is_floating_point<D>::value) {
      // ONNX truncates toward zero; out-of-range and NaN saturate instead of being UB.
      const double v = (double)x[i];
      if (!(v == v)) y[i] = 0;
      else if (v <= (double)std::numeric_limits<D>::min()) y[i] = std::numeric_limits<D>::min();
      else if (v >= (double)std::numeric_limits<D>::max()) y[i] = std::numeric_limits<D>::max();
      else y[i] = (D)v;
    } else if constexpr (!std::is_floating_point<S>::value && !std::is_floating_point<D>::value) {
      y[i] = (D)(int64_t)x[i];  // integer narrowing wraps (two's complement), as ONNX Cast does
    } else {
      y[i] = (D)x[i];
    }
  }
}

using ConvertFn = void (*)(const void*, void*, int64_t, int64_t);
template <class S>
ConvertFn convert_from(DType d) {
  switch (d) {
    case DType::f32: return convert<S, float>;
    case DType::i32: return convert<S, int32_t>;
    case DType::i8: return convert<S, int8_t>;
    case DType::u8: return convert<S, uint8_t>;
    case DType::i16: return convert<S, int16_t>;
    case DType::i64: return convert<S, int64_t>;
  }
  return nullptr;
}
ConvertFn convert_fn(DType s, DType d) {
  switch (s) {
    case DType::f32: return convert_from<float>(d);
    case DType::i32: return convert_from<int32_t>(d);
    case DType::i8: return convert_from<int8_t>(d);
    case DType::u8: return convert_from<uint8_t>(d);
    case DType::i16: return convert_from<int16_t>(d);
    case DType::i64: return convert_from<int64_t>(d);
  }
  return nullptr;
}

// Items per parallel chunk so that each chunk is ~`work` units of `per_item` cost.
inline int64_t chunk_for(int64_t per_item, int64_t work = 32768) {
  return std::max<int64_t>(1, work / std::max<int64_t>(1, per_item));
}

}  // namespace

void Plan::run_op(size_t i) {
  const OpDesc& op = desc_.ops[i];
  const bool avx2 = isa_ == Isa::avx2;
  auto in = [&](size_t k) -> void* { return k < op.inputs.size() && op.inputs[k] >= 0 ? ptr_[op.inputs[k]] : nullptr; };
  auto inf = [&](size_t k) { return static_cast<const float*>(in(k)); };
  void* out = ptr_[op.outputs[0]];
  float* outf = static_cast<float*>(out);
  const auto& I = op.ints;
  ThreadPool& pool = *pool_;
  switch (op.kind) {
    case OpKind::copy: {
      const int64_t n = desc_.tensors[op.outputs[0]].nbytes();
      if (in(0) != out && n) std::memmove(out, in(0), (size_t)n);
      break;
    }
    case OpKind::index_map: {
      const TensorDesc& xt = desc_.tensors[op.inputs[0]];
      const int64_t es = (int64_t)dtype_size(xt.dtype), block = I[0], items = I[1], xi = I[2], yi = I[3];
      const int64_t rows = yi / block, total = items * rows;
      const uint8_t* x = static_cast<const uint8_t*>(in(0));
      const int32_t* idx = static_cast<const int32_t*>(in(1));
      uint8_t* y = static_cast<uint8_t*>(out);
      pool.parallel_for(total, chunk_for(block * es + 16, 65536), [&](int64_t b, int64_t e) {
        (avx2 ? index_map_avx2 : index_map_scalar)(x, idx, y, es, block, xi, yi, b, e);
      });
      break;
    }
    case OpKind::linear: {
      f32::GemmArgs a{inf(0), packed_[i].get(), inf(2), inf(3), outf, I[0], I[1], I[2], (int)I[3]};
      const int64_t panels = f32::gemm_panels(a.N);
      // Tasks are blocks of 36 rows × 4 panels (64 columns), m-major so an x block stays in cache.
      // Fewer panels per task when K is large, so a task's B panels (K·64 bytes each) stay in L2.
      const int64_t mb = 36, nb = std::max<int64_t>(1, std::min<int64_t>(4, (256 << 10) / (std::max<int64_t>(a.K, 1) * 64)));
      const int64_t m_blocks = (a.M + mb - 1) / mb, n_blocks = (panels + nb - 1) / nb;
      const int64_t task_work = mb * nb * f32::kGemmNr * std::max<int64_t>(a.K, 1);
      auto gemm = avx2 ? f32::gemm_f32_6x16_avx2 : f32::gemm_f32_scalar;
      pool.parallel_for(m_blocks * n_blocks, chunk_for(task_work, 200000), [&](int64_t b, int64_t e) {
        for (int64_t tsk = b; tsk < e; ++tsk) {
          const int64_t mi = tsk / n_blocks, ni = tsk % n_blocks;
          gemm(a, mi * mb, std::min(a.M, (mi + 1) * mb), ni * nb, std::min(panels, (ni + 1) * nb));
        }
      });
      break;
    }
    case OpKind::matmul: {
      f32::MatmulArgs a{inf(0), inf(1), outf, I[0], I[1], I[2], I[3], I[5], I[6], I[4] != 0, op.floats[0]};
      auto mm = avx2 ? f32::matmul_f32_avx2 : f32::matmul_f32_scalar;
      pool.parallel_for(a.batch, chunk_for(a.M * a.N * std::max<int64_t>(a.K, 1), 100000),
                        [&](int64_t b, int64_t e) { mm(a, b, e); });
      break;
    }
    case OpKind::layernorm: {
      const int64_t D = I[1];
      const float* x = inf(0);
      const float* g = inf(1);
      const float* bt = inf(2);
      const float eps = op.floats[0];
      pool.parallel_for(I[0], chunk_for(D * 4), [&](int64_t b, int64_t e) {
        (avx2 ? f32::layernorm_f32_avx2 : f32::layernorm_f32_scalar)(x, g, bt, outf, D, eps, b, e);
      });
      break;
    }
    case OpKind::softmax: {
      const int64_t D = I[1], br = I[2];
      const float* x = inf(0);
      const float* bias = inf(1);
      pool.parallel_for(I[0], chunk_for(D * 8), [&](int64_t b, int64_t e) {
        (avx2 ? f32::softmax_f32_avx2 : f32::softmax_f32_scalar)(x, bias, br, outf, D, b, e);
      });
      break;
    }
    case OpKind::unary: {
      const int op_k = (int)I[0];
      const float p0 = op.floats.size() > 0 ? op.floats[0] : 0.0f, p1 = op.floats.size() > 1 ? op.floats[1] : 0.0f;
      const float* x = inf(0);
      const int64_t n = desc_.tensors[op.outputs[0]].elements();
      const int64_t per = (op_k == f32::u_relu || op_k == f32::u_neg || op_k == f32::u_abs || op_k == f32::u_scale_shift ||
                           op_k == f32::u_clip) ? 1 : 16;
      pool.parallel_for(n, chunk_for(per, 65536), [&](int64_t b, int64_t e) {
        (avx2 ? f32::unary_f32_avx2 : f32::unary_f32_scalar)(op_k, p0, p1, x + b, outf + b, e - b);
      });
      break;
    }
    case OpKind::binary: {
      const BinaryShape& s = states_[i].bin;
      const int bop = (int)I[0];
      const float* A = inf(0);
      const float* B = inf(1);
      const int r = s.rank;
      const int64_t inner = s.dims[r - 1], ias = s.as[r - 1], ibs = s.bs[r - 1];
      auto bin = avx2 ? f32::binary_f32_avx2 : f32::binary_f32_scalar;
      if (r == 1) {
        pool.parallel_for(inner, chunk_for(bop == f32::b_pow ? 16 : 1, 65536), [&](int64_t b, int64_t e) {
          bin(bop, A + b * ias, ias, B + b * ibs, ibs, outf + b, e - b);
        });
        break;
      }
      pool.parallel_for(s.rows, chunk_for(inner * (bop == f32::b_pow ? 16 : 1), 65536), [&](int64_t b, int64_t e) {
        // coordinates of row b in the outer dims (all but the last)
        int64_t c[kMaxRank] = {};
        int64_t rem = b, ao = 0, bo = 0;
        for (int k = r - 2; k >= 0; --k) {
          c[k] = rem % s.dims[k];
          rem /= s.dims[k];
          ao += c[k] * s.as[k];
          bo += c[k] * s.bs[k];
        }
        for (int64_t row = b; row < e; ++row) {
          bin(bop, A + ao, ias, B + bo, ibs, outf + row * inner, inner);
          for (int k = r - 2; k >= 0; --k) {  // odometer increment
            ao += s.as[k];
            bo += s.bs[k];
            if (++c[k] < s.dims[k]) break;
            ao -= c[k] * s.as[k];
            bo -= c[k] * s.bs[k];
            c[k] = 0;
          }
        }
      });
      break;
    }
    case OpKind::reduce: {
      const int64_t outer = I[0], red = I[1], inner = I[2];
      const float* x = inf(0);
      const int rop = (int)I[3];
      pool.parallel_for(outer, chunk_for(red * inner), [&](int64_t b, int64_t e) {
        f32::reduce_f32(rop, x, outf, outer, red, inner, b, e);
      });
      break;
    }
    case OpKind::argmax: {
      const int64_t D = I[1];
      const float* x = inf(0);
      int64_t* y = static_cast<int64_t*>(out);
      pool.parallel_for(I[0], chunk_for(D), [&](int64_t b, int64_t e) { f32::argmax_f32(x, y, D, b, e); });
      break;
    }
    case OpKind::cast: {
      const TensorDesc& xt = desc_.tensors[op.inputs[0]];
      const TensorDesc& yt = desc_.tensors[op.outputs[0]];
      const int64_t n = yt.elements();
      if (xt.dtype == yt.dtype) {
        if (in(0) != out && n) std::memmove(out, in(0), (size_t)yt.nbytes());
        break;
      }
      ConvertFn f = convert_fn(xt.dtype, yt.dtype);
      const void* x = in(0);
      // Same element size may alias exactly (validated): element i is read before it is written.
      pool.parallel_for(n, chunk_for(1, 65536), [&](int64_t b, int64_t e) { f(x, out, b, e); });
      break;
    }
    default:
      if (states_[i].q) run_int_op(desc_, i, *states_[i].q, ptr_.data(), isa_, pool);
      break;
  }
}

}  // namespace swinq
