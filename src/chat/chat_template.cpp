#include "chat/chat_template.h"

#include <array>
#include <cstdint>
#include <ctime>
#include <string>

#include "chat/jinja/template.h"
#include "chat/prompt_text.h"
#include "chat/renderers.h"
#include "util/log.h"

namespace edgellm {

using chat_detail::find_invalid_utf8;

namespace {

using Family = ChatTemplate::Family;

constexpr std::string_view kQwenDefaultSystem = "You are a helpful assistant.";
constexpr std::string_view kQwen25DefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr std::string_view kLlama31DefaultDate = "26 Jul 2024";

struct NamedFamily {
  std::string_view name;  // canonical
  Family family;
  std::string_view default_system;  // empty: the family has none
};

constexpr std::array<NamedFamily, 10> kFamilies = {{
    {"chatml", Family::kChatml, ""},
    {"qwen1", Family::kQwen1, kQwenDefaultSystem},
    {"qwen2", Family::kQwen2, kQwenDefaultSystem},
    {"qwen2.5", Family::kQwen2, kQwen25DefaultSystem},
    {"qwen3", Family::kQwen3, ""},
    {"llama2", Family::kLlama2, ""},
    {"llama3", Family::kLlama3, ""},
    {"llama3.1", Family::kLlama31, ""},
    {"llama3.2", Family::kLlama32, ""},
    {"completion", Family::kCompletion, ""},
}};

// Extra spellings, after lower-casing and dropping '-', '_' and ' '.
constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kAliases = {{
    {"qwen", "qwen1"},
    {"qwen1.5", "qwen2"},
    {"llama2chat", "llama2"},
    {"raw", "completion"},
    {"plain", "completion"},
    {"none", "completion"},
}};

// The real templates edgellm is tested against, by FNV-1a 64 of the source without trailing
// whitespace: tests/python/test_chat_template.py renders each with transformers. The first five are
// ../shared/data/chat-templates/*.jinja, the rest tests/data/chat/*.jinja.
struct KnownTemplate {
  uint64_t fnv1a64;
  std::string_view name;
  std::string_view what;
};
// The family a known template belongs to (stop strings, reasoning and reply handling); the template itself is
// what renders. The last four are verified in tests/python/test_chat_template.py like the others.
constexpr std::array<KnownTemplate, 12> kKnownTemplates = {{
    {0xe642ce246d7f2e3dULL, "qwen2.5", "Qwen2.5-Instruct"},
    {0x2bfdb7aa9754484eULL, "qwen3", "Qwen3"},
    {0x0e60067a5537498eULL, "llama3", "Llama-3-Instruct"},
    {0xcc0368e1ffb6b958ULL, "llama3.1", "Llama-3.1-Instruct"},
    {0x368f4c34b8554414ULL, "llama3.2", "Llama-3.2-Instruct"},
    {0x75e88977b2787cd7ULL, "qwen2", "Qwen2-Instruct / Qwen1.5-Chat"},
    {0xf344eecf1bd3a427ULL, "llama2", "Llama-2-chat"},
    {0xa41d6bae9b9141bcULL, "chatml", "ChatML"},
    {0x40c4db92561734c8ULL, "qwen3", "QwQ-32B"},
    {0xf07c510f47fbaca0ULL, "qwen3", "Qwen3.5"},
    {0x21dc9ed0659009cbULL, "chatml", "Qwen3-Coder"},
    {0xbae4d62636beee53ULL, "chatml", "Hermes-3-Llama-3.1 (tool use)"},
}};

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string_view rstrip_ascii_space(std::string_view text) {
  const size_t end = text.find_last_not_of(" \t\r\n");
  return end == std::string_view::npos ? std::string_view() : text.substr(0, end + 1);
}

std::string normalize_name(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '-' || c == '_' || c == ' ') continue;
    out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  for (const auto& [alias, canonical] : kAliases) {
    if (out == alias) return std::string(canonical);
  }
  return out;
}

const NamedFamily* find_family(std::string_view canonical) {
  for (const NamedFamily& entry : kFamilies) {
    if (entry.name == canonical) return &entry;
  }
  return nullptr;
}

bool contains(std::string_view text, std::string_view needle) { return text.find(needle) != std::string_view::npos; }

// The default system prompt a ChatML template writes when the conversation has none: the string
// literal '<|im_start|>system\n...<|im_end|>' in Qwen2 and Qwen2.5 templates. Occurrences where the
// system text is an expression (`'<|im_start|>system\n' + messages[0]...`) are skipped. Returns
// nullopt when there is no such literal.
std::optional<std::string> extract_default_system_prompt(std::string_view source) {
  constexpr std::string_view kHeader = "<|im_start|>system";
  constexpr std::string_view kEnd = "<|im_end|>";
  for (size_t at = source.find(kHeader); at != std::string_view::npos; at = source.find(kHeader, at + 1)) {
    size_t pos = at + kHeader.size();
    if (source.substr(pos, 2) == "\\n") {
      pos += 2;
    } else if (source.substr(pos, 1) == "\n") {
      pos += 1;
    } else {
      continue;
    }
    std::string prompt;
    bool is_literal = false;
    while (pos < source.size()) {
      if (source.substr(pos, kEnd.size()) == kEnd) {
        is_literal = true;
        break;
      }
      const char c = source[pos];
      if (c == '\\' && pos + 1 < source.size()) {  // Jinja string escapes
        const char next = source[pos + 1];
        prompt.push_back(next == 'n' ? '\n' : next == 't' ? '\t' : next);
        pos += 2;
        continue;
      }
      if (c == '\'' || c == '"' || c == '{' || c == '}' || c == '+') break;  // not inside one literal
      prompt.push_back(c);
      ++pos;
    }
    if (is_literal && !prompt.empty()) return prompt;
  }
  return std::nullopt;
}

// Today's local date as strftime("%d %b %Y") in the C locale, as transformers' strftime_now gives
// Llama 3.2's template.
std::string today_date_string() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[64];
  const size_t len = std::strftime(buf, sizeof buf, "%d %b %Y", &local);
  return std::string(buf, len);
}

