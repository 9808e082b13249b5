#include "runtime/prompt_lookup.h"

#include <algorithm>

namespace edgellm {

PromptLookup::PromptLookup(int max_ngram, int min_ngram)
    : max_ngram_(std::max(max_ngram, 1)), min_ngram_(std::clamp(min_ngram, 1, std::max(max_ngram, 1))) {}

void PromptLookup::propose(std::span<const int32_t> context, int max_tokens, std::vector<int32_t>& draft) const {
  draft.clear();
  const auto length = static_cast<int64_t>(context.size());
  if (max_tokens <= 0) return;
  for (int64_t n = std::min<int64_t>(max_ngram_, length - 1); n >= min_ngram_; --n) {
    const int32_t* suffix = context.data() + (length - n);
    // Occurrences ending before the suffix itself, latest first: the most recent text is the likeliest
    // to continue alike.
    for (int64_t start = length - n - 1; start >= 0; --start) {
      if (context[static_cast<size_t>(start)] != suffix[0] ||
          !std::equal(suffix, suffix + n, context.data() + start)) {
        continue;
      }
      const int64_t from = start + n;
      const int64_t to = std::min<int64_t>(from + max_tokens, length);
      draft.assign(context.begin() + from, context.begin() + to);
      return;
    }
  }
}

}  // namespace edgellm
