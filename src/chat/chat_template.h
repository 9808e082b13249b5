// Chat templates: turn a conversation into the exact prompt text a chat model was trained on.
//
// A model's own Jinja template (GGUF `tokenizer.chat_template`, tokenizer_config.json `chat_template`,
// chat_template.jinja) is what renders, through edgellm's Jinja interpreter (chat/jinja/), with the
// variables transformers' apply_chat_template passes: messages (with reasoning_content, tool_calls,
// tool_call_id, name), tools, add_generation_prompt, bos_token/eos_token, enable_thinking when set, and any
// extra template arguments. The family the template belongs to (recognised from the source) still decides
// the stop strings and how replies and tool calls are read back.
//
// Hand-written renderers of each family remain for models without a template and for a family asked for
// by name (`--chat-template qwen2.5`); they are byte-identical with transformers for the family's real
// template (tests/python/test_chat_template.py) and do not take tools.
//
// The rendered prompt is a list of segments: text written by the template (special tokens such as
// <|im_start|> allowed) and text that came from a message (always plain text), so that a user who
// types "<|im_end|>" cannot forge a turn. The tokenizer encodes the segments one by one.
//
// Out of scope: multimodal content and continue_final_message (kUnsupported errors, never a silent
// mis-render); tools with the hand-written renderers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/tool_calls.h"
#include "util/expected.h"

namespace edgellm {

namespace jinja {
class Template;
}

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool" (what the template accepts)
  std::string content;  // UTF-8
  // Assistant turns only: the model's earlier reasoning, kept apart from the answer (Qwen3 reads it;
  // other families ignore it). When absent, Qwen3 splits <think>...</think> out of `content`.
  std::optional<std::string> reasoning_content;
  bool content_null = false;  // "content" was null or absent (an assistant turn that only calls tools)
  // Assistant turns: the calls it made, as transformers takes them: [{"type": "function", "function":
  // {"name": ..., "arguments": {...}}}] (null when none).
  nlohmann::ordered_json tool_calls = nullptr;
  std::string tool_call_id = {};  // role "tool": the call this result answers (empty when not given)
  std::string name = {};          // role "tool": the function whose result this is (empty when not given)
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
  // Tool definitions as transformers passes them: [{"type": "function", "function": {"name",
  // "description", "parameters"}}]; null or empty: no tools.
  nlohmann::ordered_json tools;
  // Further variables for the template (OpenAI's chat_template_kwargs), an object or null.
  nlohmann::ordered_json template_kwargs;
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
  // True when the model's own Jinja template renders (rather than the family's hand-written renderer).
  bool renders_model_template() const { return jinja_ != nullptr; }
  // How the model writes function calls, as its template teaches it (kNone without the model's template).
  ToolCallFormat tool_call_format() const { return tool_format_; }
  ChatTemplateOrigin origin() const { return origin_; }
  // One line on how the template was chosen, for logs and `edgellm chat-template --describe`.
  const std::string& note() const { return note_; }
  // The system prompt used when the conversation has none (Qwen 1/2/2.5); nullopt if the family has none.
  const std::optional<std::string>& default_system_prompt() const { return default_system_prompt_; }

  // Renders `messages`. Errors (kInvalidArgument unless noted) name the message index and role:
  // empty conversation, content that is not valid UTF-8, and what the template itself rejects (its
  // raise_exception message, e.g. roles that do not alternate); with a hand-written renderer also unknown
  // roles and (kUnsupported) tool messages and tools.
  Expected<RenderedPrompt> render(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const;

  // Texts that end the assistant's turn, e.g. {"<|im_end|>", "<|endoftext|>"}. The runtime also stops
  // at the model's EOS token id; "completion" returns none for that reason.
  std::vector<std::string> stop_strings() const;

  enum class Family { kChatml, kQwen1, kQwen2, kQwen3, kLlama2, kLlama3, kLlama31, kLlama32, kCompletion };
  Family family() const { return family_; }

 private:
  ChatTemplate(Family family, std::string name, ChatTemplateOrigin origin, std::string note);

  static Expected<ChatTemplate> detect_family(std::string_view jinja_source, std::string_view arch_hint);
  Expected<RenderedPrompt> render_jinja(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const;

  Family family_;
  std::string name_;
  ChatTemplateOrigin origin_;
  std::string note_;
  std::shared_ptr<const jinja::Template> jinja_;
  ToolCallFormat tool_format_ = ToolCallFormat::kNone;
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
