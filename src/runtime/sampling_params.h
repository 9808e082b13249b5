// Sampling parameters: what the Sampler applies to one step's logits, the named presets applications
// switch between per task, and the model's own defaults stored in GGUF metadata.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/expected.h"

namespace edgellm {

class GgufFile;

// "edge11m" spelled in hex-ish digits; any fixed value works, it only has to be stable across releases.
inline constexpr uint64_t kDefaultSamplingSeed = 0xED6E'11A0'5EED'0001ull;

// Longest penalty window accepted (tokens). The window is a ring buffer allocated up front, so an absurd
// value would be an allocation bomb; 1M tokens is beyond any context length edgellm supports.
inline constexpr int32_t kMaxPenaltyLastN = 1 << 20;

struct SamplingParams {
  float temperature = 0.8f;         // <= 0: greedy (argmax, ties -> lowest id); must be finite
  int32_t top_k = 40;               // 0 or -1: off; other negatives are invalid
  float top_p = 0.95f;              // in [0, 1]; 1: off; 0 keeps only the most likely token
  float min_p = 0.05f;              // in [0, 1]; 0: off (relative to the top probability)
  float typical_p = 1.0f;           // in [0, 1]; 1: off (locally typical sampling)
  float repetition_penalty = 1.0f;  // > 0; 1: off (CTRL-style: divide positive logits, multiply negative ones)
  float frequency_penalty = 0.0f;   // finite; OpenAI-style: minus count * f
  float presence_penalty = 0.0f;    // finite; minus p if the token appeared
  // Window over the most recent accepted tokens (prompt tail + generated); 0: off, -1: whole context since
  // the last reset, at most kMaxPenaltyLastN.
  int32_t penalty_last_n = 64;
  uint64_t seed = kDefaultSamplingSeed;  // same seed + same logits -> same tokens
  // (token id, bias) added to the logits before everything else; -inf bans the token. Biases for the same
  // id add up. Must be finite or -inf, ids in [0, n_vocab), and must not ban every token.
  std::vector<std::pair<int32_t, float>> logit_bias;
  // Mirostat (Basu et al. 2021, arXiv:2007.14966): 0 off, 1 = Mirostat, 2 = Mirostat 2.0. When on it
  // replaces top-k, typical-p, top-p and min-p: it truncates each step so the observed surprise (bits)
  // tracks mirostat_tau, with learning rate mirostat_eta. Bias, penalties and temperature still apply.
  int32_t mirostat = 0;
  float mirostat_tau = 5.0f;  // target surprise in bits; finite, > 0 (checked only with mirostat on)
  float mirostat_eta = 0.1f;  // finite, >= 0 (checked only with mirostat on)

  // Checks ranges and finiteness of every field for a vocabulary of n_vocab tokens. Errors are
  // kInvalidArgument with a message naming the field and showing the value, e.g.
  // "sampling: top_p must be in [0, 1] (1 disables it), got 1.5".
  Status validate(int32_t n_vocab) const;

  bool greedy() const { return temperature <= 0.0f; }
};

// Named presets for common tasks; fields not listed keep their defaults.
//   "qa"       temperature 0.3, top_p 0.9   (question answering: focused)
//   "creative" temperature 0.8, top_p 0.95  (creative writing)
//   "code"     temperature 0.5, top_p 0.85
//   "greedy"   temperature 0 (argmax)
// Unknown names: kInvalidArgument listing the known ones.
Expected<SamplingParams> sampling_preset(std::string_view name);
std::vector<std::string> sampling_preset_names();

// The model's recommended sampling (converted from generation_config.json): GGUF keys
// general.sampling.{temp, top_k, top_p, min_p, penalty_repeat, penalty_last_n} override the defaults.
// Absent keys keep the defaults; a mistyped or out-of-range value is logged as a warning naming the file
// and key and also keeps the default, so a bad hint never prevents loading the model.
SamplingParams sampling_defaults_from_gguf(const GgufFile& gguf);

}  // namespace edgellm
