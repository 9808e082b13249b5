#include "doctor/checks.h"

#include "model/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

#include "util/cpu_topology.h"

namespace edgellm::doctor {
namespace {

constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
// What a loaded model needs beyond weights and KV: activations, logits, the tokenizer, the process.
constexpr double kRuntimeOverheadBytes = 64 * kMiB;

std::string fmt(const char* format, auto... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, format, args...);
  return buf;
}

std::string mhz(int64_t khz) { return fmt("%lld MHz", static_cast<long long>(khz / 1000)); }

std::string celsius(int64_t mc) { return fmt("%.1f °C", static_cast<double>(mc) / 1000.0); }

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

Finding make(std::string id, Status status, std::string summary, std::string fix = {}) {
  return Finding{std::move(id), status, std::move(summary), std::move(fix)};
}

// ---- CPU ----

std::string core_name(const CpuFacts& c) {
  if (std::string n = arm_core_name(c.part); !n.empty()) return n;
  if (!c.part.empty()) return "part " + c.part;
  if (!c.model_name.empty()) return c.model_name;
  return "core";
}

void check_cpu_layout(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.cpus.empty()) {
    out->push_back(make("cpu.layout", Status::kSkip, "no /sys/devices/system/cpu/cpuN directories to read"));
    return;
  }
  // Clusters: cores with the same capacity and maximum frequency, fastest first (util/cpu_topology.h, the
  // rule the thread pool uses to place threads).
  std::map<std::pair<int64_t, int64_t>, std::vector<const CpuFacts*>, std::greater<>> clusters;
  for (const auto& c : sys.cpus) clusters[{c.capacity, c.max_freq_khz}].push_back(&c);
  std::vector<std::string> parts;
  for (const auto& [key, cores] : clusters) {
    std::vector<int> ids;
    for (const auto* c : cores) ids.push_back(c->id);
    std::string p = "cpu";
    p += format_cpu_list(ids);
    p += ": " + std::to_string(cores.size()) + " x " + core_name(*cores[0]);
    if (key.second > 0) p += fmt(" %.2f GHz", static_cast<double>(key.second) / 1e6);
    if (key.first > 0) p += fmt(" (capacity %lld)", static_cast<long long>(key.first));
    parts.push_back(p);
  }
  std::vector<CpuCore> cores;
  for (const auto& c : sys.cpus) cores.push_back(CpuCore{c.id, c.capacity, c.max_freq_khz});
  const int n_fast = fastest_cluster_size(cores);
  std::vector<int> order = cpu_ids_fastest_first(cores);
  std::vector<int> used(order.begin(), order.begin() + n_fast);
  std::string layout = clusters.size() > 1 ? "big.LITTLE, " : "";
  std::string summary = layout + join(parts, "; ") + fmt("; edgellm runs %d threads, on cpu", n_fast) +
                        format_cpu_list(used) + (clusters.size() > 1 ? " (the fastest cluster)" : "");
  out->push_back(make("cpu.layout", Status::kOk, summary));
}

// Policies grouped by what the finding says about them, so a 64-core server gives one line, a board one per cluster.
struct PolicyGroup {
  std::vector<int> cpus;
  std::vector<std::string> names;
};

std::string policy_glob(const std::vector<std::string>& names, size_t n_policies) {
  if (names.size() == n_policies && n_policies > 1) return "policy*";
  if (names.size() == 1) return names[0];
  std::vector<std::string> numbers;
  for (const auto& n : names) numbers.push_back(n.substr(6));
  return "policy{" + join(numbers, ",") + "}";
}

void check_governors(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.policies.empty()) {
    out->push_back(make("cpu.governor", Status::kSkip,
                        "no cpufreq policies in /sys/devices/system/cpu/cpufreq (a virtual machine or container: "
                        "the host sets the clocks)"));
    return;
  }
  std::map<std::string, PolicyGroup> by_governor;
  for (const auto& p : sys.policies) {
    auto& g = by_governor[p.governor.empty() ? "(unknown)" : p.governor];
    g.cpus.insert(g.cpus.end(), p.cpus.begin(), p.cpus.end());
    g.names.push_back(p.name);
  }
  for (const auto& [governor, g] : by_governor) {
    std::string who = "cpu";
    who += format_cpu_list(g.cpus);
    who += g.names.size() <= 4 ? " (" + join(g.names, ", ") + ")" : " (" + std::to_string(g.names.size()) + " policies)";
    if (governor == "performance") {
      out->push_back(make("cpu.governor", Status::kOk, who + ": governor performance"));
    } else {
      out->push_back(make("cpu.governor", Status::kWarn,
                          who + ": governor " + governor + "; the clock ramps up late at each request and drops "
                                                           "between tokens (performance is recommended under load)",
                          "echo performance | sudo tee /sys/devices/system/cpu/cpufreq/" +
                              policy_glob(g.names, sys.policies.size()) + "/scaling_governor"));
    }
  }
}

