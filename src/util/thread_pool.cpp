#include "util/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

#include "util/cpu_topology.h"
#include "util/log.h"

namespace edgellm {
namespace {

// Claims per share: the owner takes its share in this many steps, so that about the last 1/kClaimsPerShare
// of it can still be stolen by a thread that finished early (a decode matvec share is ~20-60 us).
constexpr int64_t kClaimsPerShare = 8;

inline uint64_t pack_range(int64_t front, int64_t back) {
  return static_cast<uint64_t>(front) | (static_cast<uint64_t>(back) << 32);
}
inline int64_t range_front(uint64_t r) { return static_cast<int64_t>(r & 0xFFFFFFFFu); }
inline int64_t range_back(uint64_t r) { return static_cast<int64_t>(r >> 32); }

// Busy-wait budget before sleeping: ~2000 pauses (tens of microseconds, the gap between two matmuls
// of a decode step), then ~2000 yields (a millisecond or more, during which a busy neighbour runs).
constexpr int kPauseSpins = 2000;
constexpr int kYieldSpins = 2000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

template <class Ready>
bool spin_until(Ready ready) {
  for (int i = 0; i < kPauseSpins; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  for (int i = 0; i < kYieldSpins; ++i) {
    if (ready()) return true;
    std::this_thread::yield();
  }
  return ready();
}

void pin_to_cpu(std::thread::native_handle_type handle, int cpu, int thread_idx) {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  const int rc = pthread_setaffinity_np(handle, sizeof(set), &set);
  if (rc != 0) EDGELLM_LOG_WARN("thread pool: pinning thread %d to cpu %d failed: %s", thread_idx, cpu, std::strerror(rc));
#else
  (void)handle, (void)cpu, (void)thread_idx;
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads, bool pin_threads, const std::vector<int>& cpus) {
  // The CPUs this pool may use: the requested ones the process may run on, else all it may run on.
  const std::vector<int> allowed = allowed_cpu_ids();
  std::vector<int> usable;
  for (int c : cpus) {
    if (std::find(allowed.begin(), allowed.end(), c) != allowed.end()) usable.push_back(c);
  }
  if (!cpus.empty() && usable.empty()) {
    EDGELLM_LOG_WARN("thread pool: none of the %zu requested cpus is in the process's affinity mask; using any",
                     cpus.size());
  }
  const bool restricted = !usable.empty();
  if (!restricted) usable = allowed;
  const std::vector<CpuCore> cores = read_cpu_cores(usable);
  if (n_threads <= 0) {
    n_threads = restricted ? static_cast<int>(usable.size()) : fastest_cluster_size(cores);
    if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  n_threads_ = n_threads;
  shares_ = std::make_unique<Share[]>(static_cast<size_t>(n_threads_));
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  const char* env = std::getenv("EDGELLM_PIN_THREADS");
  if (env != nullptr && std::strcmp(env, "1") == 0) pin_threads = true;
  if ((pin_threads || restricted) && (n_threads_ > 1 || restricted)) {
    const std::vector<int> order = cpu_ids_fastest_first(cores);
    if (static_cast<int>(order.size()) < n_threads_) {
      EDGELLM_LOG_WARN("thread pool: %d threads but %zu usable cpus; not pinning", n_threads_, order.size());
    } else {
      std::string list = std::to_string(order[0]);
      for (int i = 1; i < n_threads_; ++i) {
        pin_to_cpu(workers_[static_cast<size_t>(i - 1)].native_handle(), order[static_cast<size_t>(i)], i);
        list += ',';
        list += std::to_string(order[static_cast<size_t>(i)]);
      }
      pinned_cpus_ = std::vector<int>(order.begin(), order.begin() + n_threads_);
      EDGELLM_LOG_INFO("thread pool: %d threads pinned to cpus %s (fastest first; the calling thread at its first job)",
                       n_threads_, list.c_str());
    }
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_range(int64_t first_chunk, int64_t end_chunk, int thread_idx) {
  const int64_t n = job_n_, grain = job_grain_;
  const int64_t begin = std::min(n, first_chunk * grain), end = std::min(n, end_chunk * grain);
  if (begin < end) (*job_)(begin, end, thread_idx);
}

void ThreadPool::run_chunks(int thread_idx) {
  // Own share, front to back: one contiguous stream.
  const int64_t step = std::max<int64_t>(
      1, job_chunks_.load(std::memory_order_relaxed) / (static_cast<int64_t>(n_threads_) * kClaimsPerShare));
  std::atomic<uint64_t>& own = shares_[static_cast<size_t>(thread_idx)].range;
  int64_t executed = 0;
  for (;;) {
    uint64_t r = own.load(std::memory_order_acquire);
    int64_t front = 0, take = 0;
    do {
      front = range_front(r);
      const int64_t back = range_back(r);
      if (front >= back) break;
      take = std::min(step, back - front);
    } while (!own.compare_exchange_weak(r, pack_range(front + take, range_back(r)), std::memory_order_acq_rel));
    if (front >= range_back(r)) break;
    run_range(front, front + take, thread_idx);
    executed += take;
  }
  // Then the others' leftovers, half of what is left from the back each time.
  for (int k = 1; k < n_threads_; ++k) {
    std::atomic<uint64_t>& other = shares_[static_cast<size_t>((thread_idx + k) % n_threads_)].range;
    for (;;) {
      uint64_t r = other.load(std::memory_order_acquire);
      int64_t back = 0, take = 0;
      do {
        const int64_t front = range_front(r);
        back = range_back(r);
        if (front >= back) break;
        take = std::max<int64_t>(1, (back - front) / 2);
      } while (!other.compare_exchange_weak(r, pack_range(range_front(r), back - take), std::memory_order_acq_rel));
      if (range_front(r) >= back) break;
      run_range(back - take, back, thread_idx);
      executed += take;
    }
  }
  if (executed == 0) return;
  // Counted once per thread and job. seq_cst, as the caller's store of caller_sleeping_ and its load of
  // chunks_done_: either it sees this count or this thread sees it sleeping.
  const int64_t done = chunks_done_.fetch_add(executed) + executed;
  if (done == job_chunks_.load(std::memory_order_relaxed) && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(mu_);
    done_cv_.notify_one();
  }
}

void ThreadPool::worker_loop(int thread_idx) {
  uint64_t seen = 0;
  for (;;) {
    const auto new_job = [&] { return generation_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(new_job)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_workers_.fetch_add(1);
      wake_cv_.wait(lock, new_job);
      sleeping_workers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    run_chunks(thread_idx);
  }
}

void ThreadPool::pin_caller() {
  const std::thread::id self = std::this_thread::get_id();
  if (pinned_caller_.load(std::memory_order_relaxed) == self) return;
  std::lock_guard<std::mutex> lock(pin_mu_);  // callers on several threads: one caller_mask_ at a time
#if defined(__linux__)
  cpu_set_t previous;
  if (pthread_getaffinity_np(pthread_self(), sizeof(previous), &previous) == 0) {
    caller_mask_.assign(reinterpret_cast<const unsigned char*>(&previous),
                        reinterpret_cast<const unsigned char*>(&previous) + sizeof(previous));
  } else {
    caller_mask_.clear();
  }
  pin_to_cpu(pthread_self(), pinned_cpus_[0], 0);
#endif
  pinned_caller_.store(self, std::memory_order_relaxed);
}

void ThreadPool::release_caller() {
  std::lock_guard<std::mutex> lock(pin_mu_);
  if (pinned_caller_.load(std::memory_order_relaxed) != std::this_thread::get_id()) return;
#if defined(__linux__)
  if (caller_mask_.size() == sizeof(cpu_set_t)) {
    cpu_set_t previous;
    std::memcpy(&previous, caller_mask_.data(), sizeof(previous));
    const int rc = pthread_setaffinity_np(pthread_self(), sizeof(previous), &previous);
    if (rc != 0) EDGELLM_LOG_WARN("thread pool: restoring the caller's cpus failed: %s", std::strerror(rc));
  }
#endif
  pinned_caller_.store(std::thread::id{}, std::memory_order_relaxed);
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t grain) {
  if (n <= 0) return;
  if (!pinned_cpus_.empty()) pin_caller();
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  constexpr int64_t kMaxChunks = int64_t{1} << 31;  // chunk indices fit the 32-bit halves of a share
  if ((n + grain - 1) / grain > kMaxChunks) grain = (n + kMaxChunks - 1) / kMaxChunks;
  const int64_t n_chunks = (n + grain - 1) / grain;
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  job_chunks_.store(n_chunks, std::memory_order_relaxed);
  chunks_done_.store(0, std::memory_order_relaxed);
  for (int i = 0; i < n_threads_; ++i) {
    const int64_t begin = n_chunks * i / n_threads_, end = n_chunks * (i + 1) / n_threads_;
    shares_[static_cast<size_t>(i)].range.store(pack_range(begin, end), std::memory_order_release);
  }
  // seq_cst publication, then the sleeper count: a worker registers as sleeping before it re-checks the
  // generation under mu_, so either it sees the new job or we see it sleeping and wake it.
  generation_.fetch_add(1);
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    wake_cv_.notify_all();
  }
  run_chunks(0);
  const auto all_done = [&] { return chunks_done_.load() == n_chunks; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_.store(true);
    done_cv_.wait(lock, all_done);
    caller_sleeping_.store(false);
  }
}

}  // namespace edgellm
