// Shared by the integer ops (native/ops/*_q.cc, quantize.cc): plan dtypes as qkernels types.
#pragma once
#include "swinq/plan.h"
#include "swinq/qkernels.h"

namespace swinq {

inline q::QType qt(DType t) {
  switch (t) {
    case DType::i8: return q::QType::s8;
    case DType::u8: return q::QType::u8;
    case DType::i16: return q::QType::s16;
    default: return q::QType::s32;
  }
}
inline int32_t dmin(DType t) { return q::qtype_min(qt(t)); }
inline int32_t dmax(DType t) { return q::qtype_max(qt(t)); }

const std::initializer_list<DType> k8_16 = {DType::i8, DType::u8, DType::i16};
const std::initializer_list<DType> k8 = {DType::i8, DType::u8};

}  // namespace swinq
