// Chat templates: turn a conversation into the exact prompt text a chat model was trained on.
//
// edgellm does not interpret Jinja. Each supported model family has a hand-written renderer that is
// byte-identical with Hugging Face transformers' apply_chat_template(..., tokenize=False) for that
// family's real template (tests/python/test_chat_template.py checks this against transformers).
// A model's Jinja source (GGUF `tokenizer.chat_template`, tokenizer_config.json `chat_template`) is
// only used to pick the renderer and a few parameters such as the default system prompt.
//
// The rendered prompt is a list of segments: text written by the template (special tokens such as
// <|im_start|> allowed) and text that came from a message (always plain text), so that a user who
// types "<|im_end|>" cannot forge a turn. The tokenizer encodes the segments one by one.
//
// Out of scope (see issue 4): tool definitions, tool calls and tool-result messages, multimodal
// content, continue_final_message. Such input gets a kUnsupported error, never a silent mis-render.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace edgellm {

struct ChatMessage {
  std::string role;     // "system", "user" or "assistant"
  std::string content;  // UTF-8
  // Assistant turns only: the model's earlier reasoning, kept apart from the answer (Qwen3 reads it;
  // other families ignore it). When absent, Qwen3 splits <think>...</think> out of `content`.
  std::optional<std::string> reasoning_content;
};

struct ChatOptions {
  // Append the header that opens the assistant's reply (the usual case before generating).
  bool add_generation_prompt = true;
  // Qwen3 thinking switch. nullopt = the template's default (thinking on); false appends the empty
  // "<think>\n\n</think>\n\n" after the generation prompt. Other families ignore it.
  std::optional<bool> enable_thinking;
  // Special-token texts the template writes. Empty = the family's own (Llama 3 "<|begin_of_text|>",
  // Llama 2 "<s>" / "</s>"); ChatML families use none.
  std::string bos_token, eos_token;
  // Llama 3.1 / 3.2 "Today Date: ..." line. Empty = the template's default: "26 Jul 2024" for 3.1,
  // today's local date as "%d %b %Y" for 3.2 (transformers supplies strftime_now to that template).
  std::string date_string;
};

// One piece of a rendered prompt. Template text may contain special tokens; message content may not.
struct PromptSegment {
  std::string text;
  bool allow_special = false;
};

struct RenderedPrompt {
  // In order; adjacent segments with the same flag are merged and no segment is empty.
  std::vector<PromptSegment> segments;
  std::string text() const;  // all segments concatenated
};

// How a ChatTemplate was chosen, so callers can report a fallback (STYLE.md: no silent fallbacks).
enum class ChatTemplateOrigin {
  kByName,         // from_name(): the caller asked for it
  kKnownTemplate,  // detect(): the Jinja source is byte-identical with a template edgellm is tested on
  kMarkers,        // detect(): an unfamiliar source with a family's distinctive markers
  kFallback,       // detect(): empty or unrecognised source; chosen from the architecture, or ChatML
};
const char* chat_template_origin_name(ChatTemplateOrigin origin);

// A renderer for one template family. Cheap to copy; immutable after construction, so one object may
// be used from several threads at once.
class ChatTemplate {
 public:
  // Canonical names: "chatml", "qwen1", "qwen2" (also Qwen 1.5), "qwen2.5", "qwen3", "llama2",
  // "llama3", "llama3.1", "llama3.2", "completion". Case-insensitive; a few aliases are accepted
  // ("qwen1.5", "llama-3", "raw", ...). Unknown name -> kInvalidArgument listing the known ones.
  static Expected<ChatTemplate> from_name(std::string_view name);

  // Picks the renderer for a model's Jinja template. `arch_hint` is the GGUF general.architecture or
  // config.json model_type ("qwen", "qwen2", "qwen3", "llama", ...), used when the source is empty or
  // unrecognised. Never fails today: an unrecognised template falls back (logged with
  // EDGELLM_LOG_WARN, visible in origin() and note()).
  static Expected<ChatTemplate> detect(std::string_view jinja_source, std::string_view arch_hint);

  // Canonical family name, e.g. "qwen3".
  const std::string& name() const { return name_; }
  ChatTemplateOrigin origin() const { return origin_; }
  // One line on how the template was chosen, for logs and `edgellm chat-template --describe`.
  const std::string& note() const { return note_; }
  // The system prompt used when the conversation has none (Qwen 1/2/2.5); nullopt if the family has none.
  const std::optional<std::string>& default_system_prompt() const { return default_system_prompt_; }

  // Renders `messages`. Errors (kInvalidArgument unless noted) name the message index and role:
  // empty conversation, unknown role, content that is not valid UTF-8, an order the family's template
  // rejects (Llama 2: user/assistant must alternate), and kUnsupported for tool roles.
  Expected<RenderedPrompt> render(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const;

  // Texts that end the assistant's turn, e.g. {"<|im_end|>", "<|endoftext|>"}. The runtime also stops
  // at the model's EOS token id; "completion" returns none for that reason.
  std::vector<std::string> stop_strings() const;

  enum class Family { kChatml, kQwen1, kQwen2, kQwen3, kLlama2, kLlama3, kLlama31, kLlama32, kCompletion };
  Family family() const { return family_; }

 private:
  ChatTemplate(Family family, std::string name, ChatTemplateOrigin origin, std::string note);

  Family family_;
  std::string name_;
  ChatTemplateOrigin origin_;
  std::string note_;
  std::optional<std::string> default_system_prompt_;
};

// A generated reply split at <think>...</think> (Qwen3 and other reasoning models).
struct ThinkingSplit {
  std::string reasoning;  // between <think> and </think>, with surrounding '\n's removed
  std::string answer;     // after </think>, leading '\n's removed; the whole text when there is no tag
  bool reasoning_closed = false;  // true once </think> was seen; false while reasoning is unterminated
};

// Splits generated text the way Qwen3's template splits an assistant turn: reasoning is what precedes
// the first "</think>" (after a "<think>" if one is there: thinking-only models put "<think>" in the
// prompt), the answer is what follows it. Text that starts with "<think>" but has no "</think>" yet is
// all reasoning (the answer is empty); text without tags is all answer. Never fails.
ThinkingSplit split_thinking(std::string_view generated);

}  // namespace edgellm
