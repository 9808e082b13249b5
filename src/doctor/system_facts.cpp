#include "doctor/system_facts.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "util/cpu_topology.h"

namespace edgellm::doctor {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

std::optional<int64_t> parse_int(const std::string& text) {
  std::string t = trim(text);
  if (t.empty()) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (end == t.c_str()) return std::nullopt;
  return static_cast<int64_t>(v);
}

int64_t read_int(const fs::path& path, int64_t fallback) {
  auto text = read_text(path);
  if (!text) return fallback;
  return parse_int(*text).value_or(fallback);
}

std::string read_word(const fs::path& path) {
  auto text = read_text(path);
  return text ? trim(*text) : std::string();
}

// Numeric suffix of names like "cpu12", "thermal_zone3", "policy4"; nullopt if `name` is not prefix+digits.
std::optional<int> numbered(const std::string& name, const std::string& prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  int v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return std::nullopt;
    v = v * 10 + (name[i] - '0');
    if (v > 1000000) return std::nullopt;
  }
  return v;
}

// Entries of `dir` named prefix+N, sorted by N.
std::vector<std::pair<int, fs::path>> numbered_entries(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto n = numbered(it->path().filename().string(), prefix)) out.emplace_back(*n, it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// /proc/cpuinfo: "key\t: value" lines, one blank-line-separated block per processor.
void read_cpuinfo(const fs::path& path, std::vector<CpuFacts>* cpus) {
  auto text = read_text(path);
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  int current = -1;
  std::map<int, std::pair<std::string, std::string>> parts;  // id -> (part, model name)
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "processor") {
      current = static_cast<int>(parse_int(value).value_or(-1));
    } else if (current >= 0 && key == "CPU part") {
      parts[current].first = value;
    } else if (current >= 0 && key == "model name") {
      parts[current].second = value;
    }
  }
  for (auto& cpu : *cpus) {
    auto it = parts.find(cpu.id);
    if (it == parts.end()) continue;
    cpu.part = it->second.first;
    cpu.model_name = it->second.second;
  }
}

void read_meminfo(const fs::path& path, SystemFacts* f) {
  auto text = read_text(path);
  if (!text) return;
  std::istringstream in(*text);
  std::string key;
  int64_t value = 0;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    if (!(l >> key >> value)) continue;
    if (key == "MemTotal:") f->mem_total_kb = value;
    if (key == "MemAvailable:") f->mem_available_kb = value;
    if (key == "SwapTotal:") f->swap_total_kb = value;
    if (key == "SwapFree:") f->swap_free_kb = value;
  }
}

void read_swaps(const fs::path& path, SystemFacts* f) {
  auto text = read_text(path);
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  std::getline(in, line);  // header: Filename Type Size Used Priority
  while (std::getline(in, line)) {
    std::istringstream l(line);
    SwapArea a;
    if (l >> a.path >> a.kind >> a.size_kb) f->swaps.push_back(a);
  }
}

// "Max open files            1024                 1048576              files"
void read_limits(const fs::path& path, SystemFacts* f) {
  auto text = read_text(path);
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream l(line.substr(14));
    std::string soft, hard;
    l >> soft >> hard;
    if (soft == "unlimited") {
      f->open_files_unlimited = true;
    } else {
      f->open_files_soft = parse_int(soft).value_or(-1);
    }
    if (hard != "unlimited") f->open_files_hard = parse_int(hard).value_or(-1);
  }
}

// The bracketed choice of "always [madvise] never".
std::string bracketed(const std::string& text) {
  auto open = text.find('['), close = text.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  return text.substr(open + 1, close - open - 1);
}

void read_processes(const fs::path& proc, SystemFacts* f) {
  auto uptime_text = read_text(proc / "uptime");
  double uptime = 0.0;
  if (uptime_text) uptime = std::strtod(uptime_text->c_str(), nullptr);
  const double ticks_per_second = 100.0;  // USER_HZ: 100 on every Linux architecture edgellm runs on
  std::error_code ec;
  for (fs::directory_iterator it(proc, ec), end; !ec && it != end; it.increment(ec)) {
    auto pid = numbered(it->path().filename().string(), "");
    if (!pid) continue;
    auto stat = read_text(it->path() / "stat");
    if (!stat) continue;
    // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: it ends at the last ')'.
    auto open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open) continue;
    ProcessFacts p;
    p.pid = *pid;
    p.name = stat->substr(open + 1, close - open - 1);
    std::istringstream rest(stat->substr(close + 1));
    std::vector<std::string> fields;  // fields[0] is field 3 (state)
    for (std::string w; rest >> w;) fields.push_back(w);
    if (fields.size() < 22) continue;
    double utime = std::strtod(fields[11].c_str(), nullptr), stime = std::strtod(fields[12].c_str(), nullptr);
    double start = std::strtod(fields[19].c_str(), nullptr) / ticks_per_second;
    double age = uptime - start;
    if (age > 1.0) p.cpu_fraction = (utime + stime) / ticks_per_second / age;
    p.rss_kb = static_cast<int64_t>(std::strtod(fields[21].c_str(), nullptr)) * 4;
    f->processes.push_back(std::move(p));
  }
  std::sort(f->processes.begin(), f->processes.end(),
            [](const ProcessFacts& a, const ProcessFacts& b) { return a.cpu_fraction > b.cpu_fraction; });
}

