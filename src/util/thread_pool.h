// A persistent pool of worker threads with a cheap fork/join `parallel_for`.
// Created once; no thread is created per op. Between jobs a worker spins briefly (pause), then yields
// the core (so a busy neighbour, e.g. another process, gets it), then sleeps on a condition variable.
// A job's items are cut into chunks of `grain` and every thread owns one contiguous share of them, which
// it works through from the front, a few chunks per claim: each core streams one contiguous range of a
// weight matrix, which its hardware prefetcher follows (with many small shares taken in turn, as this
// pool first did, a decode step read its weights ~25% slower). A thread that finishes its share steals
// chunks from the back of the others' shares (half of what is left each time), so a core that is busy
// elsewhere, or a worker that has not woken up yet, holds nobody up: on a loaded machine the caller may
// run the whole job alone, and it waits only for chunks that were taken. Which thread runs which chunk
// varies from run to run, so results are identical for any thread count as long as each item's output
// depends only on the item.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
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
  // Thread 0 is whichever thread calls parallel_for: it is pinned at its first call (not the thread that
  // constructs the pool, e.g. an application's thread that loads a model through the C API).
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

  // For a pinned pool: if the calling thread was pinned as thread 0, gives it back the CPUs it could run
  // on before (e.g. after loading a model on an application's thread); the next caller is pinned again.
  void release_caller();

 private:
  void worker_loop(int thread_idx);
  void pin_caller();  // pins the calling thread to pinned_cpus_[0] unless it was the last one pinned
  // Runs chunks of the current job: this thread's share from the front, then others' from the back;
  // adds their number to chunks_done_ once, at the end.
  void run_chunks(int thread_idx);
  void run_range(int64_t first_chunk, int64_t end_chunk, int thread_idx);

  int n_threads_ = 1;
  std::vector<int> pinned_cpus_;
  std::atomic<std::thread::id> pinned_caller_{};
  std::mutex pin_mu_;                       // guards caller_mask_ and changes of pinned_caller_
  std::vector<unsigned char> caller_mask_;  // the pinned caller's affinity before it was pinned (Linux cpu_set_t)
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises parallel_for callers

  // The current job: written by parallel_for before the shares are published (release), read by a
  // thread only after it has claimed a chunk of it (acquire), so never while being rewritten: the caller
  // rewrites them only once every chunk of the previous job is done.
  const RangeFn* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t job_grain_ = 1;
  std::atomic<int64_t> job_chunks_{0};
  std::atomic<int64_t> chunks_done_{0};
  // Thread i's share of the current job's chunks: [front, back) as front | back << 32, one cache line
  // each. Claims are compare-and-swaps: the owner advances front, thieves lower back.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Share[]> shares_;
  std::atomic<uint64_t> generation_{0};  // bumped once per job, after its shares are set
  std::atomic<bool> stop_{false};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::mutex mu_;  // pairs with the condition variables only
  std::condition_variable wake_cv_;
  std::condition_variable done_cv_;
};

}  // namespace edgellm