void check_frequencies(const SystemFacts& sys, std::vector<Finding>* out) {
  std::vector<std::string> fine;
  for (const auto& p : sys.policies) {
    if (p.max_khz <= 0) continue;
    const std::string who = "cpu" + format_cpu_list(p.cpus) + " (" + p.name + ")";
    if (p.scaling_max_khz > 0 && p.scaling_max_khz < p.max_khz) {
      out->push_back(make("cpu.frequency", Status::kWarn,
                          who + ": capped at " + mhz(p.scaling_max_khz) + " of the " + mhz(p.max_khz) +
                              " the cores can run (scaling_max_freq)",
                          fmt("echo %lld | sudo tee /sys/devices/system/cpu/cpufreq/%s/scaling_max_freq",
                              static_cast<long long>(p.max_khz), p.name.c_str())));
    } else {
      fine.push_back(who + " " + (p.cur_khz > 0 ? mhz(p.cur_khz) : "?") + " of " + mhz(p.max_khz));
    }
  }
  if (!fine.empty()) {
    // On a server with one policy per core this would be a long line: summarise beyond four.
    std::string summary = fine.size() <= 4 ? join(fine, "; ")
                                           : std::to_string(fine.size()) + " policies, none capped below its maximum";
    out->push_back(make("cpu.frequency", Status::kOk, "now: " + summary));
  }
}

void check_thermal(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.zones.empty()) {
    out->push_back(make("thermal", Status::kSkip, "no readable /sys/class/thermal/thermal_zone*/temp"));
    return;
  }
  for (const auto& z : sys.zones) {
    const std::string who = z.type.empty() ? z.name : z.type + " (" + z.name + ")";
    // The first trip at which the kernel slows the chip: passive (clock throttling) or hot; else critical.
    int64_t throttle = -1;
    std::string throttle_type;
    for (const auto& t : z.trips) {
      if ((t.type == "passive" || t.type == "hot") && (throttle < 0 || t.temp_mc < throttle)) {
        throttle = t.temp_mc;
        throttle_type = t.type;
      }
    }
    if (throttle < 0) {
      for (const auto& t : z.trips) {
        if (t.type == "critical" && (throttle < 0 || t.temp_mc < throttle)) throttle = t.temp_mc, throttle_type = t.type;
      }
    }
    const std::string cooling = "improve cooling (a heatsink and a fan; leave the case open), or lower the load with fewer threads (-t)";
    if (throttle <= 0) {
      out->push_back(make("thermal", Status::kOk, who + ": " + celsius(z.temp_mc) + " (no trip points)"));
    } else if (z.temp_mc >= throttle) {
      out->push_back(make("thermal", Status::kFail,
                          who + ": " + celsius(z.temp_mc) + ", at or above its " + throttle_type + " trip point " +
                              celsius(throttle) + ": the kernel is throttling the clocks now, decode slows down",
                          cooling));
    } else if (z.temp_mc >= throttle - 10000) {
      out->push_back(make("thermal", Status::kWarn,
                          who + ": " + celsius(z.temp_mc) + ", within 10 °C of its " + throttle_type +
                              " trip point " + celsius(throttle) + ": sustained inference will throttle",
                          cooling));
    } else {
      out->push_back(make("thermal", Status::kOk,
                          who + ": " + celsius(z.temp_mc) + " (" + throttle_type + " trip point " + celsius(throttle) + ")"));
    }
  }
}

