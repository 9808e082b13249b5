// Which CPUs to run on, fastest first: on big.LITTLE boards (RK3576: 4x Cortex-A72 + 4x A53; RK3588:
// 4x A76 + 4x A55) an even split of a matmul over a big and a little core makes the big one wait for
// the little one, so threads go to the big cores first and the default thread count is the number of
// cores in the fastest cluster.
//
// Linux describes core speed in sysfs: cpuN/cpu_capacity (arm64: the scheduler's relative capacity,
// 1024 for the biggest cores) and cpuN/cpufreq/cpuinfo_max_freq (kHz). A file that is absent counts
// as 0, so on a machine that has neither (x86 servers, containers) every core is equal and the order
// is the process's affinity mask.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm {

struct CpuCore {
  int id = 0;
  int64_t capacity = 0;      // cpu_capacity, 0 if unknown
  int64_t max_freq_khz = 0;  // cpufreq/cpuinfo_max_freq, 0 if unknown
};

// The CPU ids this process may run on (sched_getaffinity), ascending; empty if unknown (not Linux).
std::vector<int> allowed_cpu_ids();

// Reads capacity and maximum frequency of `ids` from `sysfs_root` (/sys/devices/system/cpu; tests pass
// a directory of their own).
std::vector<CpuCore> read_cpu_cores(const std::vector<int>& ids,
                                    const std::string& sysfs_root = "/sys/devices/system/cpu");

// Ids ordered fastest first: by capacity, then maximum frequency (both descending), then id.
std::vector<int> cpu_ids_fastest_first(std::vector<CpuCore> cores);

// How many cores share the fastest (capacity, maximum frequency): the big cluster; all of them when
// the cores are alike. 0 for an empty list.
int fastest_cluster_size(const std::vector<CpuCore>& cores);

// Threads to use when none were asked for: the fastest cluster of the allowed CPUs (at least 1).
int default_thread_count();

// Parses a CPU list as taskset and sysfs write it ("4-7", "0,2,4-5"); false on anything else
// (the ids are returned ascending, without duplicates).
bool parse_cpu_list(const std::string& text, std::vector<int>* ids);

}  // namespace edgellm
