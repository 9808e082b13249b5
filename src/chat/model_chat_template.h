// Where a model keeps its chat template, and reading conversations from JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "format/gguf.h"
#include "util/expected.h"

namespace edgellm {

// What a model file says about chat formatting.
struct ModelChatTemplateInfo {
  std::string jinja_source;  // empty when the model has none
  std::string arch;          // GGUF general.architecture or config.json model_type; may be empty
  std::string bos_token;     // special-token texts, empty when unknown
  std::string eos_token;
  std::string source;        // where jinja_source came from, e.g. "model.gguf: tokenizer.chat_template"
};

// Reads the chat template of `path`: a GGUF file (tokenizer.chat_template, general.architecture, and
// the BOS/EOS token texts), a Hugging Face directory (chat_template.jinja, else tokenizer_config.json's
// chat_template, which may be a string or a list of {name, template} of which "default" is used; plus
// config.json model_type when present), or a tokenizer_config.json file. Errors name the file and key.
Expected<ModelChatTemplateInfo> read_model_chat_template(const std::string& path);
// The same from a GGUF file already open (a model's loader parses its file once).
Expected<ModelChatTemplateInfo> read_model_chat_template(const GgufFile& gguf);

// ChatTemplate::detect() on the model's template, with `opts` bos/eos filled from the model where
// the caller left them empty.
Expected<ChatTemplate> chat_template_for_model(const std::string& path, ChatOptions* opts);
Expected<ChatTemplate> chat_template_for_model(const GgufFile& gguf, ChatOptions* opts);

// Parses a conversation in the OpenAI / transformers shape: an array of {"role", "content"} objects,
// or an object holding such an array under "messages". "reasoning_content" (or its older names
// "reasoning" / "thinking", as transformers accepts) is optional; null fields count as absent. Assistant
// turns may carry "tool_calls" (content null or absent), whose string "arguments" are parsed into objects
// as transformers' templates expect; tool results carry "tool_call_id" and "name".
// Errors name the message index and field; list-form (multimodal) content is kUnsupported.
// ordered_json keeps the objects' keys in their written order (as transformers renders them).
Expected<std::vector<ChatMessage>> parse_chat_messages(const nlohmann::json& json);
Expected<std::vector<ChatMessage>> parse_chat_messages(const nlohmann::ordered_json& json);

}  // namespace edgellm