// Processes that compete with a model on a board and the systemd units that run them.
struct KnownService {
  const char* comm;
  const char* unit;
  const char* what;
};
constexpr KnownService kKnownServices[] = {
    {"Xorg", "display-manager", "a desktop session"},      {"Xwayland", "display-manager", "a desktop session"},
    {"gnome-shell", "display-manager", "a desktop session"}, {"plasmashell", "display-manager", "a desktop session"},
    {"xfce4-session", "display-manager", "a desktop session"}, {"lxsession", "display-manager", "a desktop session"},
    {"weston", "weston", "the Weston compositor"},           {"lightdm", "display-manager", "a display manager"},
    {"gdm3", "display-manager", "a display manager"},        {"sddm", "display-manager", "a display manager"},
    {"packagekitd", "packagekit", "PackageKit (updates in the background)"},
    {"unattended-upgr", "unattended-upgrades", "unattended upgrades"},
    {"cupsd", "cups", "the print server"},                   {"tracker-miner-f", "", "the desktop file indexer"},
};

void check_load_and_services(const SystemFacts& sys, std::vector<Finding>* out) {
  const size_t n_cpus = std::max<size_t>(sys.cpus.size(), 1);
  // Busy: more runnable work than half the cores, or a process that keeps a core busy on average.
  std::vector<std::string> busy;
  for (const auto& p : sys.processes) {
    if (p.cpu_fraction < 0.2 || p.name == "edgellm" || busy.size() == 5) continue;
    busy.push_back(fmt("%s (pid %d, %.0f%% of a core)", p.name.c_str(), p.pid, 100.0 * p.cpu_fraction));
  }
  if (sys.load1 < 0) {
    out->push_back(make("cpu.load", Status::kSkip, "no /proc/loadavg"));
  } else if (sys.load1 > 0.5 * static_cast<double>(n_cpus) || !busy.empty()) {
    std::string summary = fmt("load average %.2f on %zu CPUs", sys.load1, n_cpus);
    if (!busy.empty()) summary += "; busiest: " + join(busy, ", ");
    out->push_back(make("cpu.load", Status::kWarn, summary + ": inference shares the cores and slows down",
                        "stop or renice what is busy (top -o %CPU), or keep edgellm on idle cores with --cpus LIST"));
  } else {
    out->push_back(make("cpu.load", Status::kOk, fmt("load average %.2f on %zu CPUs", sys.load1, n_cpus)));
  }

  std::vector<std::string> running;
  std::set<std::string> units;
  std::set<std::string> seen;
  for (const auto& p : sys.processes) {
    for (const auto& s : kKnownServices) {
      if (p.name != s.comm || !seen.insert(p.name).second) continue;
      running.push_back(fmt("%s (%s, %s)", s.comm, s.what, format_bytes(static_cast<double>(p.rss_kb) * kKiB).c_str()));
      if (*s.unit) units.insert(s.unit);
    }
  }
  if (sys.processes.empty()) {
    out->push_back(make("services", Status::kSkip, "no /proc/<pid> to read"));
  } else if (running.empty()) {
    out->push_back(make("services", Status::kOk, "no desktop, updater or print services running"));
  } else {
    std::string fix = "sudo systemctl disable --now " + join(std::vector<std::string>(units.begin(), units.end()), " ");
    if (units.count("display-manager")) fix += " (and for a headless board: sudo systemctl set-default multi-user.target)";
    out->push_back(make("services", Status::kWarn,
                        "running: " + join(running, ", ") + ": they take memory and CPU time from the model", fix));
  }
}

// ---- memory and the kernel's settings ----

void check_memory(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.mem_available_kb < 0) {
    out->push_back(make("memory", Status::kSkip, "no MemAvailable in /proc/meminfo"));
    return;
  }
  const double avail = static_cast<double>(sys.mem_available_kb) * kKiB;
  const double total = static_cast<double>(sys.mem_total_kb) * kKiB;
  const std::string summary = format_bytes(avail) + " available of " + format_bytes(total);
  if (avail < 512 * kMiB) {
    out->push_back(make("memory", Status::kWarn, summary + ": only the smallest models fit",
                        "stop what uses memory (ps aux --sort=-rss | head), or use a 0.5B model at 4 bits"));
  } else {
    out->push_back(make("memory", Status::kOk, summary));
  }
}

