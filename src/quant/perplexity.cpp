#include "quant/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "model/kv_cache.h"
#include "model/transformer.h"

namespace edgellm {
namespace {

// Running sums of a per-position quantity, for its mean and standard error.
struct Moments {
  double n = 0, sum = 0, sum_sq = 0;
  void add(double v) {
    n += 1;
    sum += v;
    sum_sq += v * v;
  }
  MeanWithError get() const {
    MeanWithError r;
    if (n <= 0) return r;
    r.mean = sum / n;
    const double var = n > 1 ? std::max(0.0, (sum_sq - n * r.mean * r.mean) / (n - 1)) : 0.0;
    r.stderr_ = std::sqrt(var / n);
    return r;
  }
};

// log-softmax of one row of logits into `out`, in double for the sums.
void log_softmax(const float* logits, int64_t n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double max = logits[0];
  for (int64_t i = 1; i < n; ++i) max = std::max(max, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const double log_z = max + std::log(sum);
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<double>(logits[i]) - log_z;
}

int64_t argmax(const float* v, int64_t n) { return std::max_element(v, v + n) - v; }

// One model's state for a window: its cache, scratch and the logits of the current step.
struct Runner {
  const Model& model;
  Transformer transformer;
  KvCache kv;
  ForwardScratch scratch;
  std::vector<float> logits;
  Runner(const Model& m, KvCache cache, int64_t batch, int64_t n_ctx, int n_threads)
      : model(m), transformer(m), kv(std::move(cache)), scratch(m.config(), batch, n_ctx, n_threads) {}
};

Expected<std::unique_ptr<Runner>> make_runner(const Model& m, int64_t n_ctx, int64_t batch, int n_threads) {
  EDGELLM_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(m.config(), n_ctx, DType::kF16));
  return std::make_unique<Runner>(m, std::move(kv), batch, n_ctx, n_threads);
}

}  // namespace

Expected<PerplexityResult> compute_perplexity(const Model& model, const Model* base, const std::vector<int32_t>& tokens,
                                              const PerplexityOptions& options, ThreadPool& pool,
                                              const PerplexityProgress& progress) {
  const int64_t n_ctx = options.n_ctx;
  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t stride = options.stride > 0 ? options.stride : n_ctx;
  const int64_t V = model.config().n_vocab;
  if (n_ctx < 4) return make_error(ErrorCode::kInvalidArgument, "perplexity: --ctx must be at least 4");
  if (n_tokens < n_ctx) {
    return make_error(ErrorCode::kInvalidArgument, "perplexity: the text has " + std::to_string(n_tokens) +
                                                       " tokens, fewer than one window of " + std::to_string(n_ctx));
  }
  if (base && base->config().n_vocab != V) {
    return make_error(ErrorCode::kInvalidArgument, "perplexity: --kl-base has " +
                                                       std::to_string(base->config().n_vocab) +
                                                       " vocabulary entries, the model " + std::to_string(V));
  }
  const int64_t batch = std::max<int64_t>(1, options.batch);
  const int n_threads = static_cast<int>(pool.n_threads());
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Runner> run, make_runner(model, n_ctx, batch, n_threads));
  std::unique_ptr<Runner> run_base;
  if (base) {
    EDGELLM_ASSIGN_OR_RETURN(run_base, make_runner(*base, n_ctx, batch, n_threads));
  }

  Moments nll, nll_base, kl, top1;
  std::vector<double> kl_values;
  std::vector<double> logp, logp_base;
  PerplexityResult result;
  result.has_base = base != nullptr;
  const int64_t first = n_ctx / 2;
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));

  for (int64_t start = 0; start + n_ctx <= n_tokens; start += stride) {
    if (options.max_chunks > 0 && result.n_chunks >= options.max_chunks) break;
    std::copy_n(tokens.begin() + start, n_ctx, window.begin());
    if (options.bos_id) window[0] = *options.bos_id;
    // Positions j predict window[j + 1]; each target is scored once even when windows overlap.
    const int64_t score_begin = start == 0 ? first : std::max(first, n_ctx - stride - 1);
    const int64_t score_end = n_ctx - 1;

    for (Runner* r : {run.get(), run_base.get()}) {
      if (!r) continue;
      r->kv.set_n_past(0);
      const auto t0 = std::chrono::steady_clock::now();
      EDGELLM_TRY(r->transformer.forward(window.data(), score_begin, r->kv, r->scratch, pool, LogitsMode::kNone,
                                         r->logits));
      if (r == run.get()) {
        result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        result.tokens_evaluated += score_begin;
      }
    }
    for (int64_t pos = score_begin; pos < score_end; pos += batch) {
      const int64_t n = std::min(batch, score_end - pos);
      for (Runner* r : {run.get(), run_base.get()}) {
        if (!r) continue;
        const auto t0 = std::chrono::steady_clock::now();
        EDGELLM_TRY(r->transformer.forward(window.data() + pos, n, r->kv, r->scratch, pool, LogitsMode::kAll,
                                           r->logits));
        if (r == run.get()) {
          result.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          result.tokens_evaluated += n;
        }
      }
      for (int64_t i = 0; i < n; ++i) {
        const int32_t target = window[static_cast<size_t>(pos + i + 1)];
        const float* row = &run->logits[static_cast<size_t>(i * V)];
        log_softmax(row, V, logp);
        nll.add(-logp[static_cast<size_t>(target)]);
        if (!run_base) continue;
        const float* row_base = &run_base->logits[static_cast<size_t>(i * V)];
        log_softmax(row_base, V, logp_base);
        nll_base.add(-logp_base[static_cast<size_t>(target)]);
        double d = 0;
        for (int64_t v = 0; v < V; ++v) {
          const double lp = logp_base[static_cast<size_t>(v)];
          d += std::exp(lp) * (lp - logp[static_cast<size_t>(v)]);
        }
        d = std::max(0.0, d);  // rounding can leave a tiny negative sum for identical distributions
        kl.add(d);
        kl_values.push_back(d);
        top1.add(argmax(row, V) == argmax(row_base, V) ? 1.0 : 0.0);
      }
    }
    ++result.n_chunks;
    result.n_scored = static_cast<int64_t>(nll.n);
    result.nll = nll.get();
    result.ppl = std::exp(result.nll.mean);
    result.ppl_stderr = result.ppl * result.nll.stderr_;
    if (run_base) {
      const MeanWithError b = nll_base.get();
      result.base_ppl = std::exp(b.mean);
      result.base_ppl_stderr = result.base_ppl * b.stderr_;
      result.kl = kl.get();
      result.top1 = top1.get();
    }
    if (progress) progress(result);
  }
  if (result.n_chunks == 0) return make_error(ErrorCode::kInvalidArgument, "perplexity: no complete window");
  if (!kl_values.empty()) {
    const size_t k = std::min(kl_values.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(kl_values.size())));
    std::nth_element(kl_values.begin(), kl_values.begin() + static_cast<std::ptrdiff_t>(k), kl_values.end());
    result.kl_p99 = kl_values[k];
  }
  return result;
}

}  // namespace edgellm
