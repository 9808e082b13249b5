// edgellm doctor [-m MODEL] [--json]: what on this board will make inference slow or fail, each finding OK /
// WARN / FAIL with the command that fixes it (src/doctor/). It never changes the system.
#include <sys/statvfs.h>

#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "doctor/checks.h"
#include "doctor/model_facts.h"
#include "doctor/system_facts.h"
#include "util/memory_bandwidth.h"
#include "util/thread_pool.h"

namespace edgellm::cli {
namespace {

struct DoctorArgs {
  std::string model;
  std::string sysroot = "/";
  std::string store_dir = ".";
  int64_t ctx = 0;
  std::string kv_type = "f16";
  bool json = false;
  bool no_bandwidth = false;
};

int run_doctor(const DoctorArgs& a) {
  using namespace doctor;
  DoctorOptions opts;
  opts.ctx = a.ctx;
  opts.store_dir = a.store_dir;
  if (a.kv_type == "f16") {
    opts.kv_type = DType::kF16;
  } else if (a.kv_type == "q8_0") {
    opts.kv_type = DType::kQ8_0;
  } else {
    std::fprintf(stderr, "edgellm doctor: --kv-type must be f16 or q8_0, got '%s'\n", a.kv_type.c_str());
    return 2;
  }
  struct statvfs fs {};
  if (statvfs(a.store_dir.c_str(), &fs) == 0) {
    opts.store_free_bytes = static_cast<int64_t>(fs.f_bavail) * static_cast<int64_t>(fs.f_frsize);
  }

  const SystemFacts sys = read_system_facts(a.sysroot);
  std::vector<Finding> findings = check_system(sys, opts);
  if (!a.model.empty()) {
    auto model = read_model_facts(a.model);
    if (!model.ok()) {
      findings.push_back(doctor::Finding{"model.file", doctor::Status::kFail, model.error().message,
                                 "check the path; `edgellm verify MODEL` explains what is wrong with a file"});
    } else {
      if (!a.no_bandwidth) {
        ThreadPool pool(0);  // the threads inference would use: the fastest cluster
        opts.bandwidth_gbs = measure_read_bandwidth_gbs(pool, size_t{256} << 20, 5);
        opts.bandwidth_threads = pool.n_threads();
      }
      for (auto& f : check_model(*model, sys, opts)) findings.push_back(std::move(f));
    }
  }

  int counts[4] = {0, 0, 0, 0};
  for (const auto& f : findings) ++counts[static_cast<int>(f.status)];
  if (a.json) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& f : findings) {
      checks.push_back({{"id", f.id}, {"status", status_name(f.status)}, {"summary", f.summary}, {"fix", f.fix}});
    }
    nlohmann::json out = {{"checks", checks},
                          {"ok", counts[0]}, {"warn", counts[1]}, {"fail", counts[2]}, {"skip", counts[3]},
                          {"sysroot", a.sysroot}};
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& f : findings) {
      std::printf("%-4s  %-26s %s\n", status_name(f.status), f.id.c_str(), f.summary.c_str());
      if (!f.fix.empty()) std::printf("      %-26s fix: %s\n", "", f.fix.c_str());
    }
    std::printf("\n%d OK, %d WARN, %d FAIL, %d skipped%s\n", counts[0], counts[1], counts[2], counts[3],
                a.sysroot == "/" ? "" : (" (read from " + a.sysroot + ")").c_str());
  }
  return counts[static_cast<int>(doctor::Status::kFail)] > 0 ? 1 : 0;
}

}  // namespace

void add_doctor_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<DoctorArgs>();
  auto* cmd = app.add_subcommand("doctor",
                                 "Check what on this machine will make inference slow or fail (governor, clocks, "
                                 "temperatures, memory, swap, kernel settings, limits, disk, NPU driver; with -m a "
                                 "model's fit and expected speed). Changes nothing; prints the fixes. Exit status 1 "
                                 "when a check fails");
  cmd->add_option("-m,--model", a->model, "A GGUF model to check: digest, tokenizer, chat template, memory, speed");
  cmd->add_option("-c,--ctx", a->ctx, "Context to plan the KV cache for (default: the model's, at most 4096)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_option("--kv-type", a->kv_type, "KV cache type to plan for: f16 or q8_0")->capture_default_str();
  cmd->add_option("--store", a->store_dir, "Directory of the conversation store and logs (free disk)")
      ->capture_default_str();
  cmd->add_option("--sysroot", a->sysroot, "Read /proc and /sys under this directory (tests; another system's copy)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print the findings as JSON");
  cmd->add_flag("--no-bandwidth", a->no_bandwidth, "Skip the memory-bandwidth probe (~0.5 s) behind the speed estimate");
  cmd->callback([a, &exit_code] { exit_code = run_doctor(*a); });
}

}  // namespace edgellm::cli
