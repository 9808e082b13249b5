// Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp, scripts/fuzz.sh): a per-process scratch
// directory for parsers that read files, and a tiny model for the parsers that need one (LoRA adapters, prompt
// caches, the HTTP server). Everything here is set up once per process, never per input.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/synthetic.h"
#include "runtime/loaded_model.h"
#include "support/tiny_models.h"
#include "util/log.h"

namespace edgellm::fuzz {

// A directory of this process's own, on tmpfs when there is one (inputs are written there for parsers that read
// files); removed at exit.
inline const std::string& scratch_dir() {
  static const std::string& dir = *new std::string([] {  // never destroyed: the atexit handler reads it
    std::error_code ec;
    const std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "/tmp";
    std::string d = base + "/edgellm-fuzz-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    set_log_level(LogLevel::kSilent);  // errors are the expected outcome: keep the fuzzer's output readable
    return d;
  }());
  return dir;
}

inline std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return path;
}

// The tests' tiny Qwen2 (tests/support/tiny_models.h: 2 layers, hidden 64, vocab 512).
inline ModelConfig tiny_config() { return test::tiny_config(Arch::kQwen2); }

inline std::shared_ptr<LoadedModel> tiny_model() {
  static const std::shared_ptr<LoadedModel> model = [] {
    SynthOptions o;
    o.weight_type = DType::kF32;
    const std::string path = scratch_dir() + "/tiny-model.gguf";
    if (!write_synthetic_gguf(tiny_config(), o, path).ok()) std::abort();
    LoadOptions lo;
    lo.n_threads = 1;
    lo.check_memory = false;
    auto loaded = LoadedModel::load(path, lo);
    if (!loaded.ok()) std::abort();
    return *loaded;
  }();
  return model;
}

}  // namespace edgellm::fuzz