void check_swap(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.swap_total_kb < 0) {
    out->push_back(make("swap", Status::kSkip, "no SwapTotal in /proc/meminfo"));
    return;
  }
  std::vector<std::string> zram, disk;
  for (const auto& a : sys.swaps) {
    (a.is_zram() ? zram : disk).push_back(a.path + " " + format_bytes(static_cast<double>(a.size_kb) * kKiB));
  }
  if (!disk.empty()) {
    out->push_back(make("swap", Status::kWarn,
                        "swap on storage: " + join(disk, ", ") +
                            ": a swapped-out weight page is read back from storage at the next token (decode stalls), "
                            "and on eMMC/SD the writes wear the flash",
                        "prefer zram: sudo swapoff -a && sudo apt install zram-tools (then remove the swap from "
                        "/etc/fstab)"));
  } else if (!zram.empty()) {
    out->push_back(make("swap", Status::kOk, "zram: " + join(zram, ", ") + " (compressed in RAM, no flash wear)"));
  } else {
    out->push_back(make("swap", Status::kOk,
                        "no swap: a model that does not fit fails to load instead of thrashing "
                        "(zram-tools adds a compressed safety margin)"));
  }
}

void check_sysctl(std::vector<Finding>* out, const char* name, int value, int recommended, const std::string& why) {
  const std::string id = std::string("vm.") + name;
  if (value < 0) {
    out->push_back(make(id, Status::kSkip, std::string("no /proc/sys/vm/") + name));
  } else if (value > recommended) {
    out->push_back(make(id, Status::kWarn, fmt("%s = %d (recommended %d): ", id.c_str(), value, recommended) + why,
                        fmt("sudo sysctl -w %s=%d (keep it: echo '%s = %d' | sudo tee -a /etc/sysctl.d/90-edgellm.conf)",
                            id.c_str(), recommended, id.c_str(), recommended)));
  } else {
    out->push_back(make(id, Status::kOk, fmt("%s = %d", id.c_str(), value)));
  }
}

void check_kernel_settings(const SystemFacts& sys, std::vector<Finding>* out) {
  check_sysctl(out, "swappiness", sys.swappiness, 10,
               "the kernel swaps the model's weight arena out readily, and reads it back at the next token");
  check_sysctl(out, "dirty_ratio", sys.dirty_ratio, 10,
               "large write-back bursts to eMMC stall processes that write (logs, the conversation store) for seconds");
  check_sysctl(out, "dirty_background_ratio", sys.dirty_background_ratio, 5,
               "write-back starts late, then floods the flash");

  if (sys.thp_mode.empty()) {
    out->push_back(make("thp", Status::kSkip, "no /sys/kernel/mm/transparent_hugepage/enabled"));
  } else if (sys.thp_mode == "never") {
    out->push_back(make("thp", Status::kWarn,
                        "transparent huge pages: never; edgellm's weight arena asks for them (madvise) and streams "
                        "~20% faster over 2 MiB pages",
                        "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled"));
  } else {
    out->push_back(make("thp", Status::kOk, "transparent huge pages: " + sys.thp_mode));
  }

  if (sys.open_files_unlimited) {
    out->push_back(make("ulimit.nofile", Status::kOk, "open files: unlimited"));
  } else if (sys.open_files_soft < 0) {
    out->push_back(make("ulimit.nofile", Status::kSkip, "no 'Max open files' in /proc/self/limits"));
  } else if (sys.open_files_soft < 1024) {
    out->push_back(make("ulimit.nofile", Status::kWarn,
                        fmt("open files: %lld; each HTTP connection of `edgellm serve` takes one, and a burst of "
                            "clients runs out",
                            static_cast<long long>(sys.open_files_soft)),
                        "ulimit -n 65536 in the shell that starts it, or LimitNOFILE=65536 in its systemd unit"));
  } else {
    out->push_back(make("ulimit.nofile", Status::kOk, fmt("open files: %lld", static_cast<long long>(sys.open_files_soft))));
  }
}

void check_disk(const DoctorOptions& opts, std::vector<Finding>* out) {
  if (opts.store_free_bytes < 0) {
    out->push_back(make("disk", Status::kSkip, "cannot read free space at " + opts.store_dir));
    return;
  }
  const double free = static_cast<double>(opts.store_free_bytes);
  const std::string summary = format_bytes(free) + " free at " + opts.store_dir + " (conversation store, logs)";
  const std::string fix = "free space (sudo journalctl --vacuum-size=100M; sudo apt clean) or put the store on a "
                          "larger disk";
  if (free < 100 * kMiB) {
    out->push_back(make("disk", Status::kFail, summary + ": writes will fail", fix));
  } else if (free < 1 * kGiB) {
    out->push_back(make("disk", Status::kWarn, summary + ": little room for conversations and logs", fix));
  } else {
    out->push_back(make("disk", Status::kOk, summary));
  }
}

