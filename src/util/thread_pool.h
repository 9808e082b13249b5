// A persistent pool of worker threads with a cheap fork/join `parallel_for`.
// Created once; no thread is created per op. Between jobs a worker spins briefly (pause), then yields
// the core (so a busy neighbour, e.g. another process, gets it), then sleeps on a condition variable.
// A job is cut into a few contiguous parts per thread, taken in order from an atomic counter: a thread
// that finishes early (its core was not shared) takes the next part, and the caller waits only for
// parts that were taken, never for a worker that has not woken up yet (on a loaded machine the caller
// may run the whole job alone). Which thread runs which part varies from run to run, so results are
// identical for any thread count as long as each item's output depends only on the item.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace edgellm {

class ThreadPool {
 public:
  // `n_threads` includes the calling thread (n_threads - 1 workers are started). The usable CPUs are
  // `cpus` (those of them in the process's affinity mask), or the whole mask when `cpus` is empty.
  // n_threads <= 0 means one per usable CPU when `cpus` was given, else one per core of the fastest
  // cluster (util/cpu_topology.h: the big cores of a big.LITTLE board; every core elsewhere). With
  // `pin_threads`, or with `cpus`, thread i (the caller is 0) is pinned to the i-th usable CPU, fastest
  // first (Linux; elsewhere ignored; EDGELLM_PIN_THREADS=1 also pins); a failure to pin is logged.
  // Note the caller is pinned too: create the pool on the thread that will call parallel_for.
  explicit ThreadPool(int n_threads = 1, bool pin_threads = false, const std::vector<int>& cpus = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }
  // The CPU of thread i, for a pinned pool; empty when the threads are not pinned.
  const std::vector<int>& pinned_cpus() const { return pinned_cpus_; }

  // Calls fn(begin, end, thread_idx) on disjoint ranges covering [0, n) and returns when all are done.
  // Ranges are aligned to `grain` items (except the last); one thread may get several ranges, and
  // thread_idx < n_threads() identifies the thread (for per-thread scratch). Not reentrant: one
  // parallel_for at a time per pool; calls from several threads are serialised.
  using RangeFn = std::function<void(int64_t begin, int64_t end, int thread_idx)>;
  void parallel_for(int64_t n, const RangeFn& fn, int64_t grain = 1);

 private:
  void worker_loop(int thread_idx);
  void run_parts(uint64_t generation, int thread_idx);

  int n_threads_ = 1;
  std::vector<int> pinned_cpus_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for callers

  // The current job: written by parallel_for before the ticket of its generation is published, read by
  // a thread only after it has claimed a part of that generation (so never while being rewritten: the
  // caller rewrites them only once every part of the previous job is done).
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  // Ticket: generation (bits 32..63) | number of parts (16..31) | next part to take (0..15).
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> parts_done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::mutex mu_;  // pairs with the condition variables only
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
};

}  // namespace edgellm
