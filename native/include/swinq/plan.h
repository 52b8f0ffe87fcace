// The compiled plan: the one structure TypeScript hands to the native executor.
// It is plain data (no Node types): tensors with a storage class and byte offset, and a flat
// list of ops (ops.def). The executor validates every size in it before it runs anything.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace swinq {

enum class DType : int32_t { f32 = 0, i32 = 1, i8 = 2, u8 = 3, i16 = 4, i64 = 5 };
size_t dtype_size(DType t);
const char* dtype_name(DType t);

enum class OpKind : int32_t {
#define X(name, wire) name,
#include "swinq/ops.def"
#undef X
  count_
};
const char* op_name(OpKind k);

enum class Storage : int32_t { arena = 0, constant = 1, input = 2, output = 3 };

constexpr int kMaxRank = 8;

struct TensorDesc {
  DType dtype = DType::f32;
  int32_t rank = 0;
  int64_t dims[kMaxRank] = {};
  Storage storage = Storage::arena;
  // arena/constant: byte offset into that region; input/output: the run's input/output index.
  int64_t offset = 0;
  int64_t elements() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  int64_t nbytes() const { return elements() * (int64_t)dtype_size(dtype); }
};

// Whether two tensors share bytes: same storage region and intersecting, non-empty byte ranges
// (arena/constant tensors by byte range; input/output tensors are whole buffers by index).
bool tensors_overlap(const TensorDesc& a, const TensorDesc& b);
// Whether two tensors are exactly the same bytes (an in-place alias).
bool tensors_alias(const TensorDesc& a, const TensorDesc& b);

struct OpDesc {
  OpKind kind = OpKind::copy;
  std::vector<int32_t> inputs;   // tensor ids; -1 = absent optional input
  std::vector<int32_t> outputs;  // tensor ids
  std::vector<int64_t> ints;     // op parameters, see ops.def
  std::vector<float> floats;
  std::string name;              // the ONNX node(s) this op came from, for error messages
};

struct PlanDesc {
  std::vector<TensorDesc> tensors;
  std::vector<OpDesc> ops;
  std::vector<uint8_t> constants;  // the constant region (weights, index maps, tables)
  int64_t arena_bytes = 0;
  std::vector<int32_t> inputs;     // tensor ids of the graph inputs, in order
  std::vector<int32_t> outputs;    // tensor ids of the graph outputs, in order
};

}  // namespace swinq