Status validate_utf8(std::string_view template_name, std::string_view what, std::string_view text) {
  const size_t bad = find_invalid_utf8(text);
  if (bad == std::string_view::npos) return {};
  return make_error(ErrorCode::kInvalidArgument, "chat template '" + std::string(template_name) + "': " +
                                                     std::string(what) + " is not valid UTF-8 (byte " +
                                                     std::to_string(bad) + " of " + std::to_string(text.size()) + ")");
}

Status validate_messages(std::string_view template_name, const std::vector<ChatMessage>& messages,
                         const ChatOptions& opts) {
  const std::string prefix = "chat template '" + std::string(template_name) + "': ";
  if (messages.empty()) {
    return make_error(ErrorCode::kInvalidArgument, prefix + "the conversation is empty (need at least one message)");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const std::string where = "message " + std::to_string(i);
    if (message.role == "tool" || message.role == "ipython" || message.role == "function") {
      return make_error(ErrorCode::kUnsupported,
                        prefix + where + " has role '" + message.role +
                            "': tool results need the model's own chat template (this is the hand-written '" +
                            std::string(template_name) + "' renderer)");
    }
    if (!message.tool_calls.is_null()) {
      return make_error(ErrorCode::kUnsupported, prefix + where + " has tool_calls: they need the model's own chat "
                                                                  "template (this is the hand-written '" +
                                                     std::string(template_name) + "' renderer)");
    }
    if (message.role != "system" && message.role != "user" && message.role != "assistant") {
      return make_error(ErrorCode::kInvalidArgument, prefix + where + " has unknown role '" + message.role +
                                                         "' (expected system, user or assistant)");
    }
    EDGELLM_TRY(validate_utf8(template_name, where + " (" + message.role + ") content", message.content));
    if (message.reasoning_content) {
      EDGELLM_TRY(validate_utf8(template_name, where + " reasoning_content", *message.reasoning_content));
    }
  }
  EDGELLM_TRY(validate_utf8(template_name, "bos_token", opts.bos_token));
  EDGELLM_TRY(validate_utf8(template_name, "eos_token", opts.eos_token));
  EDGELLM_TRY(validate_utf8(template_name, "date_string", opts.date_string));
  return {};
}

}  // namespace

const char* chat_template_origin_name(ChatTemplateOrigin origin) {
  switch (origin) {
    case ChatTemplateOrigin::kByName: return "by-name";
    case ChatTemplateOrigin::kKnownTemplate: return "known-template";
    case ChatTemplateOrigin::kMarkers: return "markers";
    case ChatTemplateOrigin::kFallback: return "fallback";
  }
  return "?";
}

