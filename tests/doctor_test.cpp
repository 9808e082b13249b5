// edgellm doctor's facts and checks against fake /proc and /sys trees (tests/data/doctor/: an RK3576 board set
// up well, the same board misconfigured, a busy x86 server; see its README.md), and the model checks on
// models described directly and written by the tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "doctor/checks.h"
#include "doctor/model_facts.h"
#include "doctor/system_facts.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm::doctor {
namespace {

std::string tree(const std::string& name) { return test::source_path("tests/data/doctor/" + name); }

DoctorOptions options() {
  DoctorOptions o;
  o.store_dir = "/var/lib/edgellm";
  o.store_free_bytes = int64_t{20} << 30;  // the real disk's free space is not the tree's
  return o;
}

std::vector<const Finding*> with_id(const std::vector<Finding>& all, const std::string& id) {
  std::vector<const Finding*> out;
  for (const auto& f : all) {
    if (f.id == id) out.push_back(&f);
  }
  return out;
}

const Finding& one(const std::vector<Finding>& all, const std::string& id) {
  auto found = with_id(all, id);
  EXPECT_EQ(found.size(), 1u) << id;
  static const Finding missing{"missing", Status::kSkip, "", ""};
  return found.empty() ? missing : *found[0];
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int count(const std::vector<Finding>& all, Status s) {
  return static_cast<int>(std::count_if(all.begin(), all.end(), [s](const Finding& f) { return f.status == s; }));
}

TEST(DoctorFacts, ReadsAnRk3576Board) {
  const SystemFacts f = read_system_facts(tree("rk3576-board"));
  ASSERT_EQ(f.cpus.size(), 8u);
  EXPECT_EQ(f.cpus[0].capacity, 485);
  EXPECT_EQ(f.cpus[7].capacity, 1024);
  EXPECT_EQ(f.cpus[7].max_freq_khz, 2208000);
  EXPECT_EQ(f.cpus[0].part, "0xd03");
  EXPECT_EQ(f.cpus[4].part, "0xd08");
  ASSERT_EQ(f.policies.size(), 2u);
  EXPECT_EQ(f.policies[1].name, "policy4");
  EXPECT_EQ(f.policies[1].cpus, (std::vector<int>{4, 5, 6, 7}));  // "4 5 6 7" in sysfs
  EXPECT_EQ(f.policies[1].governor, "performance");
  EXPECT_EQ(f.policies[1].max_khz, 2208000);
  EXPECT_EQ(f.zones.size(), 7u);
  EXPECT_EQ(f.zones[1].type, "bigcore0-thermal");
  ASSERT_EQ(f.zones[1].trips.size(), 3u);
  EXPECT_EQ(f.zones[1].trips[0].temp_mc, 85000);
  EXPECT_EQ(f.zones[1].trips[0].type, "passive");
  EXPECT_EQ(f.mem_total_kb, 8007424);
  EXPECT_EQ(f.mem_available_kb, 6914048);
  ASSERT_EQ(f.swaps.size(), 1u);
  EXPECT_TRUE(f.swaps[0].is_zram());
  EXPECT_EQ(f.swappiness, 10);
  EXPECT_EQ(f.dirty_ratio, 10);
  EXPECT_EQ(f.dirty_background_ratio, 5);
  EXPECT_EQ(f.thp_mode, "madvise");
  EXPECT_EQ(f.open_files_soft, 65536);
  EXPECT_DOUBLE_EQ(f.load1, 0.12);
  EXPECT_EQ(f.npu_driver_version, "v0.9.8");
  EXPECT_EQ(f.processes.size(), 3u);
}

TEST(DoctorFacts, ProcessesBusiestFirstWithTheirShareOfACore) {
  const SystemFacts f = read_system_facts(tree("busy-x86-server"));
  ASSERT_GE(f.processes.size(), 3u);
  EXPECT_EQ(f.processes[0].name, "python3");
  EXPECT_NEAR(f.processes[0].cpu_fraction, 7.4, 0.01);
  EXPECT_EQ(f.processes[1].name, "ffmpeg");
  EXPECT_EQ(f.processes[0].rss_kb, 12582912);
  EXPECT_TRUE(f.cpus[0].part.empty());
  EXPECT_EQ(f.cpus[0].model_name, "Intel(R) Core(TM) i9-10900K CPU @ 3.70GHz");
  EXPECT_TRUE(f.npu_driver_version.empty());
}

TEST(DoctorFacts, AnEmptyRootReadsAsNothingKnown) {
  test::TempDir dir;
  const SystemFacts f = read_system_facts(dir.path());
  EXPECT_TRUE(f.cpus.empty());
  EXPECT_TRUE(f.zones.empty());
  EXPECT_EQ(f.mem_available_kb, -1);
  EXPECT_EQ(f.swappiness, -1);
  EXPECT_TRUE(f.thp_mode.empty());
  // Every check that cannot see its source says so and none fails: a container is not a broken board.
  DoctorOptions o = options();
  o.store_free_bytes = -1;
  auto findings = check_system(f, o);
  EXPECT_EQ(count(findings, Status::kFail), 0);
  EXPECT_EQ(count(findings, Status::kWarn), 0);
  EXPECT_GE(count(findings, Status::kSkip), 10);
}

TEST(DoctorFacts, GarbageInTheFilesIsIgnoredNotFatal) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("proc/sys/vm"));
  std::filesystem::create_directories(dir.file("proc/7"));
  std::filesystem::create_directories(dir.file("sys/class/thermal/thermal_zone0"));
  test::write_file(dir.file("proc/sys/vm/swappiness"), "lots\n");
  test::write_file(dir.file("proc/meminfo"), "MemTotal: x kB\n\n:::\n");
  test::write_file(dir.file("proc/7/stat"), "7 (half");
  test::write_file(dir.file("proc/loadavg"), "");
  test::write_file(dir.file("sys/class/thermal/thermal_zone0/temp"), "hot\n");
  const SystemFacts f = read_system_facts(dir.path());
  EXPECT_EQ(f.swappiness, -1);
  EXPECT_EQ(f.mem_total_kb, -1);
  EXPECT_TRUE(f.processes.empty());
  EXPECT_TRUE(f.zones.empty());
}