void read_npu(const fs::path& root, SystemFacts* f) {
  // The Rockchip NPU driver reports "RKNPU driver: v0.9.8" in debugfs (root only) and, on newer kernels,
  // its module version in sysfs.
  for (const char* p : {"sys/kernel/debug/rknpu/version", "sys/module/rknpu/version"}) {
    std::string text = read_word(root / p);
    if (text.empty()) continue;
    auto colon = text.rfind(':');
    f->npu_driver_version = trim(colon == std::string::npos ? text : text.substr(colon + 1));
    break;
  }
  f->npu_load = read_word(root / "sys/kernel/debug/rknpu/load");
}

}  // namespace

SystemFacts read_system_facts(const std::string& root_dir) {
  SystemFacts f;
  f.root = root_dir;
  const fs::path root(root_dir.empty() ? "/" : root_dir);
  const fs::path cpu_dir = root / "sys/devices/system/cpu";

  std::vector<int> ids;
  for (const auto& [id, path] : numbered_entries(cpu_dir, "cpu")) ids.push_back(id);
  for (const CpuCore& core : read_cpu_cores(ids, cpu_dir.string())) {
    f.cpus.push_back(CpuFacts{core.id, core.capacity, core.max_freq_khz, {}, {}});
  }
  read_cpuinfo(root / "proc/cpuinfo", &f.cpus);

  for (const auto& [n, path] : numbered_entries(cpu_dir / "cpufreq", "policy")) {
    FreqPolicy p;
    p.name = path.filename().string();
    // "0 1 2 3" in sysfs; parse_cpu_list reads the comma form.
    std::string related = read_word(path / "related_cpus");
    if (related.empty()) related = read_word(path / "affected_cpus");
    std::replace(related.begin(), related.end(), ' ', ',');
    parse_cpu_list(related, &p.cpus);
    p.governor = read_word(path / "scaling_governor");
    std::istringstream govs(read_word(path / "scaling_available_governors"));
    for (std::string g; govs >> g;) p.available_governors.push_back(g);
    p.cur_khz = read_int(path / "scaling_cur_freq", -1);
    p.max_khz = read_int(path / "cpuinfo_max_freq", -1);
    p.scaling_max_khz = read_int(path / "scaling_max_freq", -1);
    f.policies.push_back(std::move(p));
  }

  for (const auto& [n, path] : numbered_entries(root / "sys/class/thermal", "thermal_zone")) {
    ThermalZone z;
    z.name = path.filename().string();
    z.type = read_word(path / "type");
    auto temp = read_text(path / "temp");
    if (!temp || !parse_int(*temp)) continue;  // a zone that cannot be read (disabled sensor) is not reported
    z.temp_mc = *parse_int(*temp);
    for (int i = 0; i < 32; ++i) {
      const std::string base = "trip_point_" + std::to_string(i) + "_";
      auto t = read_text(path / (base + "temp"));
      if (!t) break;
      auto v = parse_int(*t);
      if (!v) continue;
      z.trips.push_back(TripPoint{*v, read_word(path / (base + "type"))});
    }
    f.zones.push_back(std::move(z));
  }

  read_meminfo(root / "proc/meminfo", &f);
  read_swaps(root / "proc/swaps", &f);
  f.swappiness = static_cast<int>(read_int(root / "proc/sys/vm/swappiness", -1));
  f.dirty_ratio = static_cast<int>(read_int(root / "proc/sys/vm/dirty_ratio", -1));
  f.dirty_background_ratio = static_cast<int>(read_int(root / "proc/sys/vm/dirty_background_ratio", -1));
  f.thp_mode = bracketed(read_word(root / "sys/kernel/mm/transparent_hugepage/enabled"));
  read_limits(root / "proc/self/limits", &f);
  if (auto load = read_text(root / "proc/loadavg")) f.load1 = std::strtod(load->c_str(), nullptr);
  read_processes(root / "proc", &f);
  read_npu(root, &f);
  return f;
}

std::string format_cpu_list(const std::vector<int>& ids_in) {
  std::vector<int> ids = ids_in;
  std::sort(ids.begin(), ids.end());
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(ids[i]);
    if (j > i) out += '-' + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

std::string arm_core_name(const std::string& part) {
  static const std::map<std::string, std::string> names = {
      {"0xd03", "Cortex-A53"}, {"0xd04", "Cortex-A35"}, {"0xd05", "Cortex-A55"}, {"0xd07", "Cortex-A57"},
      {"0xd08", "Cortex-A72"}, {"0xd09", "Cortex-A73"}, {"0xd0a", "Cortex-A75"}, {"0xd0b", "Cortex-A76"},
      {"0xd0d", "Cortex-A77"}, {"0xd41", "Cortex-A78"}, {"0xd46", "Cortex-A510"}, {"0xd47", "Cortex-A710"},
      {"0xd4d", "Cortex-A715"}, {"0xd80", "Cortex-A520"}, {"0xd81", "Cortex-A720"}, {"0xd44", "Cortex-X1"},
  };
  auto it = names.find(part);
  return it == names.end() ? std::string() : it->second;
}

}  // namespace edgellm::doctor