std::string RenderedPrompt::text() const {
  size_t size_bytes = 0;
  for (const PromptSegment& segment : segments) size_bytes += segment.text.size();
  std::string out;
  out.reserve(size_bytes);
  for (const PromptSegment& segment : segments) out += segment.text;
  return out;
}

ChatTemplate::ChatTemplate(Family family, std::string name, ChatTemplateOrigin origin, std::string note)
    : family_(family), name_(std::move(name)), origin_(origin), note_(std::move(note)) {}

Expected<ChatTemplate> ChatTemplate::from_name(std::string_view name) {
  const NamedFamily* entry = find_family(normalize_name(name));
  if (entry == nullptr) {
    std::string known;
    for (const NamedFamily& family : kFamilies) known += (known.empty() ? "" : ", ") + std::string(family.name);
    return make_error(ErrorCode::kInvalidArgument,
                      "unknown chat template name '" + std::string(name) + "' (known: " + known + ")");
  }
  ChatTemplate result(entry->family, std::string(entry->name), ChatTemplateOrigin::kByName,
                      "chat template '" + std::string(entry->name) + "' chosen by name");
  if (!entry->default_system.empty()) result.default_system_prompt_ = std::string(entry->default_system);
  return result;
}

Expected<ChatTemplate> ChatTemplate::detect(std::string_view jinja_source, std::string_view arch_hint) {
  EDGELLM_ASSIGN_OR_RETURN(ChatTemplate result, detect_family(jinja_source, arch_hint));
  if (rstrip_ascii_space(jinja_source).empty()) {
    EDGELLM_LOG_WARN("%s", result.note_.c_str());
    return result;
  }
  // The model's own template renders; the family found above gives stop strings and how replies are read.
  auto parsed = jinja::Template::parse(jinja_source);
  if (!parsed.ok()) {
    result.note_ += "; the model's Jinja template could not be parsed (" + parsed.error().message +
                    "), so the family's hand-written renderer is used";
    EDGELLM_LOG_WARN("%s", result.note_.c_str());
    return result;
  }
  result.jinja_ = std::make_shared<const jinja::Template>(std::move(*parsed));
  result.tool_format_ = tool_call_format_for_template(jinja_source);
  result.note_ = "chat template: the model's own, rendered by edgellm's Jinja interpreter (family '" + result.name_ +
                 "' for stop strings and replies: " + result.note_ + ")";
  if (result.origin_ == ChatTemplateOrigin::kFallback) {
    EDGELLM_LOG_WARN("%s", result.note_.c_str());  // the stop strings are a guess
  } else {
    EDGELLM_LOG_INFO("%s", result.note_.c_str());
  }
  return result;
}