TEST(DoctorChecks, AWellSetUpBoardIsAllOk) {
  auto findings = check_system(read_system_facts(tree("rk3576-board")), options());
  for (const auto& f : findings) EXPECT_EQ(f.status, Status::kOk) << f.id << ": " << f.summary;
  const Finding& layout = one(findings, "cpu.layout");
  EXPECT_TRUE(contains(layout.summary, "big.LITTLE")) << layout.summary;
  EXPECT_TRUE(contains(layout.summary, "cpu4-7: 4 x Cortex-A72")) << layout.summary;
  EXPECT_TRUE(contains(layout.summary, "cpu0-3: 4 x Cortex-A53")) << layout.summary;
  EXPECT_TRUE(contains(layout.summary, "edgellm runs 4 threads, on cpu4-7")) << layout.summary;
  EXPECT_TRUE(contains(one(findings, "npu").summary, "v0.9.8"));
  EXPECT_TRUE(contains(one(findings, "swap").summary, "zram"));
  EXPECT_EQ(with_id(findings, "thermal").size(), 7u);
}

TEST(DoctorChecks, AMisconfiguredBoardGetsEachProblemWithItsFix) {
  auto findings = check_system(read_system_facts(tree("misconfigured-board")), options());
  auto governors = with_id(findings, "cpu.governor");
  ASSERT_EQ(governors.size(), 2u);  // one per cluster: schedutil on the little one, powersave on the big one
  for (const Finding* g : governors) {
    EXPECT_EQ(g->status, Status::kWarn);
    EXPECT_TRUE(contains(g->fix, "echo performance | sudo tee /sys/devices/system/cpu/cpufreq/policy")) << g->fix;
  }
  bool capped = false;
  for (const Finding* f : with_id(findings, "cpu.frequency")) {
    if (f->status != Status::kWarn) continue;
    capped = true;
    EXPECT_TRUE(contains(f->summary, "capped at 1416 MHz of the 2208 MHz")) << f->summary;
    EXPECT_EQ(f->fix, "echo 2208000 | sudo tee /sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq");
  }
  EXPECT_TRUE(capped);
  int throttling = 0, near = 0;
  for (const Finding* t : with_id(findings, "thermal")) {
    if (t->status == Status::kFail) {
      ++throttling;
      EXPECT_TRUE(contains(t->summary, "bigcore")) << t->summary;
    }
    if (t->status == Status::kWarn) {
      ++near;
      EXPECT_TRUE(contains(t->summary, "soc-thermal")) << t->summary;
    }
  }
  EXPECT_EQ(throttling, 2);
  EXPECT_EQ(near, 1);
  const Finding& services = one(findings, "services");
  EXPECT_EQ(services.status, Status::kWarn);
  EXPECT_TRUE(contains(services.summary, "Xorg")) << services.summary;
  EXPECT_TRUE(contains(services.fix, "sudo systemctl disable --now display-manager packagekit")) << services.fix;
  EXPECT_EQ(one(findings, "swap").status, Status::kWarn);
  EXPECT_TRUE(contains(one(findings, "swap").summary, "/dev/mmcblk0p5"));
  EXPECT_EQ(one(findings, "vm.swappiness").fix.rfind("sudo sysctl -w vm.swappiness=10", 0), 0u);
  EXPECT_EQ(one(findings, "vm.dirty_ratio").status, Status::kWarn);
  EXPECT_EQ(one(findings, "vm.dirty_background_ratio").status, Status::kWarn);
  EXPECT_EQ(one(findings, "thp").fix, "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled");
  EXPECT_EQ(one(findings, "ulimit.nofile").status, Status::kWarn);
  EXPECT_EQ(one(findings, "cpu.load").status, Status::kOk);  // 2.35 on 8 cores, nothing busy
  EXPECT_EQ(one(findings, "npu").status, Status::kOk);
  EXPECT_EQ(count(findings, Status::kFail), 2);
}

