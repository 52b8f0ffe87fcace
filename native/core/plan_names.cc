#include "swinq/plan.h"

namespace swinq {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::i8: case DType::u8: return 1;
    case DType::i16: return 2;
    case DType::i64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::i32: return "int32";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::i16: return "int16";
    case DType::i64: return "int64";
  }
  return "unknown";
}

namespace {
struct ByteRange { int storage; int64_t region, begin, end; };
ByteRange byte_range(const TensorDesc& x) {
  if (x.storage == Storage::arena || x.storage == Storage::constant)
    return {(int)x.storage, 0, x.offset, x.offset + x.nbytes()};
  return {(int)x.storage, x.offset, 0, x.nbytes()};
}
}  // namespace

bool tensors_overlap(const TensorDesc& a, const TensorDesc& b) {
  const ByteRange ra = byte_range(a), rb = byte_range(b);
  if (ra.storage != rb.storage || ra.region != rb.region) return false;
  if (ra.begin == ra.end || rb.begin == rb.end) return false;
  return ra.begin < rb.end && rb.begin < ra.end;
}

bool tensors_alias(const TensorDesc& a, const TensorDesc& b) {
  const ByteRange ra = byte_range(a), rb = byte_range(b);
  return ra.storage == rb.storage && ra.region == rb.region && ra.begin == rb.begin && ra.end == rb.end;
}

const char* op_name(OpKind k) {
  static const char* names[] = {
#define X(name, wire) wire,
#include "swinq/ops.def"
#undef X
  };
  int i = (int)k;
  return (i >= 0 && i < (int)OpKind::count_) ? names[i] : "unknown";
}

}  // namespace swinq
