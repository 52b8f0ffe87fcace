// A small persistent thread pool: parallel_for hands out chunks of [0, n) through an atomic
// counter (dynamic claiming, so a slow core does not hold the others up). The caller works too.
// Work below `grain` items or on a 1-thread pool runs inline: tiny ops never wake anyone.
// Stalls: on a shared machine a worker can be preempted while it holds a claimed chunk, and the
// caller then waits for the scheduler (milliseconds) although every other chunk is done. When the
// caller waits longer than the stall threshold (and longer than its own share of the job took), the
// pool runs the following jobs inline for a solo period (doubling while stalls repeat, reset after
// four clean periods), so a busy second core costs about one core's speed, not a stall per op.
// Idle: a worker spins ≈ 40 µs after a job, then sleeps; a run wakes sleepers first
// (wake_sleepers), each sleeper is notified once, and one woken onto the caller's CPU moves off it
// (docs/latency.md, "Between requests").
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

  // Splits [0, n) into chunks of `chunk` items; runs inline when n <= chunk, one thread, or solo.
  void parallel_for(int64_t n, int64_t chunk, Body body, void* ctx);

  // Stall policy (defaults kStallNs, kSoloMinNs, kSoloMaxNs); stalls() counts the detected ones.
  static constexpr int64_t kStallNs = 500000, kSoloMinNs = 20000000, kSoloMaxNs = 1000000000;
  void set_stall_policy(int64_t stall_ns, int64_t solo_min_ns, int64_t solo_max_ns) {
    stall_ns_ = stall_ns;
    solo_min_ns_ = solo_min_ns;
    solo_max_ns_ = solo_max_ns;
  }
  int64_t stalls() const { return stalls_; }
  // Every job inline on the caller while set (the executor's per-op choice; caller-only state).
  void set_serial(bool serial) { serial_ = serial; }

  // A run is about to start: workers that went to sleep (no job for the spin time, e.g. between a
  // server's requests) wake now and spin, so the notify (≈ 4 µs) and their way back (≥ 50 µs for
  // a vCPU the host halted) overlap the ops before the first pool job. No-op when none sleeps or
  // the pool is solo.
  void wake_sleepers();
  // Workers asleep and not yet notified (tests, benchmarks).
  int sleeping_workers() const { return asleep_.load(std::memory_order_relaxed); }

  // Splits [0, n) into threads() contiguous parts of whole `align`-item units, part i for thread i
  // (the caller is thread 0): consecutive row-wise ops of a batch-1 plan then find their rows in
  // the cache of the core that wrote them. The caller takes over a part its thread has not started
  // when its own is done, so a worker that is asleep or preempted costs no wait. Inline when solo.
  void parallel_for_static(int64_t n, int64_t align, Body body, void* ctx);

  template <class F>
  void parallel_for_static(int64_t n, int64_t align, F&& f) {
    using Fn = std::remove_reference_t<F>;
    parallel_for_static(n, align, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
                        const_cast<void*>(static_cast<const void*>(&f)));
  }

  template <class F>
  void parallel_for(int64_t n, int64_t chunk, F&& f) {
    using Fn = std::remove_reference_t<F>;  // F is an lvalue reference type for named lambdas
    parallel_for(n, chunk, [](void* c, int64_t b, int64_t e) { (*static_cast<Fn*>(c))(b, e); },
                 const_cast<void*>(static_cast<const void*>(&f)));
  }

 private:
  void start(int threads);
  void stop();
  void worker_loop(uint64_t seen, int index);
  bool ran_inline(bool one_piece, Body body, void* ctx, int64_t n, int64_t* t_start);
  uint64_t publish(Body body, void* ctx, int64_t n, int64_t n_chunks);
  bool take_sleepers();  // under mu_: clears asleep_, records the waker's CPU; true if any slept
  // the caller's wait for the workers' chunks, with the stall policy (t_start: when the job began)
  void join(int64_t n_chunks, int64_t t_start);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  bool quit_ = false;
  uint64_t wake_epoch_ = 0;  // bumped by wake_sleepers (under mu_): a sleeper's reason to wake
  // workers waiting on wake_ and not yet notified (changed under mu_; read without it for a check)
  std::atomic<int> asleep_{0};
  std::atomic<int> waker_cpu_{-1};  // the CPU of the last notify's caller (move_off_cpu)
  // the current job: generation | chunk count | next chunk (see threadpool.cc)
  // job_ and done_chunks_ on cache lines of their own: every claim and every finished chunk is an
  // atomic on one of them, and sharing a line with each other (or with the fields below) makes each
  // such access a cross-core transfer of both
  alignas(64) std::atomic<uint64_t> job_{0};
  Body body_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> static_per_{0};  // > 0: a parallel_for_static job, part i = [i·per, (i+1)·per) for thread i
  alignas(64) std::atomic<uint64_t> parts_taken_{0};  // its parts started, bit i = part i
  alignas(64) std::atomic<int64_t> done_chunks_{0};
  alignas(64) char line_end_ = 0;  // keeps the fields after done_chunks_ off its line
  // stall policy state (touched only by the thread calling parallel_for)
  int64_t stall_ns_ = kStallNs, solo_min_ns_ = kSoloMinNs, solo_max_ns_ = kSoloMaxNs;
  int64_t solo_until_ = 0, solo_ns_ = 0, stalls_ = 0;
  bool serial_ = false;
};

// Threads to use for `threads` as given by the user: 0 = all hardware threads, capped at 64.
int resolve_threads(int threads);

}  // namespace swinq