TEST(DoctorChecks, ABusyServerNamesWhatIsBusy) {
  auto findings = check_system(read_system_facts(tree("busy-x86-server")), options());
  const Finding& load = one(findings, "cpu.load");
  EXPECT_EQ(load.status, Status::kWarn);
  EXPECT_TRUE(contains(load.summary, "load average 14.52 on 16 CPUs")) << load.summary;
  EXPECT_TRUE(contains(load.summary, "python3 (pid 31002, 740% of a core)")) << load.summary;
  EXPECT_TRUE(contains(load.summary, "ffmpeg")) << load.summary;
  EXPECT_TRUE(contains(load.fix, "--cpus")) << load.fix;
  // Sixteen per-core policies with one governor: one finding, one command for all of them.
  const Finding& governor = one(findings, "cpu.governor");
  EXPECT_EQ(governor.status, Status::kWarn);
  EXPECT_TRUE(contains(governor.fix, "/cpufreq/policy*/scaling_governor")) << governor.fix;
  EXPECT_TRUE(contains(one(findings, "cpu.layout").summary, "cpu0-15: 16 x Intel(R) Core(TM) i9-10900K"));
  EXPECT_FALSE(contains(one(findings, "cpu.layout").summary, "big.LITTLE"));
  bool pkg_warm = false;
  for (const Finding* t : with_id(findings, "thermal")) {
    if (contains(t->summary, "x86_pkg_temp")) pkg_warm = t->status == Status::kWarn;
  }
  EXPECT_TRUE(pkg_warm);
  EXPECT_EQ(one(findings, "services").fix, "sudo systemctl disable --now cups packagekit");
  EXPECT_EQ(one(findings, "npu").status, Status::kSkip);
  EXPECT_EQ(one(findings, "thp").status, Status::kOk);
  EXPECT_EQ(count(findings, Status::kFail), 0);
}

TEST(DoctorChecks, FreeDiskThresholds) {
  const SystemFacts sys = read_system_facts(tree("rk3576-board"));
  DoctorOptions o = options();
  o.store_free_bytes = int64_t{50} << 20;
  EXPECT_EQ(one(check_system(sys, o), "disk").status, Status::kFail);
  o.store_free_bytes = int64_t{500} << 20;
  EXPECT_EQ(one(check_system(sys, o), "disk").status, Status::kWarn);
  o.store_free_bytes = int64_t{5} << 30;
  EXPECT_EQ(one(check_system(sys, o), "disk").status, Status::kOk);
}

