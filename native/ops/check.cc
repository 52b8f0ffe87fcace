// The checks every op's validate() is written in (swinq/op.h). Messages name the op, its node and
// the field, so a bad plan from any producer can be traced to the ONNX node it came from.
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "swinq/op.h"
#include "int_common.h"

namespace swinq {

std::string str(int64_t v) { return std::to_string(v); }


void OpCheck::fail(const std::string& msg) const {
  std::ostringstream s;
  s << "plan op #" << index << " " << op_name(op.kind);
  if (!op.name.empty()) s << " (node '" << op.name << "')";
  throw std::runtime_error(s.str() + ": " + msg);
}

void OpCheck::arity(size_t min_in, size_t max_in, std::initializer_list<const char*> names) const {
  std::vector<const char*> nm(names);
  if (op.inputs.size() < min_in || op.inputs.size() > max_in)
    fail("has " + str((int64_t)op.inputs.size()) + " inputs, expected " +
         (min_in == max_in ? str((int64_t)min_in) : str((int64_t)min_in) + ".." + str((int64_t)max_in)));
  if (op.outputs.size() != 1) fail("has " + str((int64_t)op.outputs.size()) + " outputs, expected 1");
  for (size_t i = 0; i < op.inputs.size(); ++i) {
    const int32_t id = op.inputs[i];
    if (id == -1 && i >= min_in) continue;
    if (id < 0 || id >= (int32_t)d.tensors.size())
      fail(std::string("input ") + nm[i] + " = " + str(id) + " is not a tensor id" +
           (i >= min_in ? " (or -1 for absent)" : ""));
  }
  const int32_t o = op.outputs[0];
  if (o < 0 || o >= (int32_t)d.tensors.size()) fail("output = " + str(o) + " is not a tensor id");
  const Storage s = t(o).storage;
  if (s == Storage::constant || s == Storage::input)
    fail("output tensor #" + str(o) + " is a " + (s == Storage::constant ? "constant" : "graph input") +
         " and cannot be written");
}

void OpCheck::ints_len(size_t n, const char* layout) const {
  if (op.ints.size() != n)
    fail("ints has " + str((int64_t)op.ints.size()) + " values, expected " + str((int64_t)n) + " " + layout);
}

void OpCheck::ints_len_in(size_t lo, size_t hi, const char* layout) const {
  if (op.ints.size() < lo || op.ints.size() > hi)
    fail("ints has " + str((int64_t)op.ints.size()) + " values, expected " + str((int64_t)lo) + " or " +
         str((int64_t)hi) + " " + layout);
}

void OpCheck::floats_len(size_t n, const char* layout) const {
  if (op.floats.size() != n)
    fail("floats has " + str((int64_t)op.floats.size()) + " values, expected " + str((int64_t)n) + " " + layout);
}

void OpCheck::nonneg(std::initializer_list<const char*> names) const {
  size_t i = 0;
  for (const char* n : names) {
    if (I(i) < 0) fail("ints[" + str((int64_t)i) + "] " + n + " = " + str(I(i)) + " is negative");
    ++i;
  }
}

void OpCheck::dtype(int32_t id, const char* name, std::initializer_list<DType> ok) const {
  std::string list;
  for (DType x : ok) {
    if (t(id).dtype == x) return;
    list += (list.empty() ? "" : " or ") + std::string(dtype_name(x));
  }
  fail(std::string(name) + " is " + dtype_name(t(id).dtype) + ", expected " + list);
}

void OpCheck::all_f32(std::initializer_list<std::pair<int32_t, const char*>> v) const {
  for (auto& p : v)
    if (p.first >= 0) dtype(p.first, p.second, {DType::f32});
}

void OpCheck::elems(int32_t id, const char* name, int64_t want, const std::string& formula) const {
  if (t(id).elements() != want)
    fail(std::string(name) + " has " + str(t(id).elements()) + " elements, expected " + formula + " = " + str(want));
}

void OpCheck::constant(int32_t id, const char* name) const {
  if (t(id).storage != Storage::constant) fail(std::string(name) + " (tensor #" + str(id) + ") must be a constant");
}

void OpCheck::row_permutation(int32_t id, const char* name, int64_t rows, const char* rows_name) const {
  dtype(id, name, {DType::i32});
  constant(id, name);
  elems(id, name, rows, rows_name);
  const int32_t* r = cdata<int32_t>(id);
  std::vector<uint8_t> seen((size_t)rows, 0);
  for (int64_t i = 0; i < rows; ++i) {
    const std::string at = std::string(name) + "[" + str(i) + "] = " + str(r[i]);
    if (r[i] < 0 || r[i] >= rows) fail(at + " is outside [0, " + rows_name + ")");
    if (seen[(size_t)r[i]]++) fail(at + " repeats a row (must be a permutation)");
  }
}

int64_t OpCheck::prod(std::initializer_list<int64_t> v, const char* what) const {
  int64_t r = 1;
  for (int64_t x : v)
    if (__builtin_mul_overflow(r, x, &r) || r > kMaxBytes) fail(std::string(what) + " overflows");
  return r;
}

void OpCheck::no_overlap(int32_t input, const char* name, bool alias_ok) const {
  if (input < 0) return;
  if (!tensors_overlap(t(input), t(out()))) return;
  if (alias_ok && tensors_alias(t(input), t(out()))) return;
  fail("output tensor #" + str(out()) + (alias_ok ? " partially overlaps " : " overlaps ") + name + " (tensor #" +
       str(input) + ")" + (alias_ok ? "; only an exact alias is allowed" : ""));
}

void OpCheck::batch_strides(int32_t a, int32_t b, int64_t batch, int64_t M, int64_t K, int64_t N,
                            size_t stride_at) const {
  if (batch <= 0) return;
  for (int k = 0; k < 2; ++k) {
    const int64_t stride = I(stride_at + k), mat = prod({k ? K : M, k ? N : K}, "matrix size");
    const int64_t need = prod({batch - 1, stride}, "batch stride") + mat;
    const int64_t have = t(k ? b : a).elements();
    if (need > have)
      fail(std::string(k ? "b" : "a") + " has " + str(have) + " elements, but batch " + str(batch) + " × stride " +
           str(stride) + " needs " + str(need));
  }
}

int32_t OpCheck::zp(size_t i, const char* name, DType ty, bool zero_only16) const {
  const int64_t v = I(i);
  if (v < dmin(ty) || v > dmax(ty))
    fail("ints[" + str((int64_t)i) + "] " + name + " = " + str(v) + " is outside " + dtype_name(ty) + " [" +
         str(dmin(ty)) + ", " + str(dmax(ty)) + "]");
  if (zero_only16 && ty == DType::i16 && v != 0)
    fail("ints[" + str((int64_t)i) + "] " + name + " = " + str(v) + " must be 0 for an int16 tensor");
  return (int32_t)v;
}

int32_t OpCheck::y_max(size_t i, int64_t y_zp, DType ty) const {
  if (I(i) < y_zp || I(i) > dmax(ty))
    fail("ints[" + str((int64_t)i) + "] y_max = " + str(I(i)) + " is outside [y_zp, " + str(dmax(ty)) + "]");
  return (int32_t)I(i);
}

double OpCheck::scale(size_t i, const char* name) const {
  const float f = op.floats[i];
  if (!(std::isfinite(f) && f > 0.0f))
    fail("floats[" + str((int64_t)i) + "] " + name + " = " + std::to_string(f) + " must be finite and > 0");
  return (double)f;
}

void OpCheck::requant_tensors(int32_t m, int32_t s, int64_t channels, bool positive) const {
  dtype(m, "mult", {DType::i32});
  dtype(s, "shift", {DType::i32});
  constant(m, "mult");
  constant(s, "shift");
  const int64_t n = t(m).elements();
  if (n != 1 && n != channels)
    fail("mult has " + str(n) + " elements, expected 1 (per tensor) or " + str(channels) + " (per channel)");
  elems(s, "shift", n, "mult elements");
  const int32_t* mv = cdata<int32_t>(m);
  const int32_t* sv = cdata<int32_t>(s);
  for (int64_t c = 0; c < n; ++c) {
    if (sv[c] < 0 || sv[c] > 62) fail("shift[" + str(c) + "] = " + str(sv[c]) + " is outside [0, 62]");
    if (positive && mv[c] <= 0) fail("mult[" + str(c) + "] = " + str(mv[c]) + " must be > 0 with relu");
  }
}

}  // namespace swinq
