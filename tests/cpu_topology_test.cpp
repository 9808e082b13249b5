// Thread placement on big.LITTLE boards (util/cpu_topology.h) from a sysfs tree the test writes, and the
// thread pool's pinning on this machine.
#include "util/cpu_topology.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#include "support/test_env.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

// cpuN/cpu_capacity and cpuN/cpufreq/cpuinfo_max_freq as Linux writes them (a value of -1 leaves the
// file out).
void write_cpu(const test::TempDir& root, int id, int64_t capacity, int64_t max_freq_khz) {
  const std::string dir = root.path() + "/cpu" + std::to_string(id);
  std::filesystem::create_directories(dir + "/cpufreq");
  if (capacity >= 0) test::write_file(dir + "/cpu_capacity", std::to_string(capacity) + "\n");
  if (max_freq_khz >= 0) test::write_file(dir + "/cpufreq/cpuinfo_max_freq", std::to_string(max_freq_khz) + "\n");
}

TEST(CpuTopology, Rk3576BigCoresComeFirst) {
  // RK3576: cpu0-3 Cortex-A53 (capacity 485, 2.0 GHz), cpu4-7 Cortex-A72 (1024, 2.2 GHz).
  test::TempDir root;
  for (int id = 0; id < 8; ++id) write_cpu(root, id, id < 4 ? 485 : 1024, id < 4 ? 2016000 : 2208000);
  const auto cores = read_cpu_cores({0, 1, 2, 3, 4, 5, 6, 7}, root.path());
  EXPECT_EQ(cpu_ids_fastest_first(cores), (std::vector<int>{4, 5, 6, 7, 0, 1, 2, 3}));
  EXPECT_EQ(fastest_cluster_size(cores), 4);
  // Only the CPUs asked about are read: a taskset of 2,3,6 has one big core.
  const auto some = read_cpu_cores({2, 3, 6}, root.path());
  EXPECT_EQ(cpu_ids_fastest_first(some), (std::vector<int>{6, 2, 3}));
  EXPECT_EQ(fastest_cluster_size(some), 1);
}

TEST(CpuTopology, FrequencyDecidesWithoutCapacity) {
  // No cpu_capacity (older kernels): cpufreq's maximum separates the clusters; ties keep id order.
  test::TempDir root;
  write_cpu(root, 0, -1, 1800000);
  write_cpu(root, 1, -1, 2400000);
  write_cpu(root, 2, -1, 1800000);
  write_cpu(root, 3, -1, 2400000);
  const auto cores = read_cpu_cores({0, 1, 2, 3}, root.path());
  EXPECT_EQ(cpu_ids_fastest_first(cores), (std::vector<int>{1, 3, 0, 2}));
  EXPECT_EQ(fastest_cluster_size(cores), 2);
}

TEST(CpuTopology, UnknownCoresAreAllAlike) {
  // Nothing in sysfs (x86 servers, containers): one cluster of every core, affinity order.
  test::TempDir root;
  const auto cores = read_cpu_cores({5, 1, 3}, root.path());
  EXPECT_EQ(cores[0].capacity, 0);
  EXPECT_EQ(cores[0].max_freq_khz, 0);
  EXPECT_EQ(cpu_ids_fastest_first(cores), (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(fastest_cluster_size(cores), 3);
  EXPECT_EQ(fastest_cluster_size({}), 0);
}

TEST(CpuTopology, ParsesCpuLists) {
  std::vector<int> ids;
  ASSERT_TRUE(parse_cpu_list("4-7", &ids));
  EXPECT_EQ(ids, (std::vector<int>{4, 5, 6, 7}));
  ASSERT_TRUE(parse_cpu_list("6,0,2-3,2", &ids));
  EXPECT_EQ(ids, (std::vector<int>{0, 2, 3, 6}));
  ASSERT_TRUE(parse_cpu_list("0", &ids));
  EXPECT_EQ(ids, (std::vector<int>{0}));
  for (const char* bad : {"", "4-", "-4", "7-4", "1,,2", "a", "1 2", "1,", "99999999"}) {
    EXPECT_FALSE(parse_cpu_list(bad, &ids)) << bad;
  }
}

TEST(CpuTopology, DefaultThreadsCoverTheFastestCluster) {
  const std::vector<int> allowed = allowed_cpu_ids();
  if (allowed.empty()) GTEST_SKIP() << "no affinity mask on this platform";
  const int expected = fastest_cluster_size(read_cpu_cores(allowed));
  EXPECT_EQ(default_thread_count(), expected);
  EXPECT_EQ(ThreadPool(0).n_threads(), expected);
}

#if defined(__linux__)
TEST(CpuTopology, PoolRunsOnlyOnTheRequestedCpu) {
  const std::vector<int> allowed = allowed_cpu_ids();
  if (allowed.empty()) GTEST_SKIP() << "no affinity mask";
  const int cpu = allowed.back();
  // The thread that creates the pool keeps its affinity; the one that runs a job is pinned (thread 0).
  std::thread([&] {
    cpu_set_t before, after;
    ASSERT_EQ(sched_getaffinity(0, sizeof(before), &before), 0);
    ThreadPool pool(0, false, {cpu, 100000});  // 100000: not an allowed CPU, skipped
    ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
    EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "constructing the pool changed this thread's affinity";
    EXPECT_EQ(pool.n_threads(), 1);
    EXPECT_EQ(pool.pinned_cpus(), std::vector<int>{cpu});
    std::thread([&] {
      pool.parallel_for(16, [&](int64_t, int64_t, int) { EXPECT_EQ(sched_getcpu(), cpu); });
    }).join();
    // A thread that ran a job (e.g. loading a model) gets its CPUs back with release_caller().
    pool.parallel_for(16, [&](int64_t, int64_t, int) { EXPECT_EQ(sched_getcpu(), cpu); });
    pool.release_caller();
    ASSERT_EQ(sched_getaffinity(0, sizeof(after), &after), 0);
    EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "release_caller() did not restore this thread's affinity";
  }).join();
  // None of the requested CPUs allowed: the pool uses any and pins nothing.
  std::thread([&] {
    ThreadPool pool(1, false, {100000});
    EXPECT_TRUE(pool.pinned_cpus().empty());
  }).join();
}
#endif

}  // namespace
}  // namespace edgellm