// Qwen1.5-1.8B's shape: 24 layers, 16 KV heads of 128 (f16 KV: 192 KiB per position), 1.84B parameters.
ModelFacts qwen15_18b(DType type, double bits_per_weight) {
  ModelFacts m;
  m.path = "qwen1.5-1.8b.gguf";
  m.arch = "qwen2";
  m.config.n_layer = 24;
  m.config.n_head = 16;
  m.config.n_head_kv = 16;
  m.config.head_dim = 128;
  m.config.n_embd = 2048;
  m.config.n_vocab = 151936;
  m.config.n_ctx_train = 32768;
  m.n_params = 1836828672;
  m.weight_bytes = static_cast<uint64_t>(static_cast<double>(m.n_params) * bits_per_weight / 8);
  m.file_bytes = m.weight_bytes + (8 << 20);
  m.main_type = type;
  m.tokenizer = "byte-level BPE, 151936 tokens";
  m.tokenizer_ok = true;
  m.chat_template = "qwen2";
  return m;
}

SystemFacts with_available(double gib) {
  SystemFacts s;
  s.mem_total_kb = static_cast<int64_t>(8.0 * 1024 * 1024);
  s.mem_available_kb = static_cast<int64_t>(gib * 1024 * 1024);
  return s;
}

TEST(DoctorModel, KvBytesPerPosition) {
  const ModelFacts m = qwen15_18b(DType::kQ4_0, 4.5);
  EXPECT_EQ(m.kv_bytes_per_position(DType::kF16), 2u * 24 * 2048 * 2);   // 192 KiB
  EXPECT_EQ(m.kv_bytes_per_position(DType::kQ8_0), 2u * 24 * 2048 / 32 * 34);
}

TEST(DoctorModel, FitsWithRoomToSpare) {
  auto findings = check_model(qwen15_18b(DType::kQ4_0, 4.5), with_available(6.5), options());
  const Finding& mem = one(findings, "model.memory");
  EXPECT_EQ(mem.status, Status::kOk) << mem.summary;
  EXPECT_TRUE(contains(mem.summary, "f16 KV cache for 4096 positions 768 MiB")) << mem.summary;
  EXPECT_EQ(one(findings, "model.speed").status, Status::kSkip);  // no bandwidth measured
}

TEST(DoctorModel, TooLargeNamesTheLargestContextAndALighterQuantization) {
  // f16 weights (3.4 GiB) with 4096 positions (768 MiB) on a board with 3 GiB available.
  auto findings = check_model(qwen15_18b(DType::kF16, 16.0), with_available(3.0), options());
  const Finding& mem = one(findings, "model.memory");
  EXPECT_EQ(mem.status, Status::kFail) << mem.summary;
  EXPECT_TRUE(contains(mem.summary, "not enough memory")) << mem.summary;
  // The weights alone do not fit, so no context helps; 8-bit weights (~1.8 GiB) do at 4096 positions.
  EXPECT_FALSE(contains(mem.fix, "--ctx")) << mem.fix;
  EXPECT_TRUE(contains(mem.fix, "w8a8 weights")) << mem.fix;
  EXPECT_TRUE(contains(mem.fix, "edgellm quantize qwen1.5-1.8b.gguf -o model-w8a8.gguf --quant w8a8")) << mem.fix;
}

TEST(DoctorModel, QuantizedTooLargeForItsContextGetsTheLargestContextThatFits) {
  // Q4_0 weights (~985 MiB) + 4096 f16 positions (768 MiB) + runtime on 1.2 GiB.
  DoctorOptions o = options();
  auto findings = check_model(qwen15_18b(DType::kQ4_0, 4.5), with_available(1.2), o);
  const Finding& mem = one(findings, "model.memory");
  EXPECT_EQ(mem.status, Status::kFail);
  EXPECT_TRUE(contains(mem.fix, "the largest context that fits is 768: --ctx 768")) << mem.fix;
  EXPECT_FALSE(contains(mem.fix, "w4a16")) << mem.fix;  // already 4-bit: nothing lighter to offer
  // A q8_0 KV cache fits where f16 does not.
  auto roomier = check_model(qwen15_18b(DType::kQ4_0, 4.5), with_available(1.7), o);
  EXPECT_TRUE(contains(one(roomier, "model.memory").fix, "--kv-type q8_0")) << one(roomier, "model.memory").fix;
  // Planned for q8_0 to begin with, the same board is fine.
  o.kv_type = DType::kQ8_0;
  EXPECT_EQ(one(check_model(qwen15_18b(DType::kQ4_0, 4.5), with_available(1.7), o), "model.memory").status,
            Status::kOk);
}

