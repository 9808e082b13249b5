#include "chat/prompt_tokens.h"

#include "tokenizer/tokenizer.h"

namespace edgellm {

Expected<std::vector<int32_t>> encode_prompt(const Tokenizer& tokenizer, const RenderedPrompt& prompt) {
  std::vector<TextSegment> segments;
  segments.reserve(prompt.segments.size());
  for (const PromptSegment& segment : prompt.segments) segments.push_back(TextSegment{segment.text, segment.allow_special});
  return tokenizer.encode_segments(segments);
}

}  // namespace edgellm
