#include "server/system_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgellm::server {
namespace {

bool read_text(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Directory entries of `dir` whose names are `prefix` followed by a number, sorted by that number.
std::vector<std::pair<long, std::string>> numbered_entries(const std::string& dir, const std::string& prefix) {
  std::vector<std::pair<long, std::string>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
    const std::string digits = name.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      continue;
    }
    out.push_back({std::strtol(digits.c_str(), nullptr, 10), name});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<Sample> process_resident_memory_bytes() {
  std::string statm;
  if (!read_text("/proc/self/statm", &statm)) return {};
  std::istringstream in(statm);
  long size_pages = 0, resident_pages = 0;
  if (!(in >> size_pages >> resident_pages)) return {};
  return {{{}, static_cast<double>(resident_pages) * static_cast<double>(sysconf(_SC_PAGESIZE))}};
}

std::vector<Sample> process_cpu_seconds_total() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return {};
  const double s = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
                   static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  return {{{}, s}};
}

std::vector<Sample> thermal_zone_celsius(const std::string& root) {
  const std::string dir = root + "/sys/class/thermal";
  std::vector<Sample> out;
  for (const auto& [n, name] : numbered_entries(dir, "thermal_zone")) {
    std::string temp, type;
    if (!read_text(dir + "/" + name + "/temp", &temp)) continue;
    char* end = nullptr;
    const std::string t = trim(temp);
    const double milli = std::strtod(t.c_str(), &end);
    if (t.empty() || end == t.c_str()) continue;
    if (!read_text(dir + "/" + name + "/type", &type)) type = "unknown";
    out.push_back({{{"zone", name}, {"type", trim(type)}}, milli / 1000.0});
  }
  return out;
}

std::vector<Sample> cpu_frequency_hertz(const std::string& root) {
  const std::string dir = root + "/sys/devices/system/cpu";
  std::vector<Sample> out;
  for (const auto& [n, name] : numbered_entries(dir, "cpu")) {
    std::string khz;
    if (!read_text(dir + "/" + name + "/cpufreq/scaling_cur_freq", &khz)) continue;
    const std::string t = trim(khz);
    char* end = nullptr;
    const double v = std::strtod(t.c_str(), &end);
    if (t.empty() || end == t.c_str()) continue;
    out.push_back({{{"cpu", std::to_string(n)}}, v * 1000.0});
  }
  return out;
}

std::vector<Sample> rknpu_load_ratio(const std::string& root) {
  std::string text;
  if (!read_text(root + "/sys/kernel/debug/rknpu/load", &text)) return {};
  // "NPU load:  Core0:  12%, Core1:   0%, Core2:   0%," (RK3588), or "NPU load:  0%" (one core).
  std::vector<Sample> out;
  size_t pos = 0;
  while ((pos = text.find("Core", pos)) != std::string::npos) {
    pos += 4;
    char* end = nullptr;
    const long core = std::strtol(text.c_str() + pos, &end, 10);
    if (end == text.c_str() + pos || *end != ':') continue;
    const double percent = std::strtod(end + 1, &end);
    out.push_back({{{"core", std::to_string(core)}}, percent / 100.0});
    pos = static_cast<size_t>(end - text.c_str());
  }
  if (out.empty()) {
    const size_t colon = text.find(':');
    if (colon != std::string::npos) {
      char* end = nullptr;
      const char* start = text.c_str() + colon + 1;
      const double percent = std::strtod(start, &end);
      if (end != start && *end == '%') out.push_back({{{"core", "0"}}, percent / 100.0});
    }
  }
  return out;
}

void declare_system_metrics(Metrics& metrics, const std::string& root) {
  metrics.declare_collected("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                            process_resident_memory_bytes);
  metrics.declare_collected("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                            "counter", process_cpu_seconds_total);
  metrics.declare_collected("edgellm_temperature_celsius", "Temperature of each thermal zone of the board.", "gauge",
                            [root] { return thermal_zone_celsius(root); });
  metrics.declare_collected("edgellm_cpu_frequency_hertz", "Current frequency of each CPU.", "gauge",
                            [root] { return cpu_frequency_hertz(root); });
  metrics.declare_collected("edgellm_npu_load_ratio", "Load of each Rockchip NPU core (0 to 1).", "gauge",
                            [root] { return rknpu_load_ratio(root); });
}

}  // namespace edgellm::server
