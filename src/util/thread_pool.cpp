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

// Parts per thread: enough for a fast thread to take over a slow one's share, few enough that the
// atomic counter and the loss of contiguity stay negligible (a decode matvec is ~10 us per part).
constexpr int64_t kPartsPerThread = 4;
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
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
  const char* env = std::getenv("EDGELLM_PIN_THREADS");
  if (env != nullptr && std::strcmp(env, "1") == 0) pin_threads = true;
  if ((pin_threads || restricted) && (n_threads_ > 1 || restricted)) {
    const std::vector<int> order = cpu_ids_fastest_first(cores);
    if (static_cast<int>(order.size()) < n_threads_) {
      EDGELLM_LOG_WARN("thread pool: %d threads but %zu usable cpus; not pinning", n_threads_, order.size());
    } else {
#if defined(__linux__)
      pin_to_cpu(pthread_self(), order[0], 0);
#endif
      std::string list = std::to_string(order[0]);
      for (int i = 1; i < n_threads_; ++i) {
        pin_to_cpu(workers_[static_cast<size_t>(i - 1)].native_handle(), order[static_cast<size_t>(i)], i);
        list += ',';
        list += std::to_string(order[static_cast<size_t>(i)]);
      }
      pinned_cpus_ = std::vector<int>(order.begin(), order.begin() + n_threads_);
      EDGELLM_LOG_INFO("thread pool: %d threads pinned to cpus %s (fastest first)", n_threads_, list.c_str());
    }
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ticket_.fetch_add(uint64_t{1} << 32);
  }
  wake_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

// Takes parts of job `generation` until none is left (or a newer job started).
void ThreadPool::run_parts(uint64_t generation, int thread_idx) {
  for (;;) {
    uint64_t ticket = ticket_.load(std::memory_order_acquire);
    uint64_t part, parts;
    do {
      if ((ticket >> 32) != generation) return;
      parts = (ticket >> 16) & 0xFFFF;
      part = ticket & 0xFFFF;
      if (part >= parts) return;
    } while (!ticket_.compare_exchange_weak(ticket, ticket + 1, std::memory_order_acq_rel));
    // Part p covers chunks [p * n_chunks / parts, (p + 1) * n_chunks / parts).
    const int64_t n = job_n_, grain = job_grain_;
    const int64_t n_chunks = (n + grain - 1) / grain;
    const auto p = static_cast<int64_t>(part), np = static_cast<int64_t>(parts);
    const int64_t begin = std::min(n, p * n_chunks / np * grain);
    const int64_t end = std::min(n, (p + 1) * n_chunks / np * grain);
    if (begin < end) (*job_)(begin, end, thread_idx);
    if (parts_done_.fetch_add(1) + 1 == np && caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::worker_loop(int thread_idx) {
  uint64_t seen = 0;
  for (;;) {
    const auto new_job = [&] { return (ticket_.load() >> 32) != seen; };
    if (!spin_until(new_job)) {
      std::unique_lock<std::mutex> lock(mu_);
      sleeping_workers_.fetch_add(1);
      wake_cv_.wait(lock, new_job);
      sleeping_workers_.fetch_sub(1);
    }
    seen = ticket_.load(std::memory_order_acquire) >> 32;
    if (stop_.load()) return;
    run_parts(seen, thread_idx);
  }
}

void ThreadPool::parallel_for(int64_t n, const RangeFn& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const int64_t n_chunks = (n + grain - 1) / grain;
  // At least kPartsPerThread per thread; big jobs (an LM head: ~10k chunks) in parts of ~16 chunks, so a
  // thread descheduled in the middle of one holds the others up for less.
  const int64_t parts = std::min<int64_t>({n_chunks, std::max<int64_t>(kPartsPerThread * n_threads_, n_chunks / 16), 0xFFFF});
  job_ = &fn;
  job_n_ = n;
  job_grain_ = grain;
  parts_done_.store(0);
  const uint64_t generation = (ticket_.load() >> 32) + 1;
  // seq_cst publication, then the sleeper count: a worker registers as sleeping before it re-checks the
  // ticket under mu_, so either it sees the new job or we see it sleeping and wake it.
  ticket_.store((generation << 32) | (static_cast<uint64_t>(parts) << 16));
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    wake_cv_.notify_all();
  }
  run_parts(generation, 0);
  const auto all_done = [&] { return parts_done_.load() == parts; };
  if (!spin_until(all_done)) {
    std::unique_lock<std::mutex> lock(mu_);
    caller_sleeping_.store(true);
    done_cv_.wait(lock, all_done);
    caller_sleeping_.store(false);
  }
}

}  // namespace edgellm
