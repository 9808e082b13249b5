// Chunked perplexity and KL divergence to a base model, as llama.cpp's perplexity tool defines them
// (ggml-org/llama.cpp: tools/perplexity/perplexity.cpp): the text is tokenized once, cut into windows of
// n_ctx tokens (BOS replacing the first token when the tokenizer adds one), the first half of each
// window is context only and every later position predicts the next token.
//
//   PPL = exp(mean NLL),  stderr(PPL) = PPL * sd(NLL) / sqrt(n)          (delta method)
//   KL  = mean over scored positions of sum_v p_base(v) (log p_base(v) - log p(v)),  stderr = sd / sqrt(n)
//   top-1 agreement = fraction of positions where both models' most likely token is the same
//
// Both models run window by window in steps of `batch` scored positions, so memory holds at most
// 2 x batch x n_vocab logits, never the whole text's.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "model/model.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t stride = 0;      // window start to window start; 0: n_ctx (non-overlapping windows)
  int64_t max_chunks = 0;  // 0: every window that fits
  int64_t batch = 64;      // positions per forward step in the scored half
  std::optional<int32_t> bos_id;  // replaces the first token of each window when set
};

struct MeanWithError {
  double mean = 0;
  double stderr_ = 0;
};

struct PerplexityResult {
  int64_t n_chunks = 0;
  int64_t n_scored = 0;
  double ppl = 0, ppl_stderr = 0;
  MeanWithError nll;
  double seconds = 0;            // forward time of the model under test (not the base)
  int64_t tokens_evaluated = 0;  // tokens the model under test ran through
  bool has_base = false;
  double base_ppl = 0, base_ppl_stderr = 0;
  MeanWithError kl;       // KL(base || model), nats per token
  MeanWithError top1;     // agreement of the argmax tokens
  double kl_p99 = 0;      // 99th percentile of per-token KL
};

// Called after each window with the running result (for progress lines).
using PerplexityProgress = std::function<void(const PerplexityResult& running)>;

// `base` may be null. The models must share the vocabulary size (kInvalidArgument otherwise); too few
// tokens for one window is kInvalidArgument naming both counts.
Expected<PerplexityResult> compute_perplexity(const Model& model, const Model* base, const std::vector<int32_t>& tokens,
                                              const PerplexityOptions& options, ThreadPool& pool,
                                              const PerplexityProgress& progress = nullptr);

}  // namespace edgellm
