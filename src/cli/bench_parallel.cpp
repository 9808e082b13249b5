#include "cli/bench_parallel.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace edgellm::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Nearest-rank percentile of a non-empty list.
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

std::vector<int32_t> random_prompt(int64_t n, int64_t n_vocab, uint64_t& seed) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (auto& t : tokens) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    t = static_cast<int32_t>((seed >> 33) % static_cast<uint64_t>(n_vocab));
  }
  return tokens;
}

// One run of P concurrent requests.
struct RunResult {
  double decode_tps = 0;      // aggregate, over the steps where all P streams decode and nothing prefills
  double output_tps = 0;      // all generated tokens / wall time from the first submit to the last finish
  std::vector<double> ttft_ms, tpot_ms;
  double first_ttft_ms = 0;   // --shared-prefix: the request that filled the cache
  int64_t preemptions = 0;
  int64_t cached_tokens = 0;
};

class Waiter {
 public:
  void done(const RequestResult& r) {
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(r);
    cv_.notify_all();
  }
  void first_token() {
    std::lock_guard<std::mutex> lock(mu_);
    first_token_ = true;
    cv_.notify_all();
  }
  void wait_first_token() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return first_token_ || !results_.empty(); });
  }
  std::vector<RequestResult> wait_all(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return results_.size() >= n; });
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RequestResult> results_;
  bool first_token_ = false;
};

Expected<RunResult> run_once(Engine& engine, int64_t P, int64_t p, int64_t n, int64_t shared_prefix, uint64_t& seed) {
  const int64_t n_vocab = engine.model().config().n_vocab;
  std::mutex steps_mu;
  double decode_ms = 0;
  int64_t decode_tokens = 0;
  engine.set_step_observer([&](const StepStats& s) {
    if (s.n_prefill_tokens != 0 || s.n_decode_tokens != P) return;
    std::lock_guard<std::mutex> lock(steps_mu);
    decode_ms += s.ms;
    decode_tokens += s.n_decode_tokens;
  });
  const std::vector<int32_t> prefix = random_prompt(shared_prefix, n_vocab, seed);
  Waiter waiter;
  std::vector<uint64_t> ids;
  const auto start = Clock::now();
  for (int64_t i = 0; i < P; ++i) {
    EngineRequest r;
    r.prompt = prefix;
    const std::vector<int32_t> own = random_prompt(p, n_vocab, seed);
    r.prompt.insert(r.prompt.end(), own.begin(), own.end());
    r.sampling.temperature = 0.0f;
    r.max_new_tokens = static_cast<int32_t>(n);
    r.ignore_stop_tokens = true;
    const bool first = i == 0;
    r.on_token = [&waiter, first](const TokenEvent& e) {
      if (first && e.token >= 0) waiter.first_token();
      return true;
    };
    r.on_done = [&waiter](const RequestResult& res) { waiter.done(res); };
    auto id = engine.submit(std::move(r));
    if (!id.ok()) return id.error();
    ids.push_back(*id);
    // With a shared prefix the others come once the first has computed (and cached) it.
    if (first && shared_prefix > 0) waiter.wait_first_token();
  }
  const std::vector<RequestResult> results = waiter.wait_all(static_cast<size_t>(P));
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  engine.set_step_observer(nullptr);
  RunResult out;
  int64_t generated = 0;
  for (const RequestResult& r : results) {
    if (r.finish_reason != "length") {
      return make_error(ErrorCode::kInternal, "request " + std::to_string(r.id) + " ended with '" + r.finish_reason +
                                                  "' " + r.error);
    }
    generated += r.generated_tokens;
    out.preemptions += r.n_preemptions;
    out.cached_tokens += r.cached_tokens;
    if (shared_prefix > 0 && r.id == ids.front()) {
      out.first_ttft_ms = r.ttft_ms;
      continue;
    }
    out.ttft_ms.push_back(r.ttft_ms);
    if (r.generated_tokens > 1) out.tpot_ms.push_back((r.total_ms - r.ttft_ms) / static_cast<double>(r.generated_tokens - 1));
  }
  if (out.ttft_ms.empty()) out.ttft_ms.push_back(out.first_ttft_ms);
  if (out.tpot_ms.empty()) out.tpot_ms.push_back(0);
  out.output_tps = static_cast<double>(generated) / wall_s;
  out.decode_tps = decode_ms > 0 ? static_cast<double>(decode_tokens) / (decode_ms / 1000.0) : 0;
  return out;
}

}  // namespace

