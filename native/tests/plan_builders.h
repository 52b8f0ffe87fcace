// Small constructors for hand-built plans in the native executor tests.
#pragma once
#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "swinq/executor.h"
#include "swinq/plan.h"
#include "test_check.h"

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

// Expects Plan::create to throw a std::runtime_error whose message holds every string in `parts`.
inline void expect_error(const char* label, swinq::PlanDesc d, std::initializer_list<const char*> parts) {
  using swinq_test::failures;
  try {
    auto p = swinq::Plan::create(std::move(d), swinq::PlanOptions{});
    std::fprintf(stderr, "%s: expected an error, plan was accepted\n", label);
    ++failures;
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    for (const char* part : parts)
      if (m.find(part) == std::string::npos) {
        std::fprintf(stderr, "%s: message '%s' lacks '%s'\n", label, m.c_str(), part);
        ++failures;
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: wrong exception type: %s\n", label, e.what());
    ++failures;
  }
}
