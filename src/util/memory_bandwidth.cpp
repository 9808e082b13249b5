#include "util/memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "util/huge_pages.h"

namespace edgellm {

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes, int reps) {
  const size_t n = bytes / sizeof(float);
  HugePageBuffer memory = allocate_huge_pages(n * sizeof(float));
  if (!memory || n < 16) return 0;
  float* buffer = reinterpret_cast<float*>(memory.get());
  pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int) {
    std::fill(buffer + b, buffer + e, 1.0f);  // touch every page first
  }, 1 << 16);
  std::vector<double> sums(static_cast<size_t>(pool.n_threads()), 0.0);
  double best = 0;
  for (int rep = 0; rep < reps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e, int tid) {
      float acc[16] = {};
      for (int64_t i = b; i + 16 <= e; i += 16) {
        for (int j = 0; j < 16; ++j) acc[j] += buffer[i + j];
      }
      sums[static_cast<size_t>(tid)] += std::accumulate(acc, acc + 16, 0.0);
    }, 1 << 16);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > 0) best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  volatile double keep = std::accumulate(sums.begin(), sums.end(), 0.0);  // keeps the reads alive
  (void)keep;
  return best;
}

}  // namespace edgellm
