// Speed of quantizing weights (what `edgellm convert` spends its time on): round-to-nearest and the
// error-minimising scale search (quant/scale_search.h) per type, on Gaussian rows of Qwen2.5-0.5B's
// width (896), one thread. Reported as weights per second; a 0.5B model has ~494M of them (~136M in
// the tied embedding, which 4-bit recipes store as Q8_0).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "format/dtype.h"
#include "kernels/quantize.h"
#include "quant/scale_search.h"

namespace {

constexpr int64_t kRow = 896;
constexpr int kRows = 64;

std::vector<float> gaussian_rows() {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> x(static_cast<size_t>(kRow * kRows));
  for (auto& v : x) v = dist(rng);
  return x;
}

void run(benchmark::State& state, edgellm::DType type, bool search) {
  const std::vector<float> x = gaussian_rows();
  std::vector<uint8_t> out(edgellm::dtype_row_bytes(type, kRow));
  for (auto _ : state) {
    for (int r = 0; r < kRows; ++r) {
      const float* row = x.data() + static_cast<size_t>(r) * kRow;
      const auto st = search ? edgellm::quantize_row_searched(type, row, nullptr, out.data(), kRow)
                             : edgellm::quantize_row(type, row, out.data(), kRow);
      if (!st.ok()) state.SkipWithError("quantization failed");
      benchmark::DoNotOptimize(out.data());
    }
  }
  state.counters["weights/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * kRow * kRows, benchmark::Counter::kIsRate);
}

void BM_Q4_0_Rtn(benchmark::State& s) { run(s, edgellm::DType::kQ4_0, false); }
void BM_Q4_0_Search(benchmark::State& s) { run(s, edgellm::DType::kQ4_0, true); }
void BM_IQ4_NL_Rtn(benchmark::State& s) { run(s, edgellm::DType::kIQ4_NL, false); }
void BM_IQ4_NL_Search(benchmark::State& s) { run(s, edgellm::DType::kIQ4_NL, true); }
void BM_Q8_0_Rtn(benchmark::State& s) { run(s, edgellm::DType::kQ8_0, false); }
void BM_Q8_0_Search(benchmark::State& s) { run(s, edgellm::DType::kQ8_0, true); }
void BM_E4G128_Search(benchmark::State& s) { run(s, edgellm::DType::kE4G128, true); }

BENCHMARK(BM_Q4_0_Rtn);
BENCHMARK(BM_Q4_0_Search);
BENCHMARK(BM_IQ4_NL_Rtn);
BENCHMARK(BM_IQ4_NL_Search);
BENCHMARK(BM_Q8_0_Rtn);
BENCHMARK(BM_Q8_0_Search);
BENCHMARK(BM_E4G128_Search);

}  // namespace

BENCHMARK_MAIN();
