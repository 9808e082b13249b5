// Prompt lookup drafting for speculative decoding (Saxena 2023, "Prompt Lookup Decoding"): the tokens that
// followed the latest earlier occurrence of the context's last few tokens are a free guess at what comes
// next. Summaries, edits, code changes and answers from retrieved text repeat their input, so long runs of
// these guesses are right, and the model verifies a run in one batched step (runtime/speculation.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace edgellm {

class PromptLookup {
 public:
  // n-grams of max_ngram tokens down to min_ngram are looked up, longest first.
  explicit PromptLookup(int max_ngram = 3, int min_ngram = 1);

  // Replaces `draft` with up to max_tokens tokens: those after the latest earlier occurrence of the longest
  // suffix of `context` (of max_ngram .. min_ngram tokens) that occurs before. Empty if none occurs.
  // Scans the context backwards: O(context) per call, microseconds against a forward step.
  void propose(std::span<const int32_t> context, int max_tokens, std::vector<int32_t>& draft) const;

 private:
  int max_ngram_;
  int min_ngram_;
};

}  // namespace edgellm
