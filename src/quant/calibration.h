// Activation statistics for importance-weighted quantization (`edgellm convert --calib FILE.txt`):
// the model runs over calibration text and, for every matrix, records the mean square of its input on
// each input channel, E[a_j^2]. quant/scale_search.h weights each weight's squared error by it, so the
// error a matmul output sees, E[(a . (w - w_q))^2] ~ sum_j E[a_j^2] (w_j - w_qj)^2, is what is minimised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "util/expected.h"
#include "util/thread_pool.h"

namespace edgellm {

struct ActivationStats {
  // GGUF tensor name ("blk.3.ffn_down.weight", "output.weight"; "token_embd.weight" when the output is
  // tied) -> mean of a_j^2 over all calibration tokens, one value per input channel (the row length).
  std::map<std::string, std::vector<float>> mean_sq;
  // The same names -> mean of a a^T, [dim][dim] row-major f32: the Hessian of GPTQ (quant/gptq.h).
  // Matrices reading the same input (q/k/v, gate/up) share one. Empty unless collected (with_gram).
  std::map<std::string, std::shared_ptr<const std::vector<float>>> gram;
  int64_t n_tokens = 0;

  const std::vector<float>* find(const std::string& gguf_name) const {
    auto it = mean_sq.find(gguf_name);
    return it == mean_sq.end() ? nullptr : &it->second;
  }
  const std::vector<float>* find_gram(const std::string& gguf_name) const {
    auto it = gram.find(gguf_name);
    return it == gram.end() ? nullptr : it->second.get();
  }
};

// Inputs wider than this get no Gram matrix (dim^2 floats each; their matrices fall back to the
// diagonal weighting): 16384^2 floats are 1 GiB.
constexpr int64_t kMaxGramDim = 16384;

// Runs the model (any runnable weight types, typically the f32/f16 source) over `tokens` in independent
// windows of up to `window` tokens and accumulates the statistics. The forward pass is the one of
// model/transformer.cpp, re-traced here with taps on every matmul input (checked against
// Transformer::forward by tests/quant_search_test.cpp). When `logits` is not null it receives the last
// window's logits, [n][n_vocab], for that check. With `with_gram`, also the full second moments (gram),
// which costs dim^2 floats per distinct matmul input and n_tokens * dim^2 multiply-adds.
// Errors: empty token list, token id out of range (kInvalidArgument).
Expected<ActivationStats> collect_activation_stats(const Model& model, const std::vector<int32_t>& tokens,
                                                   int64_t window, ThreadPool& pool,
                                                   std::vector<float>* logits = nullptr, bool with_gram = false);

// Data-free calibration: the model writes its own calibration text. n_tokens / window sequences of
// `window` tokens, each starting from BOS (EOS when the tokenizer adds no BOS: Qwen's document separator)
// and sampled at temperature 1 from the full softmax with a seeded generator (same tokens for the same
// model, seed and thread count). Activations on the model's own samples stand in for those of real
// text (GPTQ's Hessians from them recover most of the gain of real text: docs/quantization.md).
// Errors: the tokenizer cannot be loaded from model.path(), forward errors.
Expected<std::vector<int32_t>> sample_calibration_tokens(const Model& model, int64_t n_tokens, int64_t window,
                                                         uint64_t seed, ThreadPool& pool);

// Text file -> tokens with the model's tokenizer (BOS first if the tokenizer adds one), capped at
// max_tokens. Errors: unreadable file (naming it), tokenizer errors.
Expected<std::vector<int32_t>> tokenize_calibration_file(const Model& model, const std::string& text_path,
                                                         int64_t max_tokens);

}  // namespace edgellm
