// edgellm perplexity -m MODEL -f TEXT [--ctx 512] [--stride N] [--chunks N] [--kl-base MODEL]:
// chunked perplexity, KL divergence and top-1 agreement against a base model (quant/perplexity.h),
// prefill and (with --bench-decode) decode tokens/s, and the process's peak memory.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/transformer.h"
#include "quant/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::cli {
namespace {

struct PerplexityArgs {
  std::string model, text, kl_base;
  int64_t ctx = 512, stride = 0, chunks = 0, batch = 64;
  int threads = 0;
  int bench_decode = 0;
  bool json = false, quiet = false;
};

Expected<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, path + ": cannot read");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Greedy decode of n tokens after a short prompt; returns single-token steps per second.
Expected<double> bench_decode(const Model& model, const std::vector<int32_t>& prompt, int n, ThreadPool& pool) {
  const ModelConfig& c = model.config();
  const int64_t n_ctx = static_cast<int64_t>(prompt.size()) + n + 1;
  EDGELLM_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(c, n_ctx, DType::kF16));
  ForwardScratch scratch(c, static_cast<int64_t>(prompt.size()), n_ctx, pool.n_threads());
  Transformer transformer(model);
  std::vector<float> logits;
  EDGELLM_TRY(transformer.forward(prompt.data(), static_cast<int64_t>(prompt.size()), kv, scratch, pool,
                                  LogitsMode::kLast, logits));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EDGELLM_TRY(transformer.forward(&next, 1, kv, scratch, pool, LogitsMode::kLast, logits));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return n / std::max(seconds, 1e-9);
}

