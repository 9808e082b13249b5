// Chat templates rendering hostile conversations: the real templates in tests/data/chat (Qwen2/2.5/3/3.5,
// QwQ, Qwen3-Coder, Llama 2/3/3.1/3.2, Hermes-3 tool use) with messages, tools and template kwargs from the
// input (JSON as the OpenAI API sends it; anything else becomes one user message of raw bytes, invalid UTF-8
// and control-token look-alikes included). An input starting with "{#" is itself a template, rendered against a
// fixed conversation under tight interpreter limits: the Jinja parser and interpreter fuzzed directly.
#include "fuzz_support.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <vector>

#include "chat/chat_template.h"
#include "chat/jinja/template.h"
#include "chat/model_chat_template.h"

namespace {

struct Templates {
  std::vector<edgellm::ChatTemplate> all;
};

const Templates& templates() {
  static const Templates t = [] {
    Templates out;
    const std::string dir = std::string(EDGELLM_SOURCE_DIR) + "/tests/data/chat";
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      if (e.path().extension() == ".jinja") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      const std::string source((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      auto tmpl = edgellm::ChatTemplate::detect(source, "");
      if (!tmpl.ok()) std::abort();  // the repository's own templates must load
      out.all.push_back(*tmpl);
    }
    if (out.all.empty()) std::abort();
    return out;
  }();
  return t;
}

void render_template_source(std::string_view source) {
  auto tmpl = edgellm::jinja::Template::parse(source);
  if (!tmpl.ok()) return;
  static const nlohmann::ordered_json conversation = nlohmann::ordered_json::parse(
      R"([{"role":"system","content":"s"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}])");
  edgellm::jinja::Object globals;
  globals.set("messages", edgellm::jinja::Value::from_json(conversation, true));
  globals.set("add_generation_prompt", edgellm::jinja::Value::boolean(true));
  edgellm::jinja::RenderLimits limits;
  limits.max_steps = 100000;
  limits.max_output_bytes = 1 << 20;
  (void)tmpl->render(globals, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)edgellm::fuzz::scratch_dir();  // quiet logs
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.starts_with("{#")) {
    render_template_source(input);
    return 0;
  }
  if (size < 2) return 0;
  const auto& all = templates().all;
  const edgellm::ChatTemplate& tmpl = all[data[0] % all.size()];
  edgellm::ChatOptions opts;
  opts.add_generation_prompt = (data[1] & 1) != 0;
  if (data[1] & 2) opts.enable_thinking = (data[1] & 4) != 0;
  std::vector<edgellm::ChatMessage> messages;
  const std::string_view body = input.substr(2);
  auto json = nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!json.is_discarded()) {
    if (json.is_object()) {
      if (json.contains("tools")) opts.tools = json["tools"];
      if (json.contains("chat_template_kwargs")) opts.template_kwargs = json["chat_template_kwargs"];
    }
    auto parsed = edgellm::parse_chat_messages(json);
    if (!parsed.ok()) return 0;
    messages = std::move(*parsed);
  } else {
    edgellm::ChatMessage m;
    m.role = "user";
    m.content = std::string(body);
    messages.push_back(std::move(m));
  }
  (void)tmpl.render(messages, opts);
  return 0;
}