TEST(DoctorModel, TightFitIsAWarning) {
  // Needs ~1.8 GiB: between 90% and 100% of 1.9 GiB.
  auto findings = check_model(qwen15_18b(DType::kQ4_0, 4.5), with_available(1.9), options());
  EXPECT_EQ(one(findings, "model.memory").status, Status::kWarn) << one(findings, "model.memory").summary;
}

TEST(DoctorModel, ExpectedSpeedFromBandwidth) {
  DoctorOptions o = options();
  o.bandwidth_gbs = 10.0;
  o.bandwidth_threads = 4;
  ModelFacts m = qwen15_18b(DType::kQ4_0, 4.5);  // ~1.03 GB read per token -> ~10 tokens/s at 10 GB/s
  const std::vector<Finding> findings = check_model(m, with_available(6), o);
  const Finding& speed = one(findings, "model.speed");
  EXPECT_EQ(speed.status, Status::kOk);
  EXPECT_TRUE(contains(speed.summary, "10.0 GB/s (4 threads) -> decode at most ~10 tokens/s")) << speed.summary;
  o.bandwidth_gbs = 2.0;  // ~2 tokens/s: too slow for a conversation
  EXPECT_EQ(one(check_model(m, with_available(6), o), "model.speed").status, Status::kWarn);
}

TEST(DoctorModel, ReadsAGgufWithoutLoadingIt) {
  test::TempDir dir;
  const std::string path = test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2), DType::kQ8_0);
  auto facts = read_model_facts(path);
  ASSERT_TRUE(facts.ok()) << facts.error().message;
  EXPECT_EQ(facts->arch, "qwen2");
  EXPECT_EQ(facts->config.n_layer, 2);
  EXPECT_EQ(facts->main_type, DType::kQ8_0);
  EXPECT_GT(facts->n_params, 0);
  EXPECT_GT(facts->weight_bytes, 0u);
  EXPECT_LE(facts->weight_bytes, facts->file_bytes);
  EXPECT_TRUE(facts->tokenizer_ok) << facts->tokenizer;
  EXPECT_FALSE(facts->chat_template.empty());
  auto findings = check_model(*facts, with_available(4), options());
  EXPECT_EQ(one(findings, "model.file").status, Status::kOk);
  EXPECT_EQ(one(findings, "model.tokenizer").status, Status::kOk);
  EXPECT_EQ(one(findings, "model.memory").status, Status::kOk);
}

TEST(DoctorModel, BadFilesAreNamedErrors) {
  test::TempDir dir;
  test::write_file(dir.file("junk.gguf"), "GGUF but not really");
  auto junk = read_model_facts(dir.file("junk.gguf"));
  ASSERT_FALSE(junk.ok());
  EXPECT_TRUE(contains(junk.error().message, "junk.gguf")) << junk.error().message;
  auto missing = read_model_facts(dir.file("absent.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(contains(missing.error().message, "absent.gguf")) << missing.error().message;
  auto directory = read_model_facts(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_TRUE(contains(directory.error().message, "edgellm convert")) << directory.error().message;
}

TEST(DoctorFormat, CpuListsAndCoreNames) {
  EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 6}), "0-3,6");
  EXPECT_EQ(format_cpu_list({7, 4, 5}), "4-5,7");
  EXPECT_EQ(format_cpu_list({}), "");
  EXPECT_EQ(arm_core_name("0xd08"), "Cortex-A72");
  EXPECT_EQ(arm_core_name("0xd0b"), "Cortex-A76");
  EXPECT_EQ(arm_core_name("0xfff"), "");
  EXPECT_EQ(format_bytes(1.5 * (1 << 30)), "1.5 GiB");
  EXPECT_EQ(format_bytes(312.0 * (1 << 20)), "312 MiB");
}

}  // namespace
}  // namespace edgellm::doctor
