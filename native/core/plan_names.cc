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
