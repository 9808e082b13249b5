#include "runtime/prompt_tokens.h"

namespace edgellm {

Expected<std::vector<int32_t>> completion_tokens(const LoadedModel& model, std::string_view prompt, bool allow_special) {
  EDGELLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, model.tokenizer().encode(prompt, allow_special));
  if (model.tokenizer().add_bos()) {
    if (auto bos = model.tokenizer().bos_id()) tokens.insert(tokens.begin(), *bos);
  }
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  return tokens;
}

Expected<std::vector<int32_t>> chat_tokens(const LoadedModel& model, const std::vector<ChatMessage>& messages,
                                           const ChatOptions& options) {
  EDGELLM_ASSIGN_OR_RETURN(RenderedPrompt rendered, model.chat_template().render(messages, options));
  std::vector<TextSegment> segments;
  segments.reserve(rendered.segments.size());
  for (const auto& s : rendered.segments) segments.push_back(TextSegment{s.text, s.allow_special});
  return model.tokenizer().encode_segments(segments);
}

}  // namespace edgellm