int run_parallel_bench(const std::shared_ptr<const LoadedModel>& model, const std::string& model_path, double load_s,
                       const ParallelBenchArgs& a) {
  const ModelConfig& c = model->config();
  const auto kv_type = dtype_from_name(a.kv_type);
  if (!kv_type) {
    std::fprintf(stderr, "edgellm bench: unknown KV type '%s'\n", a.kv_type.c_str());
    return 1;
  }
  if (a.shared_prefix < 0) {
    std::fprintf(stderr, "edgellm bench: --shared-prefix must be >= 0\n");
    return 1;
  }
  const int64_t needed_ctx = a.shared_prefix + *std::max_element(a.prompts.begin(), a.prompts.end()) +
                             *std::max_element(a.outputs.begin(), a.outputs.end()) + 1;
  const int64_t n_ctx = a.ctx > 0 ? a.ctx : needed_ctx;
  if (n_ctx < needed_ctx) {
    std::fprintf(stderr, "edgellm bench: --ctx %lld is smaller than the largest prefix + input + output (%lld)\n",
                 static_cast<long long>(n_ctx), static_cast<long long>(needed_ctx));
    return 1;
  }
  struct Row {
    int64_t P, p, n;
    double decode_tps, output_tps, ttft_p50, ttft_p99, tpot_p50, tpot_p99, first_ttft;
    int64_t preemptions, cached_tokens;
    size_t kv_bytes;
  };
  std::vector<Row> rows;
  uint64_t seed = 12345;
  for (int64_t P : a.parallel) {
    EngineOptions o;
    o.max_parallel = static_cast<int>(P);
    o.n_ctx = n_ctx;
    o.kv_type = *kv_type;
    o.kv_mem_bytes = a.kv_mem_mib * (int64_t{1} << 20);
    o.prefill_chunk = a.prefill_chunk;
    o.block_size = a.block_size;
    o.max_queue = P + 1;
    auto engine = Engine::create(model, o);
    if (!engine.ok()) {
      std::fprintf(stderr, "edgellm bench: %s\n", engine.error().message.c_str());
      return 1;
    }
    for (int64_t p : a.prompts) {
      for (int64_t n : a.outputs) {
        std::vector<RunResult> runs;
        for (int rep = 0; rep < a.reps + 1; ++rep) {  // the first repetition warms up and is not counted
          auto r = run_once(**engine, P, p, n, a.shared_prefix, seed);
          if (!r.ok()) {
            std::fprintf(stderr, "edgellm bench: %s\n", r.error().message.c_str());
            return 1;
          }
          if (rep > 0) runs.push_back(std::move(*r));
        }
        std::vector<double> decode, output, ttft, tpot, first;
        int64_t preemptions = 0, cached = 0;
        for (const RunResult& r : runs) {
          decode.push_back(r.decode_tps);
          output.push_back(r.output_tps);
          ttft.insert(ttft.end(), r.ttft_ms.begin(), r.ttft_ms.end());
          tpot.insert(tpot.end(), r.tpot_ms.begin(), r.tpot_ms.end());
          first.push_back(r.first_ttft_ms);
          preemptions += r.preemptions;
          cached += r.cached_tokens;
        }
        rows.push_back({P, p, n, median(decode), median(output), percentile(ttft, 0.5), percentile(ttft, 0.99),
                        percentile(tpot, 0.5), percentile(tpot, 0.99), median(first), preemptions,
                        cached / static_cast<int64_t>(runs.size()), (*engine)->stats().kv_bytes});
      }
    }
  }
  const double rss_mib = static_cast<double>(peak_rss_bytes()) / (1 << 20);
  std::error_code ec;
  const auto file_bytes = std::filesystem::is_regular_file(model_path, ec) ? std::filesystem::file_size(model_path, ec)
                                                                           : model->model().weight_bytes();
  const double file_mib = static_cast<double>(file_bytes) / (1 << 20);
  size_t max_kv = 0;
  for (const Row& r : rows) max_kv = std::max(max_kv, r.kv_bytes);
  const double kv_mib = static_cast<double>(max_kv) / (1 << 20);

  if (a.json) {
    nlohmann::json results = nlohmann::json::array();
    for (const Row& r : rows) {
      results.push_back({{"parallel", r.P}, {"input", r.p}, {"output", r.n}, {"decode_tps", r.decode_tps},
                         {"output_tps", r.output_tps}, {"ttft_ms_p50", r.ttft_p50}, {"ttft_ms_p99", r.ttft_p99},
                         {"tpot_ms_p50", r.tpot_p50}, {"tpot_ms_p99", r.tpot_p99}, {"first_ttft_ms", r.first_ttft},
                         {"preemptions", r.preemptions}, {"cached_tokens_per_run", r.cached_tokens},
                         {"kv_pool_bytes", r.kv_bytes}});
    }
    const nlohmann::json out = {{"model", model_path},   {"architecture", arch_name(c.arch)},
                                {"threads", model->pool().n_threads()},  {"load_s", load_s},
                                {"kv_type", a.kv_type},  {"n_ctx", n_ctx},
                                {"prefill_chunk", a.prefill_chunk},      {"block_size", a.block_size},
                                {"shared_prefix", a.shared_prefix},      {"peak_rss_mib", rss_mib},
                                {"model_file_mib", file_mib},            {"kv_pool_mib", kv_mib},
                                {"results", results}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("model %s (%s), %d threads, load %.2f s; engine: %s KV in blocks of %d, context %lld, step %lld tokens%s\n",
              model_path.c_str(), arch_name(c.arch), model->pool().n_threads(), load_s, a.kv_type.c_str(),
              a.block_size, static_cast<long long>(n_ctx), static_cast<long long>(a.prefill_chunk),
              a.shared_prefix > 0 ? (", every prompt after the same " + std::to_string(a.shared_prefix) +
                                     "-token prefix").c_str()
                                  : "");
  std::printf("%8s %6s %6s %13s %13s %17s %17s %9s%s\n", "parallel", "input", "output", "decode tok/s",
              "output tok/s", "TTFT ms p50/p99", "TPOT ms p50/p99", "preempt",
              a.shared_prefix > 0 ? "   first TTFT ms  cached/run" : "");
  for (const Row& r : rows) {
    char decode[32] = "-";  // no step had every stream decoding (prompts still prefilling meanwhile)
    if (r.decode_tps > 0) std::snprintf(decode, sizeof decode, "%.1f", r.decode_tps);
    std::printf("%8lld %6lld %6lld %13s %13.1f %8.1f/%-8.1f %8.2f/%-8.2f %9lld", static_cast<long long>(r.P),
                static_cast<long long>(r.p), static_cast<long long>(r.n), decode, r.output_tps, r.ttft_p50,
                r.ttft_p99, r.tpot_p50, r.tpot_p99, static_cast<long long>(r.preemptions));
    if (a.shared_prefix > 0) std::printf("   %13.1f  %10lld", r.first_ttft, static_cast<long long>(r.cached_tokens));
    std::printf("\n");
  }
  std::printf("decode tok/s: over the steps where all streams decode and nothing prefills (median of %d runs; '-': "
              "no such step); output tok/s: all generated tokens over the wall time\n",
              a.reps);
  std::printf("peak RSS %.1f MiB = model file %.1f MiB + KV pool %.1f MiB (budget) + %.1f MiB other\n", rss_mib,
              file_mib, kv_mib, rss_mib - file_mib - kv_mib);
  return 0;
}

}  // namespace edgellm::cli
