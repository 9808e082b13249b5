// The checks of `edgellm doctor`: each turns facts about the machine (doctor/system_facts.h) and, when
// given, a model (doctor/model_facts.h) into findings — OK, WARN or FAIL with one line on what was seen and
// one line of what to run to fix it. The checks never change the system; they only print commands.
//
// The recommended values are the ones deployment guides for these boards use: the `performance` governor
// while serving; vm.swappiness 10 (keep the model's anonymous weight arena in RAM); vm.dirty_ratio 10 and
// vm.dirty_background_ratio 5 (small write-back bursts on eMMC, so logging and the conversation store do
// not stall the process for seconds); transparent huge pages `madvise` or `always` (edgellm advises its
// weight arena); zram rather than swap on eMMC/SD; `ulimit -n` of at least 1024 for a server.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "doctor/model_facts.h"
#include "doctor/system_facts.h"
#include "format/dtype.h"

namespace edgellm::doctor {

enum class Status { kOk, kWarn, kFail, kSkip };
const char* status_name(Status status);  // "OK", "WARN", "FAIL", "SKIP"

struct Finding {
  std::string id;       // "cpu.governor", "model.memory", ...
  Status status = Status::kOk;
  std::string summary;  // what was seen, one line
  std::string fix;      // the command or change that fixes it; empty when nothing is to be done
};

struct DoctorOptions {
  int64_t ctx = 0;              // context to plan for; 0: the model's training context, at most 4096
  DType kv_type = DType::kF16;  // KV cache type to plan for
  std::string store_dir = ".";  // where the conversation store and logs go (free disk)
  int64_t store_free_bytes = -1;  // free bytes there (statvfs), -1 if unknown
  double bandwidth_gbs = 0;     // measured read bandwidth, 0 if not measured
  int bandwidth_threads = 0;
};

// Machine checks: CPU layout and which cores edgellm uses, governors, frequencies, thermal zones, load
// and services that compete for the board, memory, swap/zram, vm sysctls, huge pages, open-file limit,
// free disk, the Rockchip NPU driver.
std::vector<Finding> check_system(const SystemFacts& sys, const DoctorOptions& opts);

// Model checks: the file, its stored content digest, tokenizer and chat template, whether weights + KV
// cache fit in available memory (and if not, the largest context and the lighter quantization that fit),
// and the expected decode speed from the measured bandwidth.
std::vector<Finding> check_model(const ModelFacts& model, const SystemFacts& sys, const DoctorOptions& opts);

// "1.5 GiB", "312 MiB"
std::string format_bytes(double bytes);

}  // namespace edgellm::doctor
