// `edgellm bench --parallel N`: the serving engine's own figures, without HTTP. N concurrent synthetic
// requests (random prompts of each input length, greedy, each generating the output length) run through
// engine/engine.h in-process; printed: aggregate decode tokens/s over the steps where every stream
// decodes, time to first token and time per output token (p50/p99 over the requests), and peak memory
// split into the model file, the KV pool and the rest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/loaded_model.h"

namespace edgellm::cli {

struct ParallelBenchArgs {
  std::vector<int64_t> parallel;   // concurrent requests per measurement, e.g. {1, 8, 16}
  std::vector<int64_t> prompts;    // input lengths
  std::vector<int64_t> outputs;    // output lengths
  int reps = 3;
  std::string kv_type = "f16";
  int64_t ctx = 0;                 // positions per sequence; 0: largest input + output (+ shared prefix)
  int64_t kv_mem_mib = 0;          // 0: the engine's default
  int64_t prefill_chunk = 256;
  int block_size = 16;
  int64_t shared_prefix = 0;       // tokens every prompt starts with (the first request warms the cache)
  bool json = false;
};

// Prints the table (or JSON) and returns the exit code.
int run_parallel_bench(const std::shared_ptr<const LoadedModel>& model, const std::string& model_path,
                       double load_s, const ParallelBenchArgs& args);

}  // namespace edgellm::cli
