// ChatML renderers: generic ChatML, Qwen 1, Qwen 1.5/2/2.5 and Qwen3.
#include <string>

#include "chat/prompt_text.h"
#include "chat/renderers.h"

namespace edgellm::chat_detail {

namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";

// "<|im_start|>{role}\n{content}<|im_end|>" followed by `tail`.
void append_turn(PromptBuilder& out, std::string_view role, std::string_view content, std::string_view tail) {
  out.special(kImStart);
  out.special(role);
  out.special("\n");
  out.content(content);
  out.special(kImEnd);
  out.special(tail);
}

void append_generation_prompt(PromptBuilder& out) {
  out.special(kImStart);
  out.special("assistant\n");
}

}  // namespace

RenderedPrompt render_chatml(const std::vector<ChatMessage>& messages, const ChatOptions& opts) {
  PromptBuilder out;
  for (const ChatMessage& message : messages) append_turn(out, message.role, message.content, "\n");
  if (opts.add_generation_prompt) append_generation_prompt(out);
  return std::move(out).finish();
}

// Qwen2-Instruct / Qwen1.5-Chat: the loop prints every message and, before the first one, the default
// system turn unless messages[0] is a system turn. Qwen2.5-Instruct (qwen2.5-instruct.jinja) prints the
// same text when no tools are involved: system first (given or default), then user/assistant/system turns.
RenderedPrompt render_qwen2(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                            std::string_view default_system) {
  PromptBuilder out;
  if (messages.front().role != "system") {
    out.special(kImStart);
    out.special("system\n");
    out.special(default_system);  // template text: encoded exactly as transformers would
    out.special(kImEnd);
    out.special("\n");
  }
  for (const ChatMessage& message : messages) append_turn(out, message.role, message.content, "\n");
  if (opts.add_generation_prompt) append_generation_prompt(out);
  return std::move(out).finish();
}

// Qwen 1 builds the prompt in Python (qwen_generation_utils.make_context, chat_format="chatml"; see
// tests/data/reference/chat-templates/qwen1-chatml.md): the system turn, then "\n"-joined turns, then
// "\n<|im_start|>assistant\n". Without the generation prompt the text ends at the last "<|im_end|>",
// which is exactly the prefix the next make_context call starts with.
Expected<RenderedPrompt> render_qwen1(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                                      std::string_view default_system) {
  PromptBuilder out;
  size_t first = 0;
  out.special(kImStart);
  out.special("system\n");
  if (messages.front().role == "system") {
    out.content(messages.front().content);
    first = 1;
  } else {
    out.special(default_system);
  }
  out.special(kImEnd);
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    if (message.role == "system") {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template 'qwen1': message " + std::to_string(i) +
                            " is a system message; Qwen 1 takes one system prompt, as the first message");
    }
    out.special("\n");
    append_turn(out, message.role, message.content, "");
  }
  if (opts.add_generation_prompt) {
    out.special("\n");
    append_generation_prompt(out);
  }
  return std::move(out).finish();
}

// qwen3.jinja without tools. The template keeps an assistant turn's reasoning only for turns after the
// last real user query (tool responses sent as user turns do not count), and always for the last
// message; earlier turns keep only their answer.
RenderedPrompt render_qwen3(const std::vector<ChatMessage>& messages, const ChatOptions& opts) {
  constexpr std::string_view kThinkOpen = "<think>";
  constexpr std::string_view kThinkClose = "</think>";
  constexpr std::string_view kToolResponseOpen = "<tool_response>";
  constexpr std::string_view kToolResponseClose = "</tool_response>";

  PromptBuilder out;
  const size_t n_messages = messages.size();
  if (messages.front().role == "system") append_turn(out, "system", messages.front().content, "\n");

  // ns.last_query_index: the last user message that is not a wrapped tool response; n-1 if none.
  size_t last_query_idx = n_messages - 1;
  for (size_t i = n_messages; i-- > 0;) {
    const ChatMessage& message = messages[i];
    const std::string_view content = message.content;
    const bool is_tool_response = content.starts_with(kToolResponseOpen) && content.ends_with(kToolResponseClose);
    if (message.role == "user" && !is_tool_response) {
      last_query_idx = i;
      break;
    }
  }

  for (size_t i = 0; i < n_messages; ++i) {
    const ChatMessage& message = messages[i];
    if (message.role == "user" || (message.role == "system" && i > 0)) {
      append_turn(out, message.role, message.content, "\n");
      continue;
    }
    if (message.role != "assistant") continue;  // the first system turn, printed above

    std::string_view content = message.content;
    std::string_view reasoning;
    if (message.reasoning_content.has_value()) {
      reasoning = *message.reasoning_content;
    } else if (const size_t first_close = content.find(kThinkClose); first_close != std::string_view::npos) {
      // content.split('</think>')[-1].lstrip('\n')
      const size_t last_close = content.rfind(kThinkClose);
      const std::string_view after = content.substr(last_close + kThinkClose.size());
      // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
      std::string_view before = rstrip_char(content.substr(0, first_close), '\n');
      if (const size_t open = before.rfind(kThinkOpen); open != std::string_view::npos) {
        before = before.substr(open + kThinkOpen.size());
      }
      reasoning = lstrip_char(before, '\n');
      content = lstrip_char(after, '\n');
    }

    const bool is_last = i + 1 == n_messages;
    out.special(kImStart);
    if (i > last_query_idx && (is_last || !reasoning.empty())) {
      out.special("assistant\n<think>\n");
      out.content(strip_char(reasoning, '\n'));
      out.special("\n</think>\n\n");
      out.content(lstrip_char(content, '\n'));
    } else {
      out.special("assistant\n");
      out.content(content);
    }
    out.special(kImEnd);
    out.special("\n");
  }

  if (opts.add_generation_prompt) {
    append_generation_prompt(out);
    if (opts.enable_thinking.has_value() && !*opts.enable_thinking) out.special("<think>\n\n</think>\n\n");
  }
  return std::move(out).finish();
}

}  // namespace edgellm::chat_detail
