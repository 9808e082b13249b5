// edgellm bench: time to first token, prefill and decode tokens/s, load time and peak memory, in the
// layout of the published board tables (input length, output length, first-token latency, throughput).
// --roofline measures this machine's memory bandwidth and reports decode speed against its limit.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <numeric>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/bench_parallel.h"
#include "cli/commands.h"
#include "cli/thread_flags.h"
#include "grammar/compiled_grammar.h"
#include "grammar/json_schema_grammar.h"
#include "model/attention.h"
#include "model/model.h"
#include "model/transformer.h"
#include "runtime/loaded_model.h"
#include "util/elapsed.h"
#include "util/memory_bandwidth.h"
#include "util/thread_pool.h"

namespace edgellm::cli {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoll(item));
  }
  return out;
}

struct Stats {
  double median, min, max;
};

Stats summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

struct BenchArgs {
  std::string model;
  std::string prompts = "32,64,128";
  std::string outputs = "128";
  ThreadFlags threads;
  int reps = 3;
  std::string kv_type = "f16";
  int64_t ctx = 0;     // KV cache positions; 0: the largest input + output
  int64_t batch = 512; // tokens per prefill step (capped at the largest input)
  bool json = false;
  bool roofline = false;
  bool interleave = false;  // decode the input lengths' sequences in turn, one token each
  std::string grammar_file, json_schema_file;  // decode under a grammar: its cost per token
  std::string require_signature;
  std::string key_file;
  // --parallel: the serving engine instead (cli/bench_parallel.h).
  std::string parallel;
  int64_t kv_mem_mib = 0;
  int64_t prefill_chunk = 256;
  int block_size = 16;
  int64_t shared_prefix = 0;
  // --verify: the cost of a speculative-decoding verification step of k drafted tokens against a decode step.
  std::string verify;
};

