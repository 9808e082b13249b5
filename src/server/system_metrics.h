// What the board reports about itself, read at each scrape: the process's memory and CPU time, and the
// sensors a Rockchip board (or any Linux machine) exposes, each only when its file exists:
//   /sys/class/thermal/thermal_zone*/temp           millidegrees Celsius; `type` names the zone
//   /sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq   kHz
//   /sys/kernel/debug/rknpu/load                    "NPU load:  Core0:  12%, Core1:  0%, ..." (root only)
// `root` prefixes every path ("" for the real files; a directory tree in tests).
#pragma once

#include <string>
#include <vector>

#include "server/metrics.h"

namespace edgellm::server {

std::vector<Sample> process_resident_memory_bytes();
std::vector<Sample> process_cpu_seconds_total();
std::vector<Sample> thermal_zone_celsius(const std::string& root = "");
std::vector<Sample> cpu_frequency_hertz(const std::string& root = "");
std::vector<Sample> rknpu_load_ratio(const std::string& root = "");

// Registers them with their Prometheus names: process_resident_memory_bytes, process_cpu_seconds_total,
// edgellm_temperature_celsius{zone,type}, edgellm_cpu_frequency_hertz{cpu}, edgellm_npu_load_ratio{core}.
void declare_system_metrics(Metrics& metrics, const std::string& root = "");

}  // namespace edgellm::server
