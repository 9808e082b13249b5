// Encode throughput (MB/s of UTF-8 input, one thread) on English (WikiText-2 test split) and Chinese
// (西游记) with the Qwen3 / Llama 3 vocabularies, cold (a fresh tokenizer, empty piece cache) and warm.
// Compare with Hugging Face tokenizers on the same text: bench/tokenizer_bench_hf.py.
//   build-tok/bench/tokenizer_bench [--benchmark_repetitions=5]
// Data comes from $EDGELLM_SHARED (default: ../shared beside the source tree); missing files skip.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "tokenizer/tokenizer.h"

namespace {

std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("EDGELLM_SHARED");
  return std::string(env ? env : EDGELLM_SHARED_DEFAULT) + "/data/" + rel;
}

std::string read_text(const std::string& rel) {
  std::ifstream in(shared_path(rel), std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

const edgellm::Tokenizer* load(const std::string& rel) {
  static std::map<std::string, std::unique_ptr<edgellm::Tokenizer>> cache;
  auto& slot = cache[rel];
  if (!slot) {
    auto tok = edgellm::Tokenizer::from_path(shared_path(rel));
    if (!tok.ok()) return nullptr;
    slot = std::move(tok).value();
  }
  return slot.get();
}

// warm: the same tokenizer encodes the text again and again, so its piece cache is full (a server's
// steady state). cold: the cache is emptied before every iteration, so every piece is merged from
// scratch.
void run(benchmark::State& state, const char* vocab, const char* text_file, bool first_pass_only) {
  const edgellm::Tokenizer* tok = load(vocab);
  const std::string text = read_text(text_file);
  if (!tok || text.empty()) {
    state.SkipWithError((std::string("missing ") + vocab + " or " + text_file + " under ../shared/data").c_str());
    return;
  }
  size_t n_tokens = 0;
  for (auto _ : state) {
    if (first_pass_only) {
      state.PauseTiming();
      tok->clear_cache();
      state.ResumeTiming();
    }
    {
      auto ids = tok->encode(text, false);
      n_tokens = ids->size();
      benchmark::DoNotOptimize(ids);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}

}  // namespace

BENCHMARK_CAPTURE(run, qwen3_english_warm, "qwen3-tokenizer/tokenizer.json", "text/wiki.test.raw", false)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(run, qwen3_chinese_warm, "qwen3-tokenizer/tokenizer.json", "text/xiyouji.txt", false)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(run, qwen3_english_cold, "qwen3-tokenizer/tokenizer.json", "text/wiki.test.raw", true)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(run, qwen3_chinese_cold, "qwen3-tokenizer/tokenizer.json", "text/xiyouji.txt", true)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(run, llama3_english_warm, "llama3-tokenizer/tokenizer.json", "text/wiki.test.raw", false)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(run, llama3_chinese_warm, "llama3-tokenizer/tokenizer.json", "text/xiyouji.txt", false)
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);

BENCHMARK_MAIN();