int run_bench(const BenchArgs& a) {
  const auto load_start = Clock::now();
  LoadOptions lo;
  lo.n_threads = a.threads.threads;
  lo.pin_threads = a.threads.pin;
  if (!thread_flags_cpus(a.threads, "bench", &lo.cpus)) return 1;
  lo.prefetch = true;
  lo.require_signature = a.require_signature;
  lo.key_file = a.key_file;
  auto lm = LoadedModel::load(a.model, lo);
  if (!lm.ok()) {
    std::fprintf(stderr, "edgellm bench: %s\n", lm.error().message.c_str());
    return 1;
  }
  const double load_s = seconds_since(load_start);
  const ModelConfig& c = (*lm)->config();
  const Transformer& tf = (*lm)->transformer();
  ThreadPool& pool = (*lm)->pool();
  std::vector<int64_t> prompts, outputs;
  try {
    prompts = parse_list(a.prompts);
    outputs = parse_list(a.outputs);
  } catch (...) {
    std::fprintf(stderr, "edgellm bench: -p and -n take comma-separated token counts\n");
    return 1;
  }
  if (prompts.empty() || outputs.empty() || a.reps < 1 ||
      std::any_of(prompts.begin(), prompts.end(), [](int64_t v) { return v < 1; }) ||
      std::any_of(outputs.begin(), outputs.end(), [](int64_t v) { return v < 1; })) {
    std::fprintf(stderr, "edgellm bench: -p and -n need positive token counts, -r at least 1\n");
    return 1;
  }
  if (!a.parallel.empty()) {
    ParallelBenchArgs pa;
    try {
      pa.parallel = parse_list(a.parallel);
    } catch (...) {
      pa.parallel.clear();
    }
    if (pa.parallel.empty() || std::any_of(pa.parallel.begin(), pa.parallel.end(), [](int64_t v) { return v < 1; })) {
      std::fprintf(stderr, "edgellm bench: --parallel takes comma-separated counts of concurrent requests (>= 1)\n");
      return 1;
    }
    if (!a.grammar_file.empty() || !a.json_schema_file.empty()) {
      std::fprintf(stderr, "edgellm bench: --grammar and --json-schema measure single-stream decode; run them without "
                           "--parallel\n");
      return 1;
    }
    if (a.roofline) {
      std::fprintf(stderr, "edgellm bench: --roofline measures single-stream decode; run it without --parallel\n");
      return 1;
    }
    pa.prompts = prompts;
    pa.outputs = outputs;
    pa.reps = a.reps;
    pa.kv_type = a.kv_type;
    pa.ctx = a.ctx;
    pa.kv_mem_mib = a.kv_mem_mib;
    pa.prefill_chunk = a.prefill_chunk;
    pa.block_size = a.block_size;
    pa.shared_prefix = a.shared_prefix;
    pa.json = a.json;
    return run_parallel_bench(*lm, a.model, load_s, pa);
  }
  std::vector<int64_t> verify_ks;
  if (!a.verify.empty()) {
    try {
      verify_ks = parse_list(a.verify);
    } catch (...) {
      verify_ks.clear();
    }
    if (verify_ks.empty() || std::any_of(verify_ks.begin(), verify_ks.end(), [](int64_t k) { return k < 1 || k > 32; })) {
      std::fprintf(stderr, "edgellm bench: --verify takes comma-separated draft lengths in [1, 32]\n");
      return 1;
    }
    if (a.interleave) {
      std::fprintf(stderr, "edgellm bench: --verify runs without --interleave\n");
      return 1;
    }
  }
  const int64_t max_verify = verify_ks.empty() ? 0 : 1 + *std::max_element(verify_ks.begin(), verify_ks.end());
  const int64_t max_prompt = *std::max_element(prompts.begin(), prompts.end());
  const int64_t needed_ctx = std::max(max_prompt + *std::max_element(outputs.begin(), outputs.end()),
                                      prompts[0] + max_verify);
  const int64_t n_ctx = a.ctx > 0 ? a.ctx : needed_ctx;
  if (n_ctx < needed_ctx) {
    std::fprintf(stderr, "edgellm bench: --ctx %lld is smaller than the largest input + output (%lld tokens)\n",
                 static_cast<long long>(n_ctx), static_cast<long long>(needed_ctx));
    return 1;
  }
  if (a.interleave && (outputs.size() > 1 || !a.grammar_file.empty() || !a.json_schema_file.empty())) {
    std::fprintf(stderr, "edgellm bench: --interleave takes one output length (-n) and no grammar\n");
    return 1;
  }
  const auto kv_type = dtype_from_name(a.kv_type);
  // One cache, or with --interleave one per input length (each as long as its input + output).
  std::vector<KvCache> caches;
  for (size_t i = 0; i < (a.interleave ? prompts.size() : 1); ++i) {
    const int64_t positions = a.interleave && a.ctx == 0 ? prompts[i] + outputs[0] : n_ctx;
    auto kv = KvCache::create(c, positions, kv_type.value_or(DType::kF16));
    if (!kv.ok()) {
      std::fprintf(stderr, "edgellm bench: %s\n", kv.error().message.c_str());
      return 1;
    }
    // The cache is written as positions fill; touch it all now so that peak RSS counts the whole context.
    for (int64_t l = 0; l < kv->n_layer(); ++l) {  // the full-attention layers of a hybrid model
      std::memset(kv->k_layer(l), 0, kv->layer_bytes());
      std::memset(kv->v_layer(l), 0, kv->layer_bytes());
    }
    caches.push_back(std::move(*kv));
  }
  KvCache* kv = &caches[0];
  size_t kv_cache_bytes = 0;
  for (const KvCache& cache : caches) kv_cache_bytes += cache.size_bytes();
  const int64_t batch = std::max<int64_t>(1, std::min(a.batch, max_prompt));
  ForwardScratch scratch(c, std::max(batch, max_verify), n_ctx, pool.n_threads());
  std::vector<float> logits;

  // Bytes one decode step reads: every weight except the token embedding (one row of it).
  const auto& w = (*lm)->model().weights();
  const double per_token_bytes = static_cast<double>((*lm)->model().weight_bytes()) -
                                 (w.output.data == w.token_embd.data ? 0.0 : static_cast<double>(w.token_embd.size_bytes));
  // And of the KV cache, per position attended (k and v rows of every layer); shown, not in the limit.
  const double kv_bytes_per_position = 2.0 * static_cast<double>(kv->n_layer()) * static_cast<double>(kv->row_bytes());
  // A grammar (--grammar / --json-schema): each decode step masks the logits and advances the matcher, as
  // generation does; the time that takes is measured apart. The first (warm-up) repetition meets every
  // grammar state for the first time; the counted ones reuse the masks.
  std::shared_ptr<const CompiledGrammar> grammar;
  if (!a.grammar_file.empty() || !a.json_schema_file.empty()) {
    const std::string& file = a.grammar_file.empty() ? a.json_schema_file : a.grammar_file;
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "edgellm bench: cannot read %s\n", file.c_str());
      return 1;
    }
    std::string gbnf = text.str();
    if (!a.json_schema_file.empty()) {
      const auto schema = nlohmann::ordered_json::parse(gbnf, nullptr, /*allow_exceptions=*/false);
      if (schema.is_discarded()) {
        std::fprintf(stderr, "edgellm bench: %s is not valid JSON\n", file.c_str());
        return 1;
      }
      auto converted = json_schema_to_gbnf(schema);
      if (!converted.ok()) {
        std::fprintf(stderr, "edgellm bench: %s\n", converted.error().message.c_str());
        return 1;
      }
      gbnf = *converted;
    }
    auto compiled = (*lm)->compile_grammar(gbnf);
    if (!compiled.ok()) {
      std::fprintf(stderr, "edgellm bench: %s\n", compiled.error().message.c_str());
      return 1;
    }
    grammar = *compiled;
  }
  std::vector<double> grammar_cold_ms, grammar_warm_ms, step_warm_ms;  // per token
  struct Row {
    int64_t p, n;
    Stats ttft, prefill, decode;
  };
  std::vector<Row> rows;
  uint64_t seed = 12345;
  auto random_tokens = [&](int64_t p) {
    std::vector<int32_t> tokens(static_cast<size_t>(p));
    for (auto& t : tokens) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      t = static_cast<int32_t>((seed >> 33) % static_cast<uint64_t>(c.n_vocab));
    }
    return tokens;
  };
  // --interleave: every input length's sequence is prefilled, then they decode in turn, one token each, so
  // that a drift of the machine's memory bandwidth (or clock) during the run touches all of them alike.
  if (a.interleave) {
    const int64_t n = outputs[0];
    const size_t n_seqs = prompts.size();
    std::vector<std::vector<double>> ttft(n_seqs), prefill_tps(n_seqs), decode_tps(n_seqs);
    std::vector<std::vector<float>> seq_logits(n_seqs);
    for (int rep = 0; rep < a.reps + 1; ++rep) {  // the first repetition warms up and is not counted
      std::vector<int32_t> next(n_seqs);
      std::vector<double> decode_s(n_seqs, 0.0);
      for (size_t i = 0; i < n_seqs; ++i) {
        const std::vector<int32_t> tokens = random_tokens(prompts[i]);
        caches[i].set_n_past(0);
        const auto t0 = Clock::now();
        const Status st = tf.forward(tokens.data(), prompts[i], caches[i], scratch, pool, LogitsMode::kLast, seq_logits[i]);
        const double prefill_s = seconds_since(t0);
        if (!st.ok()) {
          std::fprintf(stderr, "edgellm bench: %s\n", st.error().message.c_str());
          return 1;
        }
        next[i] = static_cast<int32_t>(std::max_element(seq_logits[i].begin(), seq_logits[i].end()) - seq_logits[i].begin());
        if (rep == 0) continue;
        ttft[i].push_back(prefill_s * 1000);
        prefill_tps[i].push_back(static_cast<double>(prompts[i]) / prefill_s);
      }
      for (int64_t step = 0; step < n; ++step) {
        for (size_t i = 0; i < n_seqs; ++i) {
          const auto t0 = Clock::now();
          const Status st = tf.forward(&next[i], 1, caches[i], scratch, pool, LogitsMode::kLast, seq_logits[i]);
          decode_s[i] += seconds_since(t0);
          if (!st.ok()) {
            std::fprintf(stderr, "edgellm bench: %s\n", st.error().message.c_str());
            return 1;
          }
          next[i] = static_cast<int32_t>(std::max_element(seq_logits[i].begin(), seq_logits[i].end()) - seq_logits[i].begin());
        }
      }
      if (rep == 0) continue;
      for (size_t i = 0; i < n_seqs; ++i) decode_tps[i].push_back(static_cast<double>(n) / decode_s[i]);
    }
    for (size_t i = 0; i < n_seqs; ++i) {
      rows.push_back({prompts[i], n, summarize(ttft[i]), summarize(prefill_tps[i]), summarize(decode_tps[i])});
    }
  }
  for (int64_t p : a.interleave ? std::vector<int64_t>{} : prompts) {
    for (int64_t n : outputs) {
      std::vector<double> ttft, prefill_tps, decode_tps;
      for (int rep = 0; rep < a.reps + 1; ++rep) {  // the first repetition warms up and is not counted
        const std::vector<int32_t> tokens = random_tokens(p);
        kv->set_n_past(0);
        const auto t0 = Clock::now();
        Status st = tf.forward(tokens.data(), p, *kv, scratch, pool, LogitsMode::kLast, logits);
        int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        const double prefill_s = seconds_since(t0);
        std::optional<GrammarMatcher> matcher;
        if (grammar) matcher.emplace(grammar);
        double grammar_s = 0;
        // Greedy under the grammar; a finished grammar starts over so that every run decodes n tokens.
        auto constrained_next = [&]() {
          const auto g0 = Clock::now();
          if (matcher->must_finish()) matcher->reset();
          matcher->mask_logits(logits.data(), static_cast<int64_t>(logits.size()));
          grammar_s += seconds_since(g0);
          next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          const auto g1 = Clock::now();
          if (!matcher->accept(next).ok()) matcher->reset();  // an end token: the grammar was complete
          grammar_s += seconds_since(g1);
        };
        if (matcher) constrained_next();
        const auto t1 = Clock::now();
        for (int64_t i = 0; i < n && st.ok(); ++i) {
          st = tf.forward(&next, 1, *kv, scratch, pool, LogitsMode::kLast, logits);
          if (matcher) {
            constrained_next();
          } else {
            next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
          }
        }
        const double decode_s = seconds_since(t1);
        if (matcher) {
          (rep == 0 ? grammar_cold_ms : grammar_warm_ms).push_back(grammar_s * 1000 / static_cast<double>(n + 1));
          if (rep > 0) step_warm_ms.push_back(decode_s * 1000 / static_cast<double>(n));
        }
        if (!st.ok()) {
          std::fprintf(stderr, "edgellm bench: %s\n", st.error().message.c_str());
          return 1;
        }
        if (rep == 0) continue;
        ttft.push_back(prefill_s * 1000);
        prefill_tps.push_back(static_cast<double>(p) / prefill_s);
        decode_tps.push_back(static_cast<double>(n) / decode_s);
      }
      rows.push_back({p, n, summarize(ttft), summarize(prefill_tps), summarize(decode_tps)});
    }
  }
  // Peak memory of the model and its cache, taken before the bandwidth probe allocates its buffer.
  const double rss_mib = static_cast<double>(peak_rss_bytes()) / (1 << 20);
  std::error_code ec;
  const auto file_bytes = std::filesystem::is_regular_file(a.model, ec) ? std::filesystem::file_size(a.model, ec)
                                                                         : (*lm)->model().weight_bytes();
  const double file_mib = static_cast<double>(file_bytes) / (1 << 20);
  const double kv_mib = static_cast<double>(kv_cache_bytes) / (1 << 20);
  // --verify: after the first input length's prompt, a step of 1 + k tokens with every row's logits (what
  // speculative decoding's verification runs) against a one-token decode step, alternating, the cache set
  // back after each; medians over the runs after two warm-ups.
  struct VerifyRow {
    int64_t k;
    double decode_ms, verify_ms;
  };
  std::vector<VerifyRow> verify_rows;
  const int verify_runs = std::max(8, 4 * a.reps);
  if (!verify_ks.empty()) {
    const int64_t p = prompts[0];
    const std::vector<int32_t> prompt = random_tokens(p);
    const std::vector<int32_t> step = random_tokens(max_verify);
    kv->set_n_past(0);
    Status st = tf.forward(prompt.data(), p, *kv, scratch, pool, LogitsMode::kLast, logits);
    for (int64_t k : verify_ks) {
      std::vector<double> one_ms, k_ms;
      for (int i = 0; i < verify_runs + 2 && st.ok(); ++i) {
        auto t0 = Clock::now();
        st = tf.forward(step.data(), 1, *kv, scratch, pool, LogitsMode::kLast, logits);
        const double one = seconds_since(t0) * 1000;
        kv->set_n_past(p);
        if (!st.ok()) break;
        t0 = Clock::now();
        st = tf.forward(step.data(), 1 + k, *kv, scratch, pool, LogitsMode::kAll, logits);
        const double many = seconds_since(t0) * 1000;
        kv->set_n_past(p);
        if (i < 2) continue;
        one_ms.push_back(one);
        k_ms.push_back(many);
      }
      if (!st.ok()) {
        std::fprintf(stderr, "edgellm bench: %s\n", st.error().message.c_str());
        return 1;
      }
      verify_rows.push_back({k, summarize(one_ms).median, summarize(k_ms).median});
    }
  }
  const double bandwidth = a.roofline ? measure_read_bandwidth_gbs(pool) : 0;
  const double limit = bandwidth > 0 ? bandwidth * 1e9 / per_token_bytes : 0;

  nlohmann::json results = nlohmann::json::array();
  if (!a.json) {
    std::printf("model %s (%s, %.1f MiB of weights), %d threads, load %.2f s\n", a.model.c_str(), arch_name(c.arch),
                static_cast<double>((*lm)->model().weight_bytes()) / (1 << 20), pool.n_threads(), load_s);
    std::printf("KV cache %s, %lld positions%s, %.1f MiB; prefill batch %lld; attention %s\n", dtype_name(kv->type()),
                static_cast<long long>(n_ctx), a.interleave ? " (the largest of one cache per input length; decode interleaved)" : "", kv_mib,
                static_cast<long long>(batch), attention_isa_name());
    if (a.roofline) {
      std::printf("memory bandwidth %.1f GB/s (streaming read of 256 MiB in 2 MiB pages, %d threads) -> decode limit %.1f tokens/s "
                  "(%.1f MB of weights read per token; the KV cache adds %.3f MB per cached position)\n",
                  bandwidth, pool.n_threads(), limit, per_token_bytes / 1e6, kv_bytes_per_position / 1e6);
    }
    std::printf("%8s %8s %12s %16s %16s%s\n", "input", "output", "TTFT ms", "prefill tok/s", "decode tok/s",
                a.roofline ? "   of limit" : "");
  }
  for (const Row& r : rows) {
    const Stats &t = r.ttft, &pf = r.prefill, &dc = r.decode;
    results.push_back({{"input", r.p}, {"output", r.n}, {"ttft_ms", t.median}, {"ttft_ms_min", t.min},
                       {"ttft_ms_max", t.max}, {"prefill_tps", pf.median}, {"prefill_tps_min", pf.min},
                       {"prefill_tps_max", pf.max}, {"decode_tps", dc.median}, {"decode_tps_min", dc.min},
                       {"decode_tps_max", dc.max}, {"decode_fraction_of_limit", limit > 0 ? dc.median / limit : 0}});
    if (!a.json) {
      std::printf("%8lld %8lld %8.1f ±%3.0f %10.1f ±%4.0f %10.2f ±%4.1f", static_cast<long long>(r.p),
                  static_cast<long long>(r.n), t.median, (t.max - t.min) / 2, pf.median, (pf.max - pf.min) / 2,
                  dc.median, (dc.max - dc.min) / 2);
      if (limit > 0) std::printf("   %6.1f%%", 100 * dc.median / limit);
      std::printf("\n");
    }
  }
  if (a.json) {
    nlohmann::json out = {{"model", a.model},        {"architecture", arch_name(c.arch)},
                          {"threads", pool.n_threads()}, {"load_s", load_s},
                          {"weight_bytes", (*lm)->model().weight_bytes()}, {"peak_rss_mib", rss_mib},
                          {"kv_type", dtype_name(kv->type())}, {"n_ctx", n_ctx}, {"model_file_mib", file_mib},
                          {"peak_rss_over_file_and_kv_mib", rss_mib - file_mib - kv_mib},
                          {"kv_cache_bytes", kv_cache_bytes}, {"interleaved", a.interleave}, {"prefill_batch", batch},
                          {"weight_bytes_per_token", per_token_bytes},
                          {"kv_bytes_per_position", kv_bytes_per_position},
                          {"results", results}};
    if (a.roofline) {
      out["bandwidth_gbs"] = bandwidth;
      out["decode_limit_tps"] = limit;
    }
    if (!verify_rows.empty()) {
      nlohmann::json v = nlohmann::json::array();
      for (const VerifyRow& r : verify_rows) {
        v.push_back({{"k", r.k}, {"position", prompts[0]}, {"decode_step_ms", r.decode_ms}, {"verify_step_ms", r.verify_ms},
                     {"ratio", r.verify_ms / r.decode_ms}});
      }
      out["verify"] = v;
    }
    if (grammar) {
      out["grammar_ms_per_token_first_run"] = summarize(grammar_cold_ms).median;
      out["grammar_ms_per_token"] = summarize(grammar_warm_ms).median;
      out["grammar_fraction_of_decode_step"] = summarize(grammar_warm_ms).median / summarize(step_warm_ms).median;
    }
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("peak RSS %.1f MiB = model file %.1f MiB + KV cache %.1f MiB + %.1f MiB other (medians of %d runs, "
                "± half the range)\n",
                rss_mib, file_mib, kv_mib, rss_mib - file_mib - kv_mib, a.reps);
    for (const VerifyRow& r : verify_rows) {
      std::printf("verification of %lld drafted tokens after %lld positions: a %lld-token step (all logits) %.2f ms = "
                  "%.2fx a %.2f ms decode step (medians of %d alternating runs)\n",
                  static_cast<long long>(r.k), static_cast<long long>(prompts[0]), static_cast<long long>(r.k + 1),
                  r.verify_ms, r.verify_ms / r.decode_ms, r.decode_ms, verify_runs);
    }
    if (grammar) {
      const double cold = summarize(grammar_cold_ms).median, warm = summarize(grammar_warm_ms).median;
      const double step = summarize(step_warm_ms).median;
      const CompiledGrammar::Stats gs = grammar->stats();
      std::printf("grammar: %.3f ms per token in the first run (every state new), %.3f ms per token after it = "
                  "%.1f%% of a %.2f ms decode step (masks included); %zu position walks in %.0f ms, %zu state "
                  "masks in %.0f ms\n",
                  cold, warm, 100 * warm / step, step, gs.position_masks, gs.position_ms, gs.state_masks, gs.state_ms);
    }
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Measure time to first token, prefill and decode speed, memory");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face directory")->required();
  cmd->add_option("-p,--prompt-tokens", a->prompts, "Input lengths, comma-separated")->capture_default_str();
  cmd->add_option("-n,--output-tokens", a->outputs, "Output lengths, comma-separated")->capture_default_str();
  add_thread_flags(cmd, a->threads);
  cmd->add_option("-r,--reps", a->reps, "Repetitions per pair (after one warm-up)")->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", a->ctx, "KV cache positions (0: largest input + output)")->capture_default_str();
  cmd->add_option("-b,--batch", a->batch, "Tokens per prefill step (capped at the largest input)")
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->add_option("--require-signature", a->require_signature,
                  "Load the model only if MODEL.minisig verifies with this minisign public key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--key-file", a->key_file,
                  "Key of an encrypted model (edgellm encrypt); default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY "
                  "or the systemd credential edgellm-model-key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--grammar", a->grammar_file, "Decode under this GBNF grammar and report its cost per token")
      ->check(CLI::ExistingFile);
  cmd->add_option("--json-schema", a->json_schema_file, "Decode under this JSON Schema and report its cost per token")
      ->check(CLI::ExistingFile)
      ->excludes("--grammar");
  cmd->add_flag("--roofline", a->roofline, "Measure memory bandwidth and show decode speed against its limit");
  cmd->add_option("--verify", a->verify,
                  "Draft lengths k, comma-separated (e.g. 4,8): time a speculative-decoding verification step of 1 + k "
                  "tokens against a one-token decode step, after the first input length");
  cmd->add_flag("--interleave", a->interleave,
                "Prefill every input length, then decode them in turn one token each (a KV cache per input length), "
                "so that all see the same machine state: fair ratios such as decode at 4096 vs 128 positions");
  cmd->add_option("--parallel", a->parallel,
                  "Concurrent requests through the serving engine, comma-separated (e.g. 1,8,16): aggregate decode "
                  "tokens/s, TTFT and time per output token p50/p99");
  cmd->add_option("--kv-mem", a->kv_mem_mib, "With --parallel: KV pool budget in MiB (0: the engine's default)")
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", a->prefill_chunk, "With --parallel: tokens per engine step")
      ->capture_default_str();
  cmd->add_option("--block-size", a->block_size, "With --parallel: positions per KV block")
      ->check(CLI::IsMember({8, 16, 32, 64}))
      ->capture_default_str();
  cmd->add_option("--shared-prefix", a->shared_prefix,
                  "With --parallel: every prompt starts with the same N tokens; the first request fills the prefix "
                  "cache, the others start once it has its first token")
      ->capture_default_str();
  cmd->callback([a, &exit_code] { exit_code = run_bench(*a); });
}

}  // namespace edgellm::cli
