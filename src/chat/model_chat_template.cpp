#include "chat/model_chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "format/gguf.h"
#include "format/hf_dir.h"

namespace edgellm {

namespace fs = std::filesystem;

namespace {

// tokenizer_config.json writes special tokens as a string or as {"content": "...", ...}.
std::string token_text(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    const auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return "";
}

Status read_tokenizer_config(const std::string& path, ModelChatTemplateInfo* info) {
  EDGELLM_ASSIGN_OR_RETURN(const nlohmann::json config, read_json_file(path));
  if (!config.is_object()) return make_error(ErrorCode::kFormat, path + ": not a JSON object");
  info->bos_token = token_text(config, "bos_token");
  info->eos_token = token_text(config, "eos_token");
  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return {};
  if (it->is_string()) {
    info->jinja_source = it->get<std::string>();
    info->source = path + ": chat_template";
    return {};
  }
  if (it->is_array()) {  // named templates, e.g. "default" and "tool_use"
    for (const nlohmann::json& entry : *it) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        info->jinja_source = entry["template"].get<std::string>();
        info->source = path + ": chat_template[name=default]";
        return {};
      }
    }
    return make_error(ErrorCode::kFormat, path + ": chat_template is a list without a {\"name\": \"default\"} entry");
  }
  return make_error(ErrorCode::kFormat, path + ": chat_template is a " + std::string(it->type_name()) +
                                            ", expected a string or a list of {name, template}");
}

Expected<ModelChatTemplateInfo> read_hf_dir(const fs::path& dir) {
  ModelChatTemplateInfo info;
  std::error_code ec;
  const fs::path tokenizer_config = dir / "tokenizer_config.json";
  if (fs::exists(tokenizer_config, ec)) EDGELLM_TRY(read_tokenizer_config(tokenizer_config.string(), &info));
  // transformers saves the template beside tokenizer_config.json in newer checkpoints and prefers it.
  const fs::path jinja_file = dir / "chat_template.jinja";
  if (fs::exists(jinja_file, ec)) {
    std::ifstream in(jinja_file, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIo, jinja_file.string() + ": cannot open");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    info.jinja_source = buffer.str();
    info.source = jinja_file.string();
  }
  const fs::path config = dir / "config.json";
  if (fs::exists(config, ec)) {
    EDGELLM_ASSIGN_OR_RETURN(const nlohmann::json json, read_json_file(config.string()));
    if (json.is_object() && json.contains("model_type") && json["model_type"].is_string()) {
      info.arch = json["model_type"].get<std::string>();
    }
  }
  if (!fs::exists(tokenizer_config, ec) && !fs::exists(jinja_file, ec) && !fs::exists(config, ec)) {
    return make_error(ErrorCode::kNotFound,
                      dir.string() + ": no tokenizer_config.json, chat_template.jinja or config.json in this directory");
  }
  return info;
}

template <typename Json>
Expected<std::string> optional_string(const Json& message, const char* key, size_t index, bool* present) {
  *present = false;
  const auto it = message.find(key);
  if (it == message.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return make_error(ErrorCode::kInvalidArgument, "message " + std::to_string(index) + ": \"" + key +
                                                       "\" is a " + it->type_name() + ", expected a string");
  }
  *present = true;
  return it->template get<std::string>();
}

}  // namespace

Expected<ModelChatTemplateInfo> read_model_chat_template(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  ModelChatTemplateInfo info;
  EDGELLM_ASSIGN_OR_RETURN(info.jinja_source, gguf.get_string_or("tokenizer.chat_template", ""));
  if (!info.jinja_source.empty()) info.source = path + ": tokenizer.chat_template";
  EDGELLM_ASSIGN_OR_RETURN(info.arch, gguf.get_string_or("general.architecture", ""));
  if (const GgufValue* tokens = gguf.find("tokenizer.ggml.tokens"); tokens != nullptr) {
    if (tokens->type != GgufType::kArray || tokens->elem_type != GgufType::kString) {
      return make_error(ErrorCode::kFormat, path + ": tokenizer.ggml.tokens is not an array of strings");
    }
    auto token_at = [&](const char* key, std::string* out) -> Status {
      EDGELLM_ASSIGN_OR_RETURN(const int64_t id, gguf.get_int_or(key, -1));
      if (id < 0) return {};
      if (static_cast<uint64_t>(id) >= tokens->array_size()) {
        return make_error(ErrorCode::kFormat, path + ": " + key + " = " + std::to_string(id) +
                                                  ", expected < " + std::to_string(tokens->array_size()) +
                                                  " (the vocabulary size)");
      }
      *out = std::string(tokens->string_element(static_cast<size_t>(id)));
      return {};
    };
    EDGELLM_TRY(token_at("tokenizer.ggml.bos_token_id", &info.bos_token));
    EDGELLM_TRY(token_at("tokenizer.ggml.eos_token_id", &info.eos_token));
  }
  return info;
}

