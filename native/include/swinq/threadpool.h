// A small persistent thread pool: parallel_for hands out chunks of [0, n) through an atomic
// counter (dynamic claiming, so a slow core does not hold the others up). The caller works too.
// Work below `grain` items or on a 1-thread pool runs inline: tiny ops never wake anyone.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace swinq {

class ThreadPool {
 public:
  // body(ctx, begin, end) processes items [begin, end).
  using Body = void (*)(void* ctx, int64_t begin, int64_t end);

  explicit ThreadPool(int threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return (int)workers_.size() + 1; }
  // Not thread-safe against a concurrent parallel_for (the executor holds its run mutex).
  void set_threads(int threads);

  // Splits [0, n) into chunks of `chunk` items; runs inline when n <= chunk or one thread.
  void parallel_for(int64_t n, int64_t chunk, Body body, void* ctx);

  template <class F>
  void parallel_for(int64_t n, int64_t chunk, F&& f) {
    using Fn = std::remove_reference_t<F>;  // F is an lvalue reference type for named lambdas
    parallel_for(n, chunk, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
                 const_cast<void*>(static_cast<const void*>(&f)));
  }

 private:
  void start(int threads);
  void stop();
  void worker_loop();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  bool quit_ = false;
  // the current job: generation | chunk count | next chunk (see threadpool.cc)
  std::atomic<uint64_t> job_{0};
  Body body_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> done_chunks_{0};
};

// Threads to use for `threads` as given by the user: 0 = all hardware threads, capped at 64.
int resolve_threads(int threads);

}  // namespace swinq
