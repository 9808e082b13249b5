// Token sampler: turns one step's logits into the next token id, with penalties over a window of recent
// tokens and a seeded RNG of its own (no global state), so the same seed and logits give the same tokens.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "runtime/sampling_params.h"
#include "util/expected.h"

namespace edgellm {

class Sampler {
 public:
  // Returned by sample() when no token has a finite logit (every logit -inf or NaN: a broken forward pass or
  // biases that overflowed); the caller turns it into an error. validate() already rejects banning every token.
  static constexpr int32_t kNoToken = -1;

  // `params` must have passed params.validate(n_vocab) (checked: a failure is a programmer error). Allocates
  // all scratch here, about 12 bytes per vocabulary entry plus 4 with penalties on (~2.4 MB for Qwen's 151936).
  Sampler(const SamplingParams& params, int32_t n_vocab);
  // Validates and constructs; the error names the bad field.
  static Expected<Sampler> create(const SamplingParams& params, int32_t n_vocab);

  Sampler(Sampler&&) noexcept = default;
  Sampler& operator=(Sampler&&) noexcept = default;
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Picks the next token from `logits` (n_vocab floats). The order is llama.cpp's default sampler chain
  // (common/sampling.cpp: penalties, top-k, typical-p, top-p, min-p, temperature, dist):
  //   logit bias -> penalties over the window -> top-k -> typical-p -> top-p -> min-p -> temperature -> draw.
  // The truncations (top-k .. min-p) see temperature-1 probabilities; each renormalises over what the
  // previous one kept and keeps at least one token; temperature reshapes only the final draw. Greedy
  // (temperature <= 0) is the argmax after bias and penalties, ties to the lowest id, and draws nothing.
  // On return `logits` holds the biased and penalised values (nothing else is written). Allocates nothing.
  // Not thread-safe: one sampler per generating session.
  int32_t sample(float* logits);

  // Speculative decoding's verification of a token a draft proposed with certainty (prompt lookup: the draft's
  // distribution q is a point mass on `draft`). The same pipeline as sample(), but the final draw first accepts
  // `draft` with probability p(draft) under the distribution it draws from, and otherwise draws from that
  // distribution with `draft` removed (the rejection rule of Leviathan et al. 2023, "Fast Inference from
  // Transformers via Speculative Decoding", arXiv:2211.17192, for q = a point mass): the result is distributed
  // exactly as sample()'s. Greedy: the argmax, whatever the draft. kNoToken as draft is sample().
  int32_t sample(float* logits, int32_t draft);

  // Appends `token` (0 <= token < n_vocab, checked) to the penalty window. Call it for the prompt tokens
  // too, then for each sampled token. Allocates nothing.
  void accept(int32_t token);

  // Mirostat's running truncation threshold mu (bits); 2 * mirostat_tau after construction and reset().
  float mirostat_mu() const { return mirostat_mu_; }

  // Clears the penalty history, resets mirostat's mu and reseeds the RNG with params().seed: a fresh request.
  void reset();

  const SamplingParams& params() const { return params_; }
  int32_t n_vocab() const { return n_vocab_; }

  // One candidate of the current truncated set: the logit after bias and penalties.
  struct Candidate {
    int32_t id;
    float logit;
  };

 private:
  void apply_logit_bias(float* logits) const;
  void apply_penalties(float* logits);
  int32_t draw(size_t n_cand);
  int32_t draw_full(const float* logits, float max_logit);
  size_t draw_index(const float* weights, size_t n);
  // draw_index() with this call's draft at index draft_index (n: not among the weights); may zero its weight.
  size_t draw_index_given_draft(float* weights, size_t n, size_t draft_index);
  // Where this call's draft is among cand_[0, n_cand), or n_cand if it is not there (or there is none).
  size_t draft_position(size_t n_cand) const;
  int32_t sample_mirostat(const float* logits);

  SamplingParams params_;
  int32_t n_vocab_ = 0;
  bool penalties_on_ = false;
  std::mt19937_64 rng_;
  float mirostat_mu_ = 0.0f;
  int32_t draft_ = kNoToken;  // the draft of the current sample() call

  // Scratch, sized once from n_vocab.
  std::vector<Candidate> cand_;  // [n_vocab]: the current candidate set in its first n entries
  std::vector<float> weight_;    // [n_vocab]: exp(logit - max) by token id; in draw(), weights by position

  // Penalty window. counts_[id] = occurrences of id in the window. For a fixed window the tokens sit in a
  // ring buffer; for the whole context (-1) each distinct token is listed once in `window_` instead.
  std::vector<int32_t> counts_;  // [n_vocab] when penalties are on, else empty
  std::vector<int32_t> window_;  // ring of penalty_last_n tokens, or distinct tokens (capacity n_vocab)
  size_t window_size_ = 0;       // valid entries in window_
  size_t ring_next_ = 0;         // fixed window: slot the next token goes to
};

}  // namespace edgellm
