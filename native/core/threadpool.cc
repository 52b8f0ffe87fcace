#include "swinq/threadpool.h"

#include <algorithm>
#include <chrono>
#include <immintrin.h>
#ifdef __linux__
#include <sched.h>
#endif

namespace swinq {

// The current job is published as one 64-bit word: generation (16 bits) | chunk count (24) | next
// chunk (24). A worker claims a chunk with a CAS that also checks the generation, so a worker that
// wakes late can never take a chunk of a newer job with the parameters of an older one.
namespace {
constexpr int kIdxBits = 24;
constexpr uint64_t kIdxMask = (1ull << kIdxBits) - 1;
constexpr int64_t kMaxChunks = (int64_t)kIdxMask;
inline uint64_t pack(uint64_t gen, uint64_t count, uint64_t next) {
  return (gen << (2 * kIdxBits)) | (count << kIdxBits) | next;
}
inline uint64_t gen_of(uint64_t w) { return w >> (2 * kIdxBits); }
inline uint64_t count_of(uint64_t w) { return (w >> kIdxBits) & kIdxMask; }
inline uint64_t next_of(uint64_t w) { return w & kIdxMask; }
// ~40 µs of spinning before a worker sleeps: back-to-back ops wake no one, an idle plan costs nothing.
constexpr int kSpinIters = 2000;
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

// The CPU the calling thread runs on (-1 where unknown).
static int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}

// A futex wake-up may place the woken worker on the waker's CPU, the caller's (measured on a VM in
// 285–295 of 300 wake-ups; likely because the other vCPU, halted by the host, counts as preempted).
// The worker then spun and worked on the caller's CPU, taking its time until the load balancer
// moved one of them: the caller's notify returned after the worker's whole 37 µs spin, and a
// micro-Swin run after a 1 ms pause took 1.6–1.9× the 1-thread time. So a worker woken there moves
// off it: its allowed CPUs without that one (the kernel migrates it at once), then all of them again.
static void move_off_cpu(int cpu) {
#ifdef __linux__
  if (cpu < 0 || sched_getcpu() != cpu) return;
  cpu_set_t allowed, others;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || cpu >= CPU_SETSIZE) return;
  others = allowed;
  CPU_CLR(cpu, &others);
  if (CPU_COUNT(&others) == 0) return;
  if (sched_setaffinity(0, sizeof others, &others) == 0) sched_setaffinity(0, sizeof allowed, &allowed);
#else
  (void)cpu;
#endif
}

int resolve_threads(int threads) {
  if (threads <= 0) threads = (int)std::max(1u, std::thread::hardware_concurrency());
  return std::min(threads, 64);
}

ThreadPool::ThreadPool(int threads) { start(resolve_threads(threads)); }
ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::set_threads(int threads) {
  threads = resolve_threads(threads);
  if (threads == this->threads()) return;
  stop();
  start(threads);
}