Expected<ModelChatTemplateInfo> read_model_chat_template(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return read_hf_dir(path);
  if (!fs::exists(path, ec)) return make_error(ErrorCode::kNotFound, path + ": no such file or directory");
  if (path.ends_with(".json")) {
    ModelChatTemplateInfo info;
    EDGELLM_TRY(read_tokenizer_config(path, &info));
    return info;
  }
  EDGELLM_ASSIGN_OR_RETURN(const GgufFile gguf, GgufFile::open(path));
  return read_model_chat_template(gguf);
}

namespace {

Expected<ChatTemplate> chat_template_from_info(const ModelChatTemplateInfo& info, ChatOptions* opts) {
  if (opts != nullptr) {
    if (opts->bos_token.empty()) opts->bos_token = info.bos_token;
    if (opts->eos_token.empty()) opts->eos_token = info.eos_token;
  }
  return ChatTemplate::detect(info.jinja_source, info.arch);
}

}  // namespace

Expected<ChatTemplate> chat_template_for_model(const std::string& path, ChatOptions* opts) {
  EDGELLM_ASSIGN_OR_RETURN(const ModelChatTemplateInfo info, read_model_chat_template(path));
  return chat_template_from_info(info, opts);
}

Expected<ChatTemplate> chat_template_for_model(const GgufFile& gguf, ChatOptions* opts) {
  EDGELLM_ASSIGN_OR_RETURN(const ModelChatTemplateInfo info, read_model_chat_template(gguf));
  return chat_template_from_info(info, opts);
}

namespace {

// OpenAI sends a call's arguments as a JSON string; transformers' templates expect the object (they apply
// tojson to it). A string that parses as a JSON object becomes that object; any other string stays as it is.
nlohmann::ordered_json normalized_tool_calls(const nlohmann::ordered_json& calls) {
  nlohmann::ordered_json out = calls;
  for (auto& call : out) {
    if (!call.is_object()) continue;
    nlohmann::ordered_json* fn = call.contains("function") && call["function"].is_object() ? &call["function"] : &call;
    auto args = fn->find("arguments");
    if (args == fn->end() || !args->is_string()) continue;
    try {
      auto parsed = nlohmann::ordered_json::parse(args->template get<std::string>());
      if (parsed.is_object()) *args = std::move(parsed);
    } catch (const nlohmann::json::parse_error&) {
      // not JSON: the template sees the string
    }
  }
  return out;
}

template <typename Json>
Expected<std::vector<ChatMessage>> parse_messages(const Json& json) {
  const Json* list = &json;
  if (json.is_object()) {
    const auto it = json.find("messages");
    if (it == json.end()) return make_error(ErrorCode::kInvalidArgument, "messages: object without a \"messages\" array");
    list = &*it;
  }
  if (!list->is_array()) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("messages: expected an array of {role, content}, got a ") + list->type_name());
  }
  std::vector<ChatMessage> messages;
  messages.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    const std::string where = "message " + std::to_string(i);
    if (!entry.is_object()) {
      return make_error(ErrorCode::kInvalidArgument, where + ": expected an object, got a " + entry.type_name());
    }
    ChatMessage message;
    bool present = false;
    EDGELLM_ASSIGN_OR_RETURN(message.role, optional_string(entry, "role", i, &present));
    if (!present) return make_error(ErrorCode::kInvalidArgument, where + ": missing \"role\"");
    if (const auto content = entry.find("content"); content != entry.end() && content->is_array()) {
      return make_error(ErrorCode::kUnsupported,
                        where + ": \"content\" is a list (multimodal parts); only text content is supported");
    }
    EDGELLM_ASSIGN_OR_RETURN(message.content, optional_string(entry, "content", i, &present));
    message.content_null = !present;
    if (const auto calls = entry.find("tool_calls"); calls != entry.end() && !calls->is_null()) {
      if (!calls->is_array()) {
        return make_error(ErrorCode::kInvalidArgument,
                          where + ": \"tool_calls\" is a " + std::string(calls->type_name()) + ", expected an array");
      }
      message.tool_calls = normalized_tool_calls(nlohmann::ordered_json::parse(calls->dump()));
    }
    if (!present && message.tool_calls.is_null() && message.role != "assistant") {
      return make_error(ErrorCode::kInvalidArgument, where + ": missing \"content\" (a string)");
    }
    EDGELLM_ASSIGN_OR_RETURN(message.tool_call_id, optional_string(entry, "tool_call_id", i, &present));
    EDGELLM_ASSIGN_OR_RETURN(message.name, optional_string(entry, "name", i, &present));
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      EDGELLM_ASSIGN_OR_RETURN(std::string reasoning, optional_string(entry, key, i, &present));
      if (present) {
        message.reasoning_content = std::move(reasoning);
        break;
      }
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

}  // namespace

Expected<std::vector<ChatMessage>> parse_chat_messages(const nlohmann::json& json) { return parse_messages(json); }
Expected<std::vector<ChatMessage>> parse_chat_messages(const nlohmann::ordered_json& json) { return parse_messages(json); }

}  // namespace edgellm