Expected<ChatTemplate> ChatTemplate::detect_family(std::string_view jinja_source, std::string_view arch_hint) {
  const std::string_view source = rstrip_ascii_space(jinja_source);
  auto make = [](std::string_view name, ChatTemplateOrigin origin, std::string note) {
    ChatTemplate result = from_name(name).value();  // our own canonical names: cannot fail
    result.origin_ = origin;
    result.note_ = std::move(note);
    return result;
  };

  const uint64_t hash = fnv1a64(source);
  for (const KnownTemplate& known : kKnownTemplates) {
    if (known.fnv1a64 == hash) {
      ChatTemplate result = make(known.name, ChatTemplateOrigin::kKnownTemplate,
                                 "chat template '" + std::string(known.name) + "': the model's template is " +
                                     std::string(known.what) + "'s, byte for byte");
      return result;
    }
  }

  // Distinctive markers of each family, most specific first.
  std::string_view name;
  std::string markers;
  std::optional<std::string> default_system;
  if (contains(source, "<|im_start|>")) {
    if (contains(source, "<think>") || contains(source, "enable_thinking")) {
      name = "qwen3", markers = "<|im_start|> with <think>/enable_thinking";
    } else if ((default_system = extract_default_system_prompt(source))) {
      const bool qwen25_style = contains(source, "<tool_call>");
      name = qwen25_style ? "qwen2.5" : "qwen2";
      markers = "<|im_start|> with a default system prompt";
    } else {
      name = "chatml", markers = "<|im_start|>";
    }
  } else if (contains(source, "<|start_header_id|>") && contains(source, "<|eot_id|>")) {
    if (contains(source, "Cutting Knowledge Date")) {
      const bool uses_today = contains(source, "strftime_now");
      name = uses_today ? "llama3.2" : "llama3.1";
      markers = uses_today ? "<|start_header_id|> with 'Cutting Knowledge Date' and strftime_now"
                           : "<|start_header_id|> with 'Cutting Knowledge Date'";
    } else {
      name = "llama3", markers = "<|start_header_id|>";
    }
  } else if (contains(source, "[INST]") && contains(source, "<<SYS>>")) {
    name = "llama2", markers = "[INST] with <<SYS>>";
  }

  if (!name.empty()) {
    ChatTemplate result = make(name, ChatTemplateOrigin::kMarkers,
                               "chat template '" + std::string(name) + "' chosen by markers (" + markers +
                                   "); the model's template is not one edgellm is verified against, so the "
                                   "prompt may differ from what the model's own template renders");
    if (default_system) result.default_system_prompt_ = std::move(default_system);
    return result;
  }

  // Nothing recognised: pick by architecture. Qwen chat models use ChatML; a Llama-architecture model
  // without a template is usually a base model (TinyStories, Llama 2 base), so plain completion.
  const std::string arch(arch_hint);
  std::string_view fallback = source.empty() ? "completion" : "chatml";
  if (arch == "qwen") {
    fallback = "qwen1";
  } else if (arch.starts_with("qwen2")) {
    fallback = "qwen2";
  } else if (arch.starts_with("qwen3")) {
    fallback = "qwen3";
  }
  ChatTemplate result = make(fallback, ChatTemplateOrigin::kFallback,
                             "chat template '" + std::string(fallback) + "' chosen as a fallback: " +
                                 (source.empty() ? std::string("the model has no chat template")
                                                 : std::string("the model's chat template is not recognised")) +
                                 " (architecture '" + arch + "'); override with a template name if this is wrong");
  return result;
}

Expected<RenderedPrompt> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                              const ChatOptions& opts) const {
  if (jinja_) return render_jinja(messages, opts);
  if (opts.tools.is_array() && !opts.tools.empty()) {
    return make_error(ErrorCode::kUnsupported, "chat template '" + name_ +
                                                   "': tools need the model's own chat template; the hand-written '" +
                                                   name_ + "' renderer takes none");
  }
  EDGELLM_TRY(validate_messages(name_, messages, opts));
  const std::string_view default_system = default_system_prompt_ ? std::string_view(*default_system_prompt_) : "";
  switch (family_) {
    case Family::kChatml: return chat_detail::render_chatml(messages, opts);
    case Family::kQwen1: return chat_detail::render_qwen1(messages, opts, default_system);
    case Family::kQwen2: return chat_detail::render_qwen2(messages, opts, default_system);
    case Family::kQwen3: return chat_detail::render_qwen3(messages, opts);
    case Family::kLlama2: return chat_detail::render_llama2(messages, opts);
    case Family::kLlama3: return chat_detail::render_llama3(messages, opts);
    case Family::kLlama31:
      return chat_detail::render_llama31(messages, opts,
                                         opts.date_string.empty() ? kLlama31DefaultDate : opts.date_string);
    case Family::kLlama32: {
      const std::string date = opts.date_string.empty() ? today_date_string() : opts.date_string;
      return chat_detail::render_llama31(messages, opts, date);
    }
    case Family::kCompletion: {
      // No markup at all: the runtime adds BOS if the tokenizer asks for it.
      chat_detail::PromptBuilder out;
      for (const ChatMessage& message : messages) out.content(message.content);
      return std::move(out).finish();
    }
  }
  return make_error(ErrorCode::kInternal, "chat template '" + name_ + "': no renderer");
}

