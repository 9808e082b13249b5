// What `edgellm doctor` reads about the machine, from /proc and /sys under a root directory: "/" on the
// machine itself, a directory of fake files in tests (tests/data/doctor/*). Reading never changes anything.
// Every field is optional in spirit: a file that is absent or unreadable leaves its field empty or -1,
// and the checks skip what they cannot see (a container has no cpufreq, an x86 server no NPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace edgellm::doctor {

struct CpuFacts {
  int id = 0;
  int64_t capacity = 0;      // cpuN/cpu_capacity (arm64), 0 if absent
  int64_t max_freq_khz = 0;  // cpuN/cpufreq/cpuinfo_max_freq, 0 if absent
  std::string part;          // /proc/cpuinfo "CPU part" (arm64, e.g. "0xd08"), empty elsewhere
  std::string model_name;    // /proc/cpuinfo "model name" (x86), empty elsewhere
};

// One cpufreq policy: the CPUs that share a clock, i.e. a cluster on big.LITTLE boards.
struct FreqPolicy {
  std::string name;              // "policy4"
  std::vector<int> cpus;         // related_cpus
  std::string governor;          // scaling_governor
  std::vector<std::string> available_governors;
  int64_t cur_khz = -1;          // scaling_cur_freq
  int64_t max_khz = -1;          // cpuinfo_max_freq: what the silicon can do
  int64_t scaling_max_khz = -1;  // scaling_max_freq: what the kernel is allowed to use
};

struct TripPoint {
  int64_t temp_mc = 0;  // millidegrees Celsius
  std::string type;     // "passive", "active", "hot", "critical"
};

struct ThermalZone {
  std::string name;  // "thermal_zone0"
  std::string type;  // "bigcore0-thermal", "x86_pkg_temp", ...
  int64_t temp_mc = 0;
  std::vector<TripPoint> trips;
};

struct SwapArea {
  std::string path;  // "/dev/zram0", "/swapfile"
  std::string kind;  // "partition", "file"
  int64_t size_kb = 0;
  bool is_zram() const { return path.find("/zram") != std::string::npos; }
};

struct ProcessFacts {
  int pid = 0;
  std::string name;           // comm
  double cpu_fraction = 0.0;  // CPU time over its lifetime / its age (1.0 = one core busy all the time)
  int64_t rss_kb = 0;
};

struct SystemFacts {
  std::string root;
  std::vector<CpuFacts> cpus;  // every cpuN directory under /sys/devices/system/cpu, ascending ids
  std::vector<FreqPolicy> policies;
  std::vector<ThermalZone> zones;
  int64_t mem_total_kb = -1, mem_available_kb = -1, swap_total_kb = -1, swap_free_kb = -1;
  std::vector<SwapArea> swaps;
  int swappiness = -1, dirty_ratio = -1, dirty_background_ratio = -1;
  std::string thp_mode;  // the bracketed word of transparent_hugepage/enabled: always, madvise, never
  int64_t open_files_soft = -1, open_files_hard = -1;  // /proc/self/limits "Max open files" (-1: unlimited or absent)
  bool open_files_unlimited = false;
  double load1 = -1.0;  // /proc/loadavg
  std::vector<ProcessFacts> processes;  // every /proc/<pid> readable, busiest first
  std::string npu_driver_version;       // "v0.9.8" from the Rockchip NPU driver, empty when absent
  std::string npu_load;                 // /sys/kernel/debug/rknpu/load as it reads, empty when absent
};

// Reads every fact under `root` ("/" for this machine). Never fails: what cannot be read stays empty.
SystemFacts read_system_facts(const std::string& root);

// "0-3,6" for {0,1,2,3,6}.
std::string format_cpu_list(const std::vector<int>& ids);

// The core name for an ARM "CPU part" number ("0xd08" -> "Cortex-A72"), empty when unknown.
std::string arm_core_name(const std::string& part);

}  // namespace edgellm::doctor