void check_npu(const SystemFacts& sys, std::vector<Finding>* out) {
  if (sys.npu_driver_version.empty()) {
    out->push_back(make("npu", Status::kSkip,
                        "no Rockchip NPU driver found (/sys/kernel/debug/rknpu needs root; edgellm runs on the CPU "
                        "and does not need it)"));
    return;
  }
  std::string summary = "Rockchip NPU driver " + sys.npu_driver_version;
  if (!sys.npu_load.empty()) summary += "; " + sys.npu_load;
  out->push_back(make("npu", Status::kOk, summary + " (edgellm itself runs on the CPU cores)"));
}

// ---- model ----

std::string conversion_hint(const ModelFacts& m, const char* quant) {
  const bool float_source = m.main_type == DType::kF16 || m.main_type == DType::kF32 || m.main_type == DType::kBF16;
  if (float_source) return fmt("edgellm quantize %s -o model-%s.gguf --quant %s", m.path.c_str(), quant, quant);
  return fmt("edgellm convert HF_DIR -o model-%s.gguf --quant %s", quant, quant);
}

void check_model_memory(const ModelFacts& m, const SystemFacts& sys, const DoctorOptions& opts,
                        std::vector<Finding>* out) {
  const int64_t train_ctx = m.config.n_ctx_train > 0 ? m.config.n_ctx_train : 4096;
  const int64_t ctx = opts.ctx > 0 ? opts.ctx : std::min<int64_t>(train_ctx, 4096);
  const double weights = static_cast<double>(m.weight_bytes);
  const double per_pos = static_cast<double>(m.kv_bytes_per_position(opts.kv_type));
  // A hybrid model's linear-attention state and its snapshots (model/kv_cache.h) do not grow with the context.
  const double overhead = kRuntimeOverheadBytes + 8.0 * static_cast<double>(m.config.n_vocab) +
                          static_cast<double>(KvCache::state_bytes_needed(m.config));
  const double need = weights + per_pos * static_cast<double>(ctx) + overhead;
  const std::string breakdown = fmt("weights %s + %s KV cache for %lld positions %s + runtime ~%s",
                                    format_bytes(weights).c_str(), dtype_name(opts.kv_type), static_cast<long long>(ctx),
                                    format_bytes(per_pos * static_cast<double>(ctx)).c_str(),
                                    format_bytes(overhead).c_str());
  if (sys.mem_available_kb < 0) {
    out->push_back(make("model.memory", Status::kSkip, "needs " + format_bytes(need) + " (" + breakdown +
                                                           "); available memory unknown"));
    return;
  }
  const double avail = static_cast<double>(sys.mem_available_kb) * kKiB;
  const std::string summary = "needs " + format_bytes(need) + " (" + breakdown + ") of " + format_bytes(avail) + " available";
  if (need <= 0.9 * avail) {
    out->push_back(make("model.memory", Status::kOk, summary));
    return;
  }
  // What would fit: the largest context with these weights, and lighter weights at the asked context.
  std::vector<std::string> fixes;
  const double room = avail - weights - overhead;
  const int64_t max_ctx = room > 0 ? std::min<int64_t>(static_cast<int64_t>(room / per_pos) / 256 * 256, train_ctx) : 0;
  if (max_ctx >= 256) fixes.push_back(fmt("the largest context that fits is %lld: --ctx %lld", static_cast<long long>(max_ctx),
                                          static_cast<long long>(max_ctx)));
  if (opts.kv_type == DType::kF16) {
    const double per_pos_q8 = static_cast<double>(m.kv_bytes_per_position(DType::kQ8_0));
    if (weights + per_pos_q8 * static_cast<double>(ctx) + overhead <= 0.9 * avail) {
      fixes.push_back("a q8_0 KV cache fits: --kv-type q8_0");
    }
  }
  struct Lighter {
    const char* quant;
    double bits;
  };
  for (const Lighter& l : {Lighter{"w8a8", 8.5}, Lighter{"w4a16_g32", 4.5}}) {
    if (l.bits >= 0.95 * m.bits_per_weight()) continue;
    const double lighter_weights = static_cast<double>(m.n_params) * l.bits / 8.0;
    if (lighter_weights + per_pos * static_cast<double>(ctx) + overhead <= 0.9 * avail) {
      fixes.push_back(fmt("%s weights (~%s) fit: ", l.quant, format_bytes(lighter_weights).c_str()) +
                      conversion_hint(m, l.quant));
      break;
    }
  }
  if (fixes.empty()) fixes.push_back("a smaller model (fewer parameters) is needed on this board");
  const bool fits_at_all = need <= avail;
  out->push_back(make("model.memory", fits_at_all ? Status::kWarn : Status::kFail,
                      summary + (fits_at_all ? ": less than 10% to spare; the system may start swapping"
                                             : ": not enough memory"),
                      join(fixes, "; or ")));
}

