// The thread pool the kernels run on: every item exactly once, grain-aligned ranges, valid thread
// indices, back-to-back jobs (the spinning path), jobs after the workers went to sleep, each thread's
// share taken front to back in one stream, and a stalled thread's share finished by the others.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "util/thread_pool.h"

namespace edgellm {
namespace {

void check_cover(ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<bool> bad_range{false}, bad_thread{false};
  pool.parallel_for(
      n,
      [&](int64_t begin, int64_t end, int thread_idx) {
        if (begin % grain != 0 || (end % grain != 0 && end != n) || begin >= end) bad_range = true;
        if (thread_idx < 0 || thread_idx >= pool.n_threads()) bad_thread = true;
        for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
      },
      grain);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
  EXPECT_FALSE(bad_range) << "n=" << n << " grain=" << grain;
  EXPECT_FALSE(bad_thread);
}

TEST(ThreadPool, EveryItemExactlyOnceWithAlignedRanges) {
  for (int n_threads : {1, 2, 3, 5}) {
    ThreadPool pool(n_threads);
    EXPECT_EQ(pool.n_threads(), n_threads);
    for (int64_t n : {1, 2, 7, 16, 17, 100, 4097}) {
      for (int64_t grain : {1, 4, 16, 64}) check_cover(pool, n, grain);
    }
  }
}

TEST(ThreadPool, ManyBackToBackJobs) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int rep = 0; rep < 20000; ++rep) {
    pool.parallel_for(64, [&](int64_t begin, int64_t end, int) { total.fetch_add(end - begin); }, 4);
  }
  EXPECT_EQ(total.load(), int64_t{20000} * 64);
}

TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  for (int rep = 0; rep < 3; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // past the spin budget: workers sleep
    std::atomic<int> threads_seen{0};
    std::vector<std::atomic<int>> per_thread(3);
    pool.parallel_for(
        3 * 64,
        [&](int64_t, int64_t, int thread_idx) {
          if (per_thread[static_cast<size_t>(thread_idx)].fetch_add(1) == 0) threads_seen.fetch_add(1);
          std::this_thread::sleep_for(std::chrono::milliseconds(2));  // long parts: everyone gets some
        },
        64);
    EXPECT_GE(threads_seen.load(), 1);
    check_cover(pool, 1000, 8);
  }
}

// Every thread owns one contiguous share and works through it from the front: the ranges one thread
// runs of its own share follow each other (what keeps a core's weight reads one sequential stream).
TEST(ThreadPool, EachThreadStreamsItsShareInOrder) {
  ThreadPool pool(2);
  const int64_t n = 256;
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<std::vector<std::pair<int64_t, int64_t>>> ranges(2);
    std::mutex mu;
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int thread_idx) {
      std::lock_guard<std::mutex> lock(mu);
      ranges[static_cast<size_t>(thread_idx)].push_back({begin, end});
    }, 1);
    for (int t = 0; t < 2; ++t) {
      // Ranges inside the thread's own half come in increasing, gap-free order.
      const int64_t own_begin = n * t / 2, own_end = n * (t + 1) / 2;
      int64_t expect = own_begin;
      for (auto [b, e] : ranges[static_cast<size_t>(t)]) {
        if (b < own_begin || b >= own_end) continue;  // stolen from the other share
        EXPECT_EQ(b, expect) << "thread " << t << " skipped or reordered its own share";
        expect = e;
      }
    }
  }
}

// A thread held up inside its first range (a core busy elsewhere) does not hold the job up beyond that
// range: the others finish the rest of its share.
TEST(ThreadPool, StalledThreadsShareIsStolen) {
  ThreadPool pool(2);
  std::vector<std::atomic<int>> hits(1000);
  std::atomic<int64_t> by_worker{0};
  std::atomic<bool> stalled{false};
  pool.parallel_for(1000, [&](int64_t begin, int64_t end, int thread_idx) {
    if (thread_idx == 1 && !stalled.exchange(true)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    if (thread_idx == 1) by_worker.fetch_add(end - begin);
    for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  }, 1);
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  // The worker's share is 500 items, claimed 62 at a time: stalled in its first claim, it ran at most
  // that one and perhaps a few more, the caller the rest.
  EXPECT_LT(by_worker.load(), 250);
}

TEST(ThreadPool, PinningIsOptionalAndHarmless) {
  ThreadPool pool(2, /*pin_threads=*/true);
  check_cover(pool, 333, 16);
}

}  // namespace
}  // namespace edgellm
