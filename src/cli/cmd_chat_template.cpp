// `edgellm chat-template`: renders a conversation exactly as the runtime would prompt the model, so
// templates can be checked against transformers byte for byte (tests/python/test_chat_template.py).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/jinja/template.h"
#include "chat/model_chat_template.h"
#include "chat/prompt_tokens.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::cli {

namespace {

struct ChatTemplateArgs {
  std::string name;
  std::string model_path;
  std::string template_path;
  std::string arch;  // hint for --template-file
  std::string messages_path;
  bool no_generation_prompt = false;
  std::string thinking;  // "", "on" or "off"
  std::string date_string;
  std::string bos_token, eos_token;
  bool describe = false;
  bool segments = false;
  bool ids = false;
  bool batch = false;          // --batch: --messages holds one conversation per line
  std::string tokenizer_path;  // for --ids; default: --model
  std::string jinja_context;   // --jinja-context: render --template-file with these variables
  std::string tools_path;      // --tools: tool definitions (JSON array)
  std::string kwargs;          // --template-kwargs: extra template variables (JSON object)
};

Expected<std::string> read_text(const std::string& path) {
  std::ostringstream buffer;
  if (path == "-") {
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  buffer << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": read failed");
  return buffer.str();
}

Expected<ChatTemplate> choose_template(const ChatTemplateArgs& args, ChatOptions* opts) {
  if (!args.name.empty()) return ChatTemplate::from_name(args.name);
  if (!args.model_path.empty()) return chat_template_for_model(args.model_path, opts);
  if (!args.template_path.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(const std::string source, read_text(args.template_path));
    return ChatTemplate::detect(source, args.arch);
  }
  return make_error(ErrorCode::kInvalidArgument, "one of --name, --model or --template-file is required");
}

// --jinja-context: the template through edgellm's Jinja interpreter with the given variables (every string in
// them counts as input), printed as it renders — the interpreter's own check against Python's jinja2.
Status run_jinja(const ChatTemplateArgs& args) {
  if (args.template_path.empty()) return make_error(ErrorCode::kInvalidArgument, "--jinja-context needs --template-file");
  EDGELLM_ASSIGN_OR_RETURN(const std::string source, read_text(args.template_path));
  EDGELLM_ASSIGN_OR_RETURN(const std::string context_text, read_text(args.jinja_context));
  nlohmann::ordered_json context;
  try {
    context = nlohmann::ordered_json::parse(context_text);
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::kFormat, args.jinja_context + ": malformed JSON: " + e.what());
  }
  if (!context.is_object()) return make_error(ErrorCode::kInvalidArgument, args.jinja_context + ": must be a JSON object");
  EDGELLM_ASSIGN_OR_RETURN(const jinja::Template tmpl, jinja::Template::parse(source));
  const jinja::Value globals = jinja::Value::from_json(context, true);
  EDGELLM_ASSIGN_OR_RETURN(const jinja::Text out, tmpl.render(globals.object_items()));
  if (args.segments) {
    nlohmann::json segments = nlohmann::json::array();
    size_t at = 0;
    for (auto [b, e] : out.input) {
      if (b > at) segments.push_back({{"text", out.text.substr(at, b - at)}, {"allow_special", true}});
      segments.push_back({{"text", out.text.substr(b, e - b)}, {"allow_special", false}});
      at = e;
    }
    if (at < out.text.size()) segments.push_back({{"text", out.text.substr(at)}, {"allow_special", true}});
    std::printf("%s\n", segments.dump(1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return {};
  }
  std::fwrite(out.text.data(), 1, out.text.size(), stdout);
  std::fflush(stdout);
  return {};
}

// One conversation (a JSON array of messages) to what the command prints: the prompt text, its JSON segments
// (--segments) or its token ids (--ids, given a tokenizer). one_line (--batch): the text as a JSON string and
// the segments without indentation, so that each conversation's output is one line.
struct PromptRenderer {
  const ChatTemplate& chat_template;
  const ChatOptions& opts;
  const Tokenizer* tokenizer;
  bool segments;

  Expected<std::string> render(const nlohmann::ordered_json& json, bool one_line) const {
    EDGELLM_ASSIGN_OR_RETURN(const std::vector<ChatMessage> messages, parse_chat_messages(json));
    EDGELLM_ASSIGN_OR_RETURN(const RenderedPrompt prompt, chat_template.render(messages, opts));
    if (segments) {
      nlohmann::json out = nlohmann::json::array();
      for (const PromptSegment& segment : prompt.segments) {
        out.push_back({{"text", segment.text}, {"allow_special", segment.allow_special}});
      }
      return out.dump(one_line ? -1 : 1, ' ', false, nlohmann::json::error_handler_t::replace) + (one_line ? "" : "\n");
    }
    if (tokenizer != nullptr) {
      EDGELLM_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, encode_prompt(*tokenizer, prompt));
      std::string line;
      for (const int32_t id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
      return one_line ? line : line + "\n";
    }
    const std::string text = prompt.text();
    return one_line ? nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : text;
  }
};

Status run(const ChatTemplateArgs& args) {
  if (!args.jinja_context.empty()) return run_jinja(args);
  ChatOptions opts;
  opts.add_generation_prompt = !args.no_generation_prompt;
  if (!args.thinking.empty()) opts.enable_thinking = args.thinking == "on";
  opts.date_string = args.date_string;
  opts.bos_token = args.bos_token;
  opts.eos_token = args.eos_token;
  EDGELLM_ASSIGN_OR_RETURN(const ChatTemplate chat_template, choose_template(args, &opts));

  if (args.describe) {
    const nlohmann::json out = {
        {"name", chat_template.name()},
        {"origin", chat_template_origin_name(chat_template.origin())},
        {"renders_model_template", chat_template.renders_model_template()},
        {"tool_call_format", tool_call_format_name(chat_template.tool_call_format())},
        {"note", chat_template.note()},
        {"default_system_prompt", chat_template.default_system_prompt() ? nlohmann::json(*chat_template.default_system_prompt())
                                                                       : nlohmann::json(nullptr)},
        {"stop_strings", chat_template.stop_strings()},
    };
    std::printf("%s\n", out.dump(1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return {};
  }

  if (args.messages_path.empty()) return make_error(ErrorCode::kInvalidArgument, "--messages FILE.json is required");
  EDGELLM_ASSIGN_OR_RETURN(const std::string text, read_text(args.messages_path));
  if (!args.tools_path.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(const std::string tools, read_text(args.tools_path));
    try {
      opts.tools = nlohmann::ordered_json::parse(tools);
    } catch (const nlohmann::json::parse_error& e) {
      return make_error(ErrorCode::kFormat, args.tools_path + ": malformed JSON: " + e.what());
    }
    if (!opts.tools.is_array()) return make_error(ErrorCode::kInvalidArgument, args.tools_path + ": expected a JSON array");
  }
  if (!args.kwargs.empty()) {
    try {
      opts.template_kwargs = nlohmann::ordered_json::parse(args.kwargs);
    } catch (const nlohmann::json::parse_error& e) {
      return make_error(ErrorCode::kFormat, std::string("--template-kwargs: malformed JSON: ") + e.what());
    }
    if (!opts.template_kwargs.is_object()) return make_error(ErrorCode::kInvalidArgument, "--template-kwargs: expected a JSON object");
  }
  std::unique_ptr<Tokenizer> tokenizer;
  if (args.ids) {
    const std::string& path = args.tokenizer_path.empty() ? args.model_path : args.tokenizer_path;
    if (path.empty()) return make_error(ErrorCode::kInvalidArgument, "--ids needs --tokenizer PATH or --model PATH");
    EDGELLM_ASSIGN_OR_RETURN(tokenizer, Tokenizer::from_path(path));
  }
  const PromptRenderer renderer{chat_template, opts, tokenizer.get(), args.segments};
  if (!args.batch) {
    nlohmann::ordered_json json;
    try {
      json = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      return make_error(ErrorCode::kFormat, args.messages_path + ": malformed JSON: " + e.what());
    }
    EDGELLM_ASSIGN_OR_RETURN(const std::string out, renderer.render(json, /*one_line=*/false));
    std::fwrite(out.data(), 1, out.size(), stdout);  // the prompt text exactly: no newline added
    std::fflush(stdout);
    return {};
  }
  // --batch: one conversation per line, one line out per conversation; a conversation that fails prints
  // {"error": ...} on its line and the others go on.
  const auto render_line = [&](std::string_view line) -> Expected<std::string> {
    try {
      return renderer.render(nlohmann::ordered_json::parse(line), /*one_line=*/true);
    } catch (const nlohmann::json::parse_error& e) {
      return make_error(ErrorCode::kFormat, std::string("malformed JSON: ") + e.what());
    }
  };
  size_t failed = 0, line_no = 0, begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + begin, end - begin);
    begin = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const Expected<std::string> out = render_line(line);
    if (!out.ok()) {
      ++failed;
      const nlohmann::json error = {{"error", args.messages_path + " line " + std::to_string(line_no) + ": " + out.error().message}};
      std::printf("%s\n", error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
      std::printf("%s\n", out->c_str());
    }
  }
  std::fflush(stdout);
  if (failed > 0) {
    return make_error(ErrorCode::kInvalidArgument, std::to_string(failed) + " of the conversations in " +
                                                      args.messages_path + " could not be rendered (their lines say why)");
  }
  return {};
}

}  // namespace

void add_chat_template_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ChatTemplateArgs>();
  CLI::App* cmd = app.add_subcommand("chat-template", "Render a conversation with a model's chat template");
  auto* name = cmd->add_option("--name", args->name,
                               "Template by name: chatml, qwen1, qwen2, qwen2.5, qwen3, llama2, llama3, llama3.1, "
                               "llama3.2, completion");
  auto* model = cmd->add_option("--model", args->model_path,
                                "Take the template from a model: GGUF file, Hugging Face directory or tokenizer_config.json");
  auto* file = cmd->add_option("--template-file", args->template_path, "Take the template from a Jinja file");
  name->excludes(model, file);
  model->excludes(file);
  cmd->add_option("--arch", args->arch, "Architecture hint for --template-file (qwen2, qwen3, llama, ...)");
  cmd->add_option("--messages", args->messages_path,
                  "Conversation as JSON: [{\"role\": ..., \"content\": ...}, ...] ('-' reads stdin)");
  cmd->add_flag("--no-generation-prompt", args->no_generation_prompt, "Do not open the assistant's reply");
  cmd->add_option("--thinking", args->thinking, "Qwen3 thinking switch (default: the template's)")
      ->check(CLI::IsMember({"on", "off"}));
  cmd->add_option("--date-string", args->date_string, "Llama 3.1/3.2 'Today Date' (default: the template's)");
  cmd->add_option("--bos-token", args->bos_token, "BOS text the template writes (default: the model's or family's)");
  cmd->add_option("--eos-token", args->eos_token, "EOS text the template writes (default: the model's or family's)");
  cmd->add_flag("--describe", args->describe, "Print the chosen template (name, origin, stop strings) as JSON");
  cmd->add_flag("--segments", args->segments, "Print the prompt as JSON segments with their allow_special flag");
  cmd->add_flag("--ids", args->ids, "Print the prompt's token ids (message text never becomes special tokens)");
  cmd->add_option("--tokenizer", args->tokenizer_path, "Tokenizer for --ids (default: --model)");
  cmd->add_flag("--batch", args->batch,
                "--messages holds JSON lines, one conversation each; print one line per conversation (ids, compact "
                "segments, or the prompt as a JSON string), or {\"error\": ...} for one that fails");
  cmd->add_option("--tools", args->tools_path, "Tool definitions for the template: a JSON array of {type, function}");
  cmd->add_option("--template-kwargs", args->kwargs, "More template variables, a JSON object (chat_template_kwargs)");
  cmd->add_option("--jinja-context", args->jinja_context,
                  "Render --template-file with these variables (a JSON object) through edgellm's Jinja interpreter");
  cmd->callback([args, &exit_code] {
    const Status status = run(*args);
    if (!status.ok()) {
      std::fprintf(stderr, "edgellm chat-template: %s\n", status.error().message.c_str());
      exit_code = 1;
    }
  });
}

}  // namespace edgellm::cli