void check_model_speed(const ModelFacts& m, const DoctorOptions& opts, std::vector<Finding>* out) {
  if (opts.bandwidth_gbs <= 0) {
    out->push_back(make("model.speed", Status::kSkip, "memory bandwidth not measured"));
    return;
  }
  // Decode reads every weight once per token, plus the KV cache of the positions so far: at a short context
  // the weights dominate. Real decode reaches 70-90% of this limit (docs/performance.md).
  const double per_token = static_cast<double>(m.weight_bytes);
  const double limit = opts.bandwidth_gbs * 1e9 / per_token;
  std::string summary = fmt("memory bandwidth %.1f GB/s (%d threads) -> decode at most ~%.0f tokens/s "
                            "(%s of weights read per token; expect 70-90%% of that)",
                            opts.bandwidth_gbs, opts.bandwidth_threads, limit, format_bytes(per_token).c_str());
  if (limit < 5.0) {
    out->push_back(make("model.speed", Status::kWarn, summary + ": a chat at this speed feels slow",
                        "a smaller model or lighter quantization: " + conversion_hint(m, "w4a16_g32")));
  } else {
    out->push_back(make("model.speed", Status::kOk, summary));
  }
}

}  // namespace

const char* status_name(Status status) {
  switch (status) {
    case Status::kOk: return "OK";
    case Status::kWarn: return "WARN";
    case Status::kFail: return "FAIL";
    case Status::kSkip: return "SKIP";
  }
  return "?";
}

std::string format_bytes(double bytes) {
  if (bytes >= kGiB) return fmt("%.1f GiB", bytes / kGiB);
  if (bytes >= kMiB) return fmt("%.0f MiB", bytes / kMiB);
  return fmt("%.0f KiB", bytes / kKiB);
}

std::vector<Finding> check_system(const SystemFacts& sys, const DoctorOptions& opts) {
  std::vector<Finding> out;
  check_cpu_layout(sys, &out);
  check_governors(sys, &out);
  check_frequencies(sys, &out);
  check_thermal(sys, &out);
  check_load_and_services(sys, &out);
  check_memory(sys, &out);
  check_swap(sys, &out);
  check_kernel_settings(sys, &out);
  check_disk(opts, &out);
  check_npu(sys, &out);
  return out;
}

std::vector<Finding> check_model(const ModelFacts& m, const SystemFacts& sys, const DoctorOptions& opts) {
  std::vector<Finding> out;
  out.push_back(make("model.file", Status::kOk,
                     fmt("%s: %s, %.2fB parameters, %s (%.2f bits per weight), %s", m.path.c_str(), m.arch.c_str(),
                         static_cast<double>(m.n_params) / 1e9, dtype_name(m.main_type), m.bits_per_weight(),
                         format_bytes(static_cast<double>(m.file_bytes)).c_str())));
  if (m.stored_digest.empty()) {
    out.push_back(make("model.digest", Status::kWarn,
                       "no stored content digest (not written by edgellm convert/quantize): a corrupted copy is found "
                       "only when it misbehaves",
                       "compare `sha256sum " + m.path + "` with the source's, or re-write it with edgellm convert"));
  } else {
    out.push_back(make("model.digest", Status::kOk,
                       "stored content digest sha256 " + m.stored_digest.substr(0, 16) +
                           "... (edgellm verify checks the bytes against it)"));
  }
  out.push_back(make("model.tokenizer", m.tokenizer_ok ? Status::kOk : Status::kFail, "tokenizer: " + m.tokenizer,
                     m.tokenizer_ok ? "" : "re-convert the model from its Hugging Face directory (edgellm convert)"));
  out.push_back(make("model.chat_template", m.chat_template_fallback ? Status::kWarn : Status::kOk,
                     "chat template: " + m.chat_template,
                     m.chat_template_fallback ? "check the rendered prompts: edgellm chat-template --model " + m.path + " --describe" : ""));
  check_model_memory(m, sys, opts, &out);
  check_model_speed(m, opts, &out);
  return out;
}

}  // namespace edgellm::doctor
