// A persistent pool of worker threads with a cheap fork/join `parallel_for`.
// Created once; workers spin briefly then sleep between jobs, so no thread is created per op.
// Work is split into static contiguous ranges, so results are identical for any thread count
// as long as each task writes only its own outputs.
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
  // `n_threads` includes the calling thread (n_threads - 1 workers are started). n_threads <= 0 means
  // one per online CPU.
  explicit ThreadPool(int n_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(begin, end, thread_idx) on disjoint ranges covering [0, n) and returns when all are done.
  // Ranges are aligned to `grain` items (except the last). Not reentrant: one parallel_for at a time
  // per pool; calls from several threads are serialised.
  using RangeFn = std::function<void(int64_t begin, int64_t end, int thread_idx)>;
  void parallel_for(int64_t n, const RangeFn& fn, int64_t grain = 1);

 private:
  void worker_loop(int thread_idx);
  void run_share(int thread_idx);

  int n_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for callers

  std::mutex mu_;
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
  // guarded by mu_ (written before the generation bump, read by workers after it)
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  bool stop_ = false;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
};

}  // namespace edgellm