// The variables transformers' apply_chat_template gives a template (render_jinja_template): the messages
// as plain dicts (reasoning also under "thinking", as transformers aliases it), tools and documents (None
// when absent), add_generation_prompt, the tokenizer's special tokens and the caller's extra arguments.
Expected<RenderedPrompt> ChatTemplate::render_jinja(const std::vector<ChatMessage>& messages,
                                                    const ChatOptions& opts) const {
  const std::string prefix = "chat template '" + name_ + "' (the model's own): ";
  if (messages.empty()) {
    return make_error(ErrorCode::kInvalidArgument, prefix + "the conversation is empty (need at least one message)");
  }
  jinja::Array list;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const std::string where = "message " + std::to_string(i);
    EDGELLM_TRY(validate_utf8(name_, where + " role", m.role));
    EDGELLM_TRY(validate_utf8(name_, where + " (" + m.role + ") content", m.content));
    if (m.reasoning_content) EDGELLM_TRY(validate_utf8(name_, where + " reasoning_content", *m.reasoning_content));
    EDGELLM_TRY(validate_utf8(name_, where + " name", m.name));
    EDGELLM_TRY(validate_utf8(name_, where + " tool_call_id", m.tool_call_id));
    jinja::Object o;
    o.keys_from_input = false;
    const auto input = [](const std::string& text) { return jinja::Value::string(jinja::Text::from_input(text)); };
    if (m.reasoning_content) o.set("thinking", input(*m.reasoning_content));
    o.set("role", input(m.role));
    o.set("content", m.content_null ? jinja::Value::none() : input(m.content));
    if (!m.tool_calls.is_null()) o.set("tool_calls", jinja::Value::from_json(m.tool_calls, true));
    if (!m.tool_call_id.empty()) o.set("tool_call_id", input(m.tool_call_id));
    if (!m.name.empty()) o.set("name", input(m.name));
    if (m.reasoning_content) o.set("reasoning_content", input(*m.reasoning_content));
    list.push_back(jinja::Value::object(std::move(o)));
  }
  jinja::Object globals;
  globals.set("messages", jinja::Value::array(std::move(list)));
  globals.set("tools", opts.tools.is_array() && !opts.tools.empty() ? jinja::Value::from_json(opts.tools, true)
                                                                   : jinja::Value::none());
  globals.set("documents", jinja::Value::none());
  globals.set("add_generation_prompt", jinja::Value::boolean(opts.add_generation_prompt));
  // The tokenizer's special tokens, as transformers passes them; without a tokenizer, the family's own.
  std::string bos = opts.bos_token, eos = opts.eos_token;
  if (bos.empty() && (family_ == Family::kLlama3 || family_ == Family::kLlama31 || family_ == Family::kLlama32)) {
    bos = "<|begin_of_text|>";
  }
  if (family_ == Family::kLlama2) {
    if (bos.empty()) bos = "<s>";
    if (eos.empty()) eos = "</s>";
  }
  if (!bos.empty()) globals.set("bos_token", jinja::Value::string(bos));
  if (!eos.empty()) globals.set("eos_token", jinja::Value::string(eos));
  if (opts.enable_thinking) globals.set("enable_thinking", jinja::Value::boolean(*opts.enable_thinking));
  if (!opts.date_string.empty()) globals.set("date_string", jinja::Value::string(opts.date_string));
  if (opts.template_kwargs.is_object()) {
    for (const auto& [key, value] : opts.template_kwargs.items()) globals.set(key, jinja::Value::from_json(value, true));
  }
  auto rendered = jinja_->render(globals);
  if (!rendered.ok()) return make_error(ErrorCode::kInvalidArgument, prefix + rendered.error().message);
  chat_detail::PromptBuilder out;
  size_t at = 0;
  for (auto [b, e] : rendered->input) {
    out.special(std::string_view(rendered->text).substr(at, b - at));
    out.content(std::string_view(rendered->text).substr(b, e - b));
    at = e;
  }
  out.special(std::string_view(rendered->text).substr(at));
  return std::move(out).finish();
}

std::vector<std::string> ChatTemplate::stop_strings() const {
  switch (family_) {
    case Family::kChatml: return {"<|im_end|>"};
    // Qwen 1's generation config stops at <|im_start|> too (qwen1-chatml.md).
    case Family::kQwen1: return {"<|im_end|>", "<|im_start|>", "<|endoftext|>"};
    case Family::kQwen2:
    case Family::kQwen3: return {"<|im_end|>", "<|endoftext|>"};
    case Family::kLlama2: return {"</s>"};
    case Family::kLlama3: return {"<|eot_id|>", "<|end_of_text|>"};
    // 3.1+ end a tool-call turn with <|eom_id|> (the templates write it in ipython mode).
    case Family::kLlama31:
    case Family::kLlama32: return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
    case Family::kCompletion: return {};
  }
  return {};
}

}  // namespace edgellm
