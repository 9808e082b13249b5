// Cost of one Sampler::sample() call at Qwen's vocabulary size (151936), per sampling configuration:
// greedy, the default chain (top-k 40 first), top-p alone (the whole-vocabulary path) and the other
// whole-vocabulary truncations, and the default chain with penalties over a 64-token window.
//   build-*/bench/sampler_bench [--benchmark_repetitions=5] [--benchmark_filter=top_p]
// "peaked" logits, roughly the shape of a language model's output: a normal(0, 2.5) bulk and eight
// candidates 14..20 above it, so the nucleus is a handful of tokens. "flat" logits (normal(0, 1), no
// peaks) put a nucleus of ~100k tokens out of 152k, the worst case for top-p and typical-p; "broad"
// (normal(0, 2) and peaks 5..12) sits between. Times are per sample; never asserts.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace edgellm {
namespace {

constexpr int32_t kVocab = 151936;  // Qwen2 / Qwen2.5 / Qwen3

enum class Shape { kPeaked, kBroad, kFlat };

const char* shape_name(Shape shape) {
  switch (shape) {
    case Shape::kPeaked: return "peaked logits";
    case Shape::kBroad: return "broad logits";
    case Shape::kFlat: return "flat logits";
  }
  return "?";
}

std::vector<float> make_logits(Shape shape, uint32_t seed) {
  std::mt19937 rng(seed);
  const float sigma = shape == Shape::kPeaked ? 2.5f : shape == Shape::kBroad ? 2.0f : 1.0f;
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = normal(rng);
  if (shape != Shape::kFlat) {
    const float top = shape == Shape::kPeaked ? 20.0f : 12.0f;
    std::uniform_int_distribution<int32_t> id(0, kVocab - 1);
    for (int i = 0; i < 8; ++i) logits[static_cast<size_t>(id(rng))] = top - static_cast<float>(i);
  }
  return logits;
}

SamplingParams only(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  return p;
}

void bm_sample(benchmark::State& state, SamplingParams params, Shape shape) {
  const std::vector<float> pristine = make_logits(shape, 1);
  std::vector<float> logits = pristine;
  Sampler sampler(params, kVocab);
  for (int32_t t = 0; t < 64; ++t) sampler.accept(t * 1000);  // a prompt tail in the penalty window
  std::vector<int32_t> touched;  // tokens whose logits the penalties changed, restored between samples
  touched.reserve(256);
  for (auto _ : state) {
    const int32_t token = sampler.sample(logits.data());
    benchmark::DoNotOptimize(token);
    sampler.accept(token);
    // Only penalised and biased entries change; restoring them keeps every sample on the same logits
    // without timing a 600 KB copy.
    if (params.repetition_penalty != 1.0f || !params.logit_bias.empty()) {
      state.PauseTiming();
      logits = pristine;
      state.ResumeTiming();
    }
  }
  state.SetLabel(shape_name(shape));
}

void register_all() {
  auto add = [](const char* name, SamplingParams params, Shape shape) {
    benchmark::RegisterBenchmark(name, bm_sample, params, shape)->Unit(benchmark::kMicrosecond);
  };
  add("greedy", only(0.0f), Shape::kPeaked);
  add("default_chain", SamplingParams{}, Shape::kPeaked);
  add("default_chain/flat", SamplingParams{}, Shape::kFlat);
  SamplingParams top_p = only(0.8f);
  top_p.top_p = 0.95f;
  add("top_p_only", top_p, Shape::kPeaked);
  add("top_p_only/broad", top_p, Shape::kBroad);
  add("top_p_only/flat", top_p, Shape::kFlat);
  add("temperature_only", only(0.8f), Shape::kPeaked);
  SamplingParams min_p = only(0.8f);
  min_p.min_p = 0.05f;
  add("min_p_only", min_p, Shape::kPeaked);
  SamplingParams typical = only(0.8f);
  typical.typical_p = 0.95f;
  add("typical_p_only", typical, Shape::kPeaked);
  add("typical_p_only/flat", typical, Shape::kFlat);
  SamplingParams penalties;
  penalties.repetition_penalty = 1.1f;
  penalties.frequency_penalty = 0.1f;
  penalties.presence_penalty = 0.1f;
  add("default_chain+penalties", penalties, Shape::kPeaked);
}

}  // namespace
}  // namespace edgellm

int main(int argc, char** argv) {
  std::printf("sampler: n_vocab=%d, one thread, time per sample()\n", edgellm::kVocab);
  edgellm::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
