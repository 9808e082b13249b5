#include "util/cpu_topology.h"

#include <algorithm>
#include <fstream>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

namespace edgellm {
namespace {

int64_t read_number(const std::string& path) {
  std::ifstream in(path);
  int64_t v = 0;
  if (!(in >> v) || v < 0) return 0;
  return v;
}

bool faster(const CpuCore& a, const CpuCore& b) {
  if (a.capacity != b.capacity) return a.capacity > b.capacity;
  return a.max_freq_khz > b.max_freq_khz;
}

}  // namespace

std::vector<int> allowed_cpu_ids() {
  std::vector<int> ids;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &set)) ids.push_back(cpu);
    }
  }
#endif
  return ids;
}

std::vector<CpuCore> read_cpu_cores(const std::vector<int>& ids, const std::string& sysfs_root) {
  std::vector<CpuCore> cores;
  cores.reserve(ids.size());
  for (int id : ids) {
    const std::string dir = sysfs_root + "/cpu" + std::to_string(id);
    cores.push_back({id, read_number(dir + "/cpu_capacity"), read_number(dir + "/cpufreq/cpuinfo_max_freq")});
  }
  return cores;
}

std::vector<int> cpu_ids_fastest_first(std::vector<CpuCore> cores) {
  std::stable_sort(cores.begin(), cores.end(), [](const CpuCore& a, const CpuCore& b) {
    if (faster(a, b)) return true;
    if (faster(b, a)) return false;
    return a.id < b.id;
  });
  std::vector<int> ids;
  ids.reserve(cores.size());
  for (const CpuCore& c : cores) ids.push_back(c.id);
  return ids;
}

int fastest_cluster_size(const std::vector<CpuCore>& cores) {
  if (cores.empty()) return 0;
  const CpuCore best = *std::min_element(cores.begin(), cores.end(), faster);
  return static_cast<int>(std::count_if(cores.begin(), cores.end(),
                                        [&](const CpuCore& c) { return !faster(best, c); }));
}

int default_thread_count() {
  const std::vector<int> ids = allowed_cpu_ids();
  if (ids.empty()) return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, fastest_cluster_size(read_cpu_cores(ids)));
}

bool parse_cpu_list(const std::string& text, std::vector<int>* ids) {
  std::vector<int> out;
  size_t pos = 0;
  auto number = [&](int* v) {
    const size_t start = pos;
    int64_t x = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      x = x * 10 + (text[pos] - '0');
      if (x > 65535) return false;
      ++pos;
    }
    *v = static_cast<int>(x);
    return pos > start;
  };
  if (text.empty()) return false;
  for (;;) {
    int lo = 0, hi = 0;
    if (!number(&lo)) return false;
    hi = lo;
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      if (!number(&hi) || hi < lo) return false;
    }
    for (int c = lo; c <= hi; ++c) out.push_back(c);
    if (pos == text.size()) break;
    if (text[pos] != ',') return false;
    ++pos;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  *ids = std::move(out);
  return true;
}

}  // namespace edgellm