void ThreadPool::start(int threads) {
  quit_ = false;
  asleep_.store(0, std::memory_order_relaxed);  // the stopped workers' count
  // the generation before any job of these workers: one published before a worker thread gets to
  // run is still new to it (reading the generation inside the thread would skip that job)
  const uint64_t seen = gen_of(job_.load(std::memory_order_acquire));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, seen, i] { worker_loop(seen, i); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

// Claims and runs chunks of the job with generation `gen` until none is left.
static inline bool claim(std::atomic<uint64_t>& word, uint64_t gen, int64_t* idx) {
  uint64_t w = word.load(std::memory_order_acquire);
  for (;;) {
    if (gen_of(w) != gen || next_of(w) >= count_of(w)) return false;
    if (word.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      *idx = (int64_t)next_of(w);
      return true;
    }
  }
}


void ThreadPool::worker_loop(uint64_t seen, int index) {
  for (;;) {
    uint64_t w = job_.load(std::memory_order_acquire);
    int spins = 0;
    while (gen_of(w) == seen && spins < kSpinIters) {
      _mm_pause();
      ++spins;
      w = job_.load(std::memory_order_acquire);
    }
    if (gen_of(w) == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      const uint64_t epoch = wake_epoch_;
      while (!quit_ && epoch == wake_epoch_ && gen_of(job_.load(std::memory_order_acquire)) == seen) {
        // counted under mu_ after the last look at the job: a publish after it sees the count.
        // A spurious wake-up counts this worker twice, which costs one needless notify.
        asleep_.fetch_add(1, std::memory_order_relaxed);
        wake_.wait(lk);
      }
      if (quit_) return;
      lk.unlock();
      move_off_cpu(waker_cpu_.load(std::memory_order_relaxed));
      w = job_.load(std::memory_order_acquire);
      if (gen_of(w) == seen) continue;  // woken ahead of a run: spin for its first job
    }
    seen = gen_of(w);
    if (static_per_.load(std::memory_order_relaxed) > 0) {
      // its own part, unless the caller took it over already. The job's fields are read after the
      // fetch_or, which acquires the caller's release of parts_taken_: a worker waking so late that
      // the caller has moved on to the next static job does that job's part, with its fields.
      const uint64_t bit = uint64_t(1) << index;
      if (!(parts_taken_.fetch_or(bit, std::memory_order_acq_rel) & bit)) {
        const int64_t per = static_per_.load(std::memory_order_relaxed), b = index * per, e = std::min(n_, b + per);
        if (b < e) body_(ctx_, b, e);
        done_chunks_.fetch_add(1, std::memory_order_acq_rel);
      }
      continue;
    }
    int64_t idx;
    while (claim(job_, seen, &idx)) {
      const int64_t b = idx * chunk_, e = std::min(n_, b + chunk_);
      body_(ctx_, b, e);
      done_chunks_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

// Under mu_: whether some worker sleeps un-notified; if so they are now notified-to-be, and told
// this thread's CPU (stored under mu_, which a woken worker takes before reading it).
bool ThreadPool::take_sleepers() {
  if (asleep_.load(std::memory_order_relaxed) == 0) return false;
  asleep_.store(0, std::memory_order_relaxed);
  waker_cpu_.store(current_cpu(), std::memory_order_relaxed);
  return true;
}

void ThreadPool::wake_sleepers() {
  if (asleep_.load(std::memory_order_relaxed) == 0 || now_ns() < solo_until_) return;
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++wake_epoch_;
    wake = take_sleepers();
  }
  if (wake) wake_.notify_all();
}

// Runs [0, n) on the caller when the job is one piece, the pool has no workers, is set serial or
// is in a solo period (after a stall); otherwise returns false with *t_start = now, for join's stall policy.
bool ThreadPool::ran_inline(bool one_piece, Body body, void* ctx, int64_t n, int64_t* t_start) {
  if (!workers_.empty() && !one_piece && !serial_) {
    *t_start = now_ns();
    if (*t_start >= solo_until_) return false;
  }
  body(ctx, 0, n);
  return true;
}

// The job's fields, then the job word with a new generation (release: a worker that sees the
// generation sees the fields), then a wake-up for the workers that went to sleep. A static job
// (n_chunks 0) also releases parts_taken_ after the fields: a worker still on the job before may
// find this one through it. Returns the generation.
uint64_t ThreadPool::publish(Body body, void* ctx, int64_t n, int64_t n_chunks) {
  body_ = body;
  ctx_ = ctx;
  n_ = n;
  done_chunks_.store(0, std::memory_order_relaxed);
  if (n_chunks == 0) parts_taken_.store(1, std::memory_order_release);  // part 0 is the caller's
  uint64_t gen;
  bool wake;
  {
    std::lock_guard<std::mutex> lk(mu_);
    gen = (gen_of(job_.load(std::memory_order_relaxed)) + 1) & 0xffff;
    job_.store(pack(gen, (uint64_t)n_chunks, 0), std::memory_order_release);
    wake = take_sleepers();
  }
  // Only for workers that went to sleep since the last notify: one still on its way back (≥ 50 µs
  // for a halted vCPU) counts as a waiter, and each job published meanwhile would make the caller
  // pay a futex call for nothing.
  if (wake) wake_.notify_all();
  return gen;
}

void ThreadPool::parallel_for(int64_t n, int64_t chunk, Body body, void* ctx) {
  if (n <= 0) return;
  if (chunk < 1) chunk = 1;
  int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_chunks > kMaxChunks) {
    chunk = (n + kMaxChunks - 1) / kMaxChunks;
    n_chunks = (n + chunk - 1) / chunk;
  }
  int64_t t_start;
  if (ran_inline(n_chunks == 1, body, ctx, n, &t_start)) return;
  chunk_ = chunk;
  const uint64_t gen = publish(body, ctx, n, n_chunks);
  int64_t idx;
  while (claim(job_, gen, &idx)) {
    const int64_t b = idx * chunk, e = std::min(n, b + chunk);
    body(ctx, b, e);
    done_chunks_.fetch_add(1, std::memory_order_acq_rel);
  }
  join(n_chunks, t_start);
}

void ThreadPool::join(int64_t n_chunks, int64_t t_start) {
  if (done_chunks_.load(std::memory_order_acquire) < n_chunks) {
    const int64_t t_own = now_ns();
    int spins = 0;
    while (done_chunks_.load(std::memory_order_acquire) < n_chunks) {
      if (++spins < 4096) _mm_pause();
      else std::this_thread::yield();
    }
    const int64_t t_end = now_ns(), wait = t_end - t_own;
    if (wait > stall_ns_ && wait > t_own - t_start) {  // a worker held a chunk far beyond its share
      ++stalls_;
      solo_ns_ = std::min(solo_max_ns_, solo_ns_ ? 2 * solo_ns_ : solo_min_ns_);
      solo_until_ = t_end + solo_ns_;
      return;
    }
  }
  // clean for four solo periods since the last one ended: forget the backoff
  if (solo_ns_ && now_ns() > solo_until_ + 4 * solo_ns_) solo_ns_ = 0;
}

void ThreadPool::parallel_for_static(int64_t n, int64_t align, Body body, void* ctx) {
  if (n <= 0) return;
  if (align < 1) align = 1;
  const int64_t T = threads(), units = (n + align - 1) / align, per = (units + T - 1) / T * align;
  int64_t t_start;
  if (ran_inline(per >= n, body, ctx, n, &t_start)) return;
  static_per_.store(per, std::memory_order_relaxed);
  publish(body, ctx, n, 0);  // no chunks to claim: the parts are fixed
  body(ctx, 0, std::min(n, per));
  done_chunks_.fetch_add(1, std::memory_order_acq_rel);
  for (int64_t i = 1; i < T; ++i) {  // parts whose thread has not started them yet
    if (parts_taken_.fetch_or(uint64_t(1) << i, std::memory_order_acq_rel) & (uint64_t(1) << i)) continue;
    const int64_t b = i * per, e = std::min(n, b + per);
    if (b < e) body(ctx, b, e);
    done_chunks_.fetch_add(1, std::memory_order_acq_rel);
  }
  join(T, t_start);
  static_per_.store(0, std::memory_order_relaxed);  // the next parallel_for's workers claim chunks
}

}  // namespace swinq
