// Llama renderers: Llama 2 chat, Llama 3 Instruct, Llama 3.1 / 3.2 Instruct (without tools).
#include <string>

#include "chat/prompt_text.h"
#include "chat/renderers.h"

namespace edgellm::chat_detail {

namespace {

constexpr std::string_view kLlama3Bos = "<|begin_of_text|>";
constexpr std::string_view kLlama2Bos = "<s>";
constexpr std::string_view kLlama2Eos = "</s>";

std::string_view or_default(const std::string& value, std::string_view fallback) {
  return value.empty() ? fallback : std::string_view(value);
}

// '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>'
void append_llama3_turn(PromptBuilder& out, std::string_view role, std::string_view content) {
  out.special("<|start_header_id|>");
  out.special(role);
  out.special("<|end_header_id|>\n\n");
  out.content(python_strip(content));  // Jinja's trim is Python's str.strip()
  out.special("<|eot_id|>");
}

void append_llama3_generation_prompt(PromptBuilder& out) {
  out.special("<|start_header_id|>assistant<|end_header_id|>\n\n");
}

}  // namespace

// Llama-2-chat's tokenizer_config.json template: an optional first system message is folded into the
// first user turn as "<<SYS>>\n...\n<</SYS>>\n\n"; user and assistant must alternate, starting with the
// user; each turn's text is .strip()ped as a whole. It has no generation prompt: the prompt already
// ends with " [/INST]", so add_generation_prompt changes nothing (as in transformers).
Expected<RenderedPrompt> render_llama2(const std::vector<ChatMessage>& messages, const ChatOptions& opts) {
  const std::string_view bos = or_default(opts.bos_token, kLlama2Bos);
  const std::string_view eos = or_default(opts.eos_token, kLlama2Eos);
  const bool has_system = messages.front().role == "system";
  const size_t first = has_system ? 1 : 0;

  PromptBuilder out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const size_t turn_idx = i - first;
    const bool expect_user = turn_idx % 2 == 0;
    if ((message.role == "user") != expect_user || message.role == "system") {
      return make_error(ErrorCode::kInvalidArgument,
                        "chat template 'llama2': message " + std::to_string(i) + " has role '" + message.role +
                            "', expected '" + (expect_user ? "user" : "assistant") +
                            "': conversation roles must alternate user/assistant/user/assistant/... "
                            "after an optional first system message");
    }
    std::vector<PromptSegment> text;
    if (turn_idx == 0 && has_system) {
      text.push_back({"<<SYS>>\n", true});
      text.push_back({messages.front().content, false});
      text.push_back({"\n<</SYS>>\n\n", true});
    }
    text.push_back({message.content, false});
    python_strip_pieces(text);

    if (message.role == "user") {
      out.special(bos);
      out.special("[INST] ");
      out.append(text);
      out.special(" [/INST]");
    } else {
      out.special(" ");
      out.append(text);
      out.special(" ");
      out.special(eos);
    }
  }
  return std::move(out).finish();
}

// llama-3-instruct.jinja: BOS before the first turn, every message as a header + trimmed content.
RenderedPrompt render_llama3(const std::vector<ChatMessage>& messages, const ChatOptions& opts) {
  PromptBuilder out;
  out.special(or_default(opts.bos_token, kLlama3Bos));
  for (const ChatMessage& message : messages) append_llama3_turn(out, message.role, message.content);
  if (opts.add_generation_prompt) append_llama3_generation_prompt(out);
  return std::move(out).finish();
}

// llama-3.1-instruct.jinja and llama-3.2-instruct.jinja print the same text when no tools are given: a
// system block that always exists (knowledge cutoff, date, then the trimmed first system message if
// any), then the remaining messages as in Llama 3.
RenderedPrompt render_llama31(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                              std::string_view date) {
  PromptBuilder out;
  out.special(or_default(opts.bos_token, kLlama3Bos));
  const bool has_system = messages.front().role == "system";
  out.special("<|start_header_id|>system<|end_header_id|>\n\n");
  out.special("Cutting Knowledge Date: December 2023\n");
  out.special("Today Date: ");
  out.content(date);  // caller-supplied: never parsed for special tokens
  out.special("\n\n");
  if (has_system) out.content(python_strip(messages.front().content));
  out.special("<|eot_id|>");
  for (size_t i = has_system ? 1 : 0; i < messages.size(); ++i) {
    append_llama3_turn(out, messages[i].role, messages[i].content);
  }
  if (opts.add_generation_prompt) append_llama3_generation_prompt(out);
  return std::move(out).finish();
}

}  // namespace edgellm::chat_detail
