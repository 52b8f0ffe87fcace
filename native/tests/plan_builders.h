// Small constructors for hand-built plans in the native executor tests.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "swinq/plan.h"

inline swinq::TensorDesc T(swinq::DType dt, std::initializer_list<int64_t> dims, swinq::Storage s, int64_t off) {
  swinq::TensorDesc t;
  t.dtype = dt;
  t.rank = (int32_t)dims.size();
  int k = 0;
  for (int64_t d : dims) t.dims[k++] = d;
  t.storage = s;
  t.offset = off;
  return t;
}

inline swinq::OpDesc Op(swinq::OpKind k, std::vector<int32_t> in, std::vector<int32_t> out, std::vector<int64_t> ints,
                        std::vector<float> floats = {}, std::string name = "node") {
  swinq::OpDesc o;
  o.kind = k;
  o.inputs = std::move(in);
  o.outputs = std::move(out);
  o.ints = std::move(ints);
  o.floats = std::move(floats);
  o.name = std::move(name);
  return o;
}