int run_perplexity(const PerplexityArgs& a) {
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "edgellm perplexity: %s\n", e.message.c_str());
    return 1;
  };
  auto model = Model::load(a.model);
  if (!model.ok()) return fail(model.error());
  std::unique_ptr<Model> base;
  if (!a.kl_base.empty()) {
    auto b = Model::load(a.kl_base);
    if (!b.ok()) return fail(b.error());
    base = std::move(*b);
  }
  auto tokenizer = Tokenizer::from_path(a.model);
  if (!tokenizer.ok()) return fail(tokenizer.error());
  (*model)->repack_for_matmul();
  if (base) base->repack_for_matmul();
  auto text = read_file(a.text);
  if (!text.ok()) return fail(text.error());
  // With --chunks, only a generous prefix of the text is tokenized (16 bytes per token, twice over).
  std::string_view view(*text);
  const int64_t stride = a.stride > 0 ? a.stride : a.ctx;
  if (a.chunks > 0) {
    size_t cut = static_cast<size_t>((a.chunks * stride + a.ctx) * 32);
    if (cut < view.size()) {
      while (cut > 0 && (static_cast<unsigned char>(view[cut]) & 0xC0) == 0x80) --cut;
      view = view.substr(0, cut);
    }
  }
  auto tokens = (*tokenizer)->encode(view, false);
  if (!tokens.ok()) return fail(tokens.error());

  PerplexityOptions options;
  options.n_ctx = a.ctx;
  options.stride = a.stride;
  options.max_chunks = a.chunks;
  options.batch = a.batch;
  if ((*tokenizer)->add_bos()) options.bos_id = (*tokenizer)->bos_id();
  ThreadPool pool(a.threads);
  auto result = compute_perplexity(**model, base.get(), *tokens, options, pool, [&](const PerplexityResult& r) {
    if (a.quiet || a.json) return;
    std::fprintf(stderr, "[chunk %lld] PPL %.4f%s\n", static_cast<long long>(r.n_chunks), r.ppl,
                 r.has_base ? (" KL " + std::to_string(r.kl.mean)).c_str() : "");
  });
  if (!result.ok()) return fail(result.error());
  const PerplexityResult& r = *result;
  const double prefill_tps = r.tokens_evaluated / std::max(r.seconds, 1e-9);
  double decode_tps = 0;
  if (a.bench_decode > 0) {
    std::vector<int32_t> prompt(tokens->begin(), tokens->begin() + std::min<size_t>(16, tokens->size()));
    if (options.bos_id) prompt[0] = *options.bos_id;
    auto tps = bench_decode(**model, prompt, a.bench_decode, pool);
    if (!tps.ok()) return fail(tps.error());
    decode_tps = *tps;
  }
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: kilobytes

  if (a.json) {
    std::printf("{\"model\": \"%s\", \"n_ctx\": %lld, \"chunks\": %lld, \"scored\": %lld, \"ppl\": %.6f, "
                "\"ppl_stderr\": %.6f, \"prefill_tps\": %.2f, \"decode_tps\": %.2f, \"peak_rss_mb\": %.1f, "
                "\"threads\": %d, \"isa\": \"%s\"",
                a.model.c_str(), static_cast<long long>(a.ctx), static_cast<long long>(r.n_chunks),
                static_cast<long long>(r.n_scored), r.ppl, r.ppl_stderr, prefill_tps, decode_tps, peak_mb,
                pool.n_threads(), matmul_isa_name());
    if (r.has_base) {
      std::printf(", \"base_ppl\": %.6f, \"kl\": %.8f, \"kl_stderr\": %.8f, \"kl_p99\": %.8f, \"top1\": %.6f, "
                  "\"top1_stderr\": %.6f",
                  r.base_ppl, r.kl.mean, r.kl.stderr_, r.kl_p99, r.top1.mean, r.top1.stderr_);
    }
    std::printf("}\n");
    return 0;
  }
  std::printf("model: %s\n", a.model.c_str());
  std::printf("windows: %lld x %lld tokens, %lld positions scored\n", static_cast<long long>(r.n_chunks),
              static_cast<long long>(a.ctx), static_cast<long long>(r.n_scored));
  std::printf("PPL = %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  if (r.has_base) {
    std::printf("base PPL = %.4f +/- %.4f (%s)\n", r.base_ppl, r.base_ppl_stderr, a.kl_base.c_str());
    std::printf("mean KL(base || model) = %.6f +/- %.6f nats/token (99th percentile %.6f)\n", r.kl.mean,
                r.kl.stderr_, r.kl_p99);
    std::printf("top-1 agreement = %.3f%% +/- %.3f%%\n", 100 * r.top1.mean, 100 * r.top1.stderr_);
  }
  std::printf("speed: %.1f tokens/s prefill (%d threads, %s)\n", prefill_tps, pool.n_threads(), matmul_isa_name());
  if (a.bench_decode > 0) std::printf("decode: %.1f tokens/s (%d tokens)\n", decode_tps, a.bench_decode);
  std::printf("peak memory: %.1f MB (resident)\n", peak_mb);
  return 0;
}

}  // namespace

void add_perplexity_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<PerplexityArgs>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a model on a text, and KL divergence to a base model");
  cmd->add_option("-m,--model", a->model, "Model (.gguf or Hugging Face directory)")->required();
  cmd->add_option("-f,--file", a->text, "Text file")->required();
  cmd->add_option("-c,--ctx", a->ctx, "Window length; the first half is context, the second half is scored")
      ->capture_default_str();
  cmd->add_option("--stride", a->stride, "Tokens between window starts (0: the window length)")->capture_default_str();
  cmd->add_option("--chunks", a->chunks, "Stop after this many windows (0: the whole text)")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0: one per core of the fastest cluster)")->capture_default_str();
  cmd->add_option("-b,--batch", a->batch, "Positions per forward step")->capture_default_str();
  cmd->add_option("--kl-base", a->kl_base,
                  "Base model (e.g. the f16 file) for KL divergence and top-1 agreement, run window by window");
  cmd->add_option("--bench-decode", a->bench_decode, "Also time this many greedy single-token decode steps");
  cmd->add_flag("--json", a->json, "One JSON object on stdout instead of the report");
  cmd->add_flag("--quiet", a->quiet, "No per-window progress lines");
  cmd->callback([a, &exit_code] { exit_code = run_perplexity(*a); });
}

}  // namespace edgellm::cli
