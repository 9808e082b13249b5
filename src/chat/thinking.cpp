#include <string>

#include "chat/chat_template.h"
#include "chat/prompt_text.h"

namespace edgellm {

ThinkingSplit split_thinking(std::string_view generated) {
  constexpr std::string_view kOpen = "<think>";
  constexpr std::string_view kClose = "</think>";
  using chat_detail::lstrip_char;
  using chat_detail::strip_char;

  ThinkingSplit result;
  const size_t close = generated.find(kClose);
  if (close != std::string_view::npos) {
    // Everything up to the first </think> is reasoning, after the last <think> before it if any:
    // Qwen3-Thinking-2507 and QwQ put "<think>\n" in the prompt, so the reply has only the closing tag.
    std::string_view reasoning = generated.substr(0, close);
    if (const size_t open = reasoning.rfind(kOpen); open != std::string_view::npos) {
      reasoning = reasoning.substr(open + kOpen.size());
    }
    result.reasoning = std::string(strip_char(reasoning, '\n'));
    result.answer = std::string(lstrip_char(generated.substr(close + kClose.size()), '\n'));
    result.reasoning_closed = true;
    return result;
  }
  // No closing tag: reasoning still running if the reply opened with <think> (after blank lines,
  // which some models emit first), otherwise there is no reasoning at all.
  const std::string_view body = lstrip_char(generated, '\n');
  if (body.starts_with(kOpen)) {
    result.reasoning = std::string(lstrip_char(body.substr(kOpen.size()), '\n'));
  } else {
    result.answer = std::string(generated);
  }
  return result;
}

}  // namespace edgellm
