// The failure counter and check macro every native test uses (each test is its own executable).
//   CHECK(cond);                       CHECK(cond, "printf format %d", args…);
// Failures are counted and the first 30 printed; finish() turns the count into the exit code.
#pragma once
#include <cstdarg>
#include <cstdio>

namespace swinq_test {

inline int failures = 0;

inline void fail(const char* file, int line, const char* expr, const char* fmt, ...) {
  if (++failures > 30) return;
  std::fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
  if (fmt && *fmt) {
    std::fputs(": ", stderr);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
  }
  std::fputc('\n', stderr);
}

// Exit code for main(): 0 when every check held.
inline int finish(const char* test_name) {
  if (failures) std::fprintf(stderr, "%s: %d failure(s)\n", test_name, failures);
  else std::printf("%s: all checks passed\n", test_name);
  return failures ? 1 : 0;
}

}  // namespace swinq_test

// `"" __VA_ARGS__` makes the message optional (it must be a string literal when given).
#define CHECK(cond, ...)                                                            \
  do {                                                                              \
    if (!(cond)) ::swinq_test::fail(__FILE__, __LINE__, #cond, "" __VA_ARGS__);     \
  } while (0)
#define EXPECT CHECK
