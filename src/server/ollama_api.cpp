// Ollama's API (github.com/ollama/ollama docs/api.md), enough for the `ollama` clients and Home
// Assistant's Ollama integration: POST /api/chat, POST /api/generate (newline-delimited JSON streams,
// on by default), GET /api/tags, POST /api/show, GET /api/version, GET /api/ps. Errors are
// {"error": "message"}.
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "server/reasoning_splitter.h"
#include "server/reply_grammar.h"
#include "server/request_fields.h"
#include "server/routes.h"
#include "server/tool_fields.h"

namespace edgellm::server {
namespace {

using nlohmann::json;

// RFC 3339 with nanoseconds in UTC, as Ollama writes created_at.
std::string now_rfc3339() {
  const auto now = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(ns % 1000000000));
  return buf;
}

// The name Ollama clients know a model by: with a tag (":latest" when the alias has none).
std::string tagged(const std::string& alias) {
  return alias.find(':') == std::string::npos ? alias + ":latest" : alias;
}

ServedModel* find_model(ServerContext& ctx, const Fields& f, std::string* model_label) {
  std::string name = f.string("model").value_or("");
  if (name.empty()) name = f.string("name").value_or("");  // older clients
  if (name.empty()) bad_request("model", "'model' is required");
  ServedModel* m = ctx.find_model(name);
  if (m == nullptr) {
    ApiError e;
    e.status = 404;
    e.param = "model";
    e.message = "model '" + name + "' not found";
    throw RequestError(std::move(e));
  }
  *model_label = m->alias;
  return m;
}

// Options into the request: Ollama's names and ranges. Unknown options are ignored, as Ollama does.
void read_options(const Fields& body, const ServedModel& m, EngineRequest& r) {
  SamplingParams s = m.model->default_sampling();
  int64_t n_predict = -1;
  int64_t n_ctx = m.engine->options().n_ctx;
  if (const json* raw = body.raw("options")) {
    const Fields o(*raw, "options");
    if (auto v = o.number("temperature", 0, 100)) s.temperature = static_cast<float>(*v);
    if (auto v = o.number("top_p", 0, 1)) s.top_p = static_cast<float>(*v);
    if (auto v = o.integer("top_k", 0, m.model->config().n_vocab)) s.top_k = static_cast<int32_t>(*v);
    if (auto v = o.number("min_p", 0, 1)) s.min_p = static_cast<float>(*v);
    if (auto v = o.number("typical_p", 0, 1)) s.typical_p = static_cast<float>(*v);
    if (auto v = o.number("repeat_penalty", 0.01, 10)) s.repetition_penalty = static_cast<float>(*v);
    if (auto v = o.number("presence_penalty", -2, 2)) s.presence_penalty = static_cast<float>(*v);
    if (auto v = o.number("frequency_penalty", -2, 2)) s.frequency_penalty = static_cast<float>(*v);
    if (auto v = o.integer("repeat_last_n", -1, 1 << 20)) s.penalty_last_n = static_cast<int32_t>(*v);
    if (auto v = o.integer("seed", INT64_MIN, INT64_MAX)) s.seed = static_cast<uint64_t>(*v);
    if (auto v = o.integer("mirostat", 0, 2)) s.mirostat = static_cast<int32_t>(*v);
    if (auto v = o.number("mirostat_tau", 0.001, 100)) s.mirostat_tau = static_cast<float>(*v);
    if (auto v = o.number("mirostat_eta", 0, 10)) s.mirostat_eta = static_cast<float>(*v);
    if (auto v = o.integer("num_predict", -2, INT32_MAX)) n_predict = *v;
    // num_ctx caps the context below the server's (a larger one is the server's: it is fixed at start).
    if (auto v = o.integer("num_ctx", 1, INT64_MAX)) n_ctx = std::min(n_ctx, *v);
    if (const json* stop = o.raw("stop")) {
      if (stop->is_string()) {
        r.stop_strings.push_back(stop->get<std::string>());
      } else if (stop->is_array()) {
        for (size_t i = 0; i < stop->size(); ++i) {
          if (!(*stop)[i].is_string()) {
            bad_request("options.stop", "'options.stop[" + std::to_string(i) + "]' must be a string, got " +
                                            json_type_name((*stop)[i]));
          }
          if (!(*stop)[i].get<std::string>().empty()) r.stop_strings.push_back((*stop)[i].get<std::string>());
        }
      } else {
        bad_request("options.stop", "'options.stop' must be an array of strings, got " + json_type_name(*stop));
      }
    }
  }
  r.sampling = s;
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  if (prompt >= n_ctx) {
    ApiError e;
    e.param = "options.num_ctx";
    e.message = "the prompt has " + std::to_string(prompt) + " tokens; the context holds " + std::to_string(n_ctx);
    throw RequestError(std::move(e));
  }
  const int64_t left = n_ctx - prompt;
  // -1: until the model stops or the context is full; -2: fill the context.
  const int64_t n = n_predict < 0 ? left : std::min(n_predict, left);
  r.max_new_tokens = static_cast<int32_t>(std::clamp<int64_t>(n, 0, INT32_MAX));
}

void refuse_unsupported(const Fields& f, bool chat) {
  if (const json* tools = f.raw("tools"); !chat && tools && !(tools->is_array() && tools->empty())) {
    bad_request("tools", "'tools' are for /api/chat");
  }
  if (const json* images = f.raw("images"); images && !(images->is_array() && images->empty())) {
    bad_request("images", "images are not supported (text models only)");
  }
}

// The figures of Ollama's final object, in nanoseconds.
void add_timings(json& j, const RequestResult& r) {
  const auto ns = [](double ms) { return static_cast<int64_t>(ms * 1e6); };
  j["done_reason"] = api_finish_reason(r.finish_reason);
  j["total_duration"] = ns(r.total_ms);
  j["load_duration"] = 0;
  j["prompt_eval_count"] = r.prompt_tokens;
  j["prompt_eval_duration"] = ns(std::max(0.0, r.ttft_ms - r.queue_ms));
  j["eval_count"] = r.generated_tokens;
  j["eval_duration"] = ns(std::max(0.0, r.total_ms - r.ttft_ms));
}

std::string ndjson(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

// ---- /api/chat and /api/generate: one formatter for both, differing in where the text goes ----

struct OllamaRequest {
  ToolCallFormat tool_format = ToolCallFormat::kNone;  // /api/chat with tools: the reply is read for calls
  Generation g;
  bool chat = true;
  std::optional<bool> think;  // nullopt: the reply as the model writes it
  std::vector<int32_t> context;  // generate: prompt tokens, then the reply's tokens
};

class OllamaStream : public StreamFormatter {
 public:
  explicit OllamaStream(OllamaRequest r)
      : r_(std::move(r)), splitter_(r_.g.starts_in_reasoning), tools_(r_.tool_format) {}
  std::string token(const StreamToken& t) override {
    if (t.token >= 0) r_.context.push_back(t.token);
    std::string reasoning, content = t.text;
    if (r_.think.value_or(false)) {
      auto p = splitter_.push(t.text);
      reasoning = std::move(p.reasoning);
      content = std::move(p.content);
    }
    // A call goes out once whole, in a message of its own; text that cannot begin one goes out at once.
    ToolCallStream::Output o = tools_.feed(content);
    if (reasoning.empty() && o.text.empty() && o.calls.empty()) return {};
    return ndjson(piece(reasoning, o.text, false, o.calls));
  }
  std::string finish(const RequestResult& res) override {
    std::string out;
    std::string reasoning, content;
    if (r_.think.value_or(false)) {
      auto p = splitter_.flush();
      reasoning = std::move(p.reasoning);
      content = std::move(p.content);
    }
    ToolCallStream::Output o = tools_.feed(content);
    ToolCallStream::Output rest = tools_.finish();
    o.text += rest.text;
    for (auto& c : rest.calls) o.calls.push_back(std::move(c));
    if (!reasoning.empty() || !o.text.empty() || !o.calls.empty()) out += ndjson(piece(reasoning, o.text, false, o.calls));
    if (res.finish_reason == "error") return out + ndjson({{"error", res.error}});
    json last = piece("", "", true);
    add_timings(last, res);
    if (!r_.chat) last["context"] = r_.context;
    return out + ndjson(last);
  }

 private:
  json piece(const std::string& reasoning, const std::string& content, bool done,
             const std::vector<ToolCall>& calls = {}) const {
    json j = {{"model", tagged(r_.g.model->alias)}, {"created_at", now_rfc3339()}};
    if (r_.chat) {
      json message = {{"role", "assistant"}, {"content", content}};
      if (!reasoning.empty()) message["thinking"] = reasoning;
      if (!calls.empty()) message["tool_calls"] = ollama_tool_calls(calls);
      j["message"] = message;
    } else {
      j["response"] = content;
      if (!reasoning.empty()) j["thinking"] = reasoning;
    }
    j["done"] = done;
    return j;
  }
  OllamaRequest r_;
  ReasoningSplitter splitter_;
  ToolCallStream tools_;
};

void answer(ServerContext& ctx, httplib::Response& res, OllamaRequest& r, bool stream) {
  start_generation(ctx, r.g);
  if (stream) {
    auto formatter = std::make_unique<OllamaStream>(r);  // a copy: r.g goes to the stream below
    stream_generation(ctx, res, "application/x-ndjson", std::move(r.g), std::move(formatter));
    return;
  }
  const std::vector<StreamToken> tokens = r.g.stream->wait_all();
  const RequestResult& result = r.g.stream->result();
  if (result.finish_reason == "error") {
    ApiError e;
    e.status = 500;
    e.message = result.error;
    throw RequestError(std::move(e));
  }
  std::string reasoning, content = result.text;
  if (r.think.value_or(false)) {
    ReasoningSplitter splitter(r.g.starts_in_reasoning);
    auto p = splitter.push(result.text);
    const auto rest = splitter.flush();
    reasoning = p.reasoning + rest.reasoning;
    content = p.content + rest.content;
  }
  json j = {{"model", tagged(r.g.model->alias)}, {"created_at", now_rfc3339()}};
  if (r.chat) {
    const ParsedReply reply = parse_tool_calls(r.tool_format, content);
    json message = {{"role", "assistant"}, {"content", reply.calls.empty() ? content : reply.content}};
    if (!reasoning.empty()) message["thinking"] = reasoning;
    if (!reply.calls.empty()) message["tool_calls"] = ollama_tool_calls(reply.calls);
    j["message"] = message;
  } else {
    j["response"] = content;
    if (!reasoning.empty()) j["thinking"] = reasoning;
    for (const StreamToken& t : tokens) {
      if (t.token >= 0) r.context.push_back(t.token);
    }
    j["context"] = r.context;
  }
  j["done"] = true;
  add_timings(j, result);
  send_json(res, j);
}

std::vector<ChatMessage> read_ollama_messages(const json& body, const nlohmann::ordered_json& ordered) {
  const auto it = body.find("messages");
  if (it == body.end() || it->is_null()) bad_request("messages", "'messages' is required");
  if (!it->is_array()) bad_request("messages", "'messages' must be an array, got " + json_type_name(*it));
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const Fields f((*it)[i], "messages[" + std::to_string(i) + "]");
    const std::string role = f.string("role").value_or("");
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      bad_request(f.path("role"), quote(f.path("role")) + " must be system, user, assistant or tool, got '" + role + "'");
    }
    if (const json* images = f.raw("images"); images && !(images->is_array() && images->empty())) {
      bad_request(f.path("images"), "images are not supported (text models only)");
    }
    const std::string content = f.string("content").value_or("");
    if (content.empty() && role == "user") bad_request(f.path("content"), quote(f.path("content")) + " is empty");
    ChatMessage m;
    m.role = role;
    m.content = content;
    if (role == "assistant") {
      if (auto t = f.string("thinking")) m.reasoning_content = *t;
      m.tool_calls = read_message_tool_calls(ordered, i);
      m.content_null = content.empty() && !m.tool_calls.is_null();
    }
    if (role == "tool") m.name = f.string("tool_name").value_or(f.string("name").value_or(""));
    out.push_back(std::move(m));
  }
  return out;
}

void chat(ServerContext& ctx, const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
  const json body = parse_json_object(req.body);
  const Fields f(body, "");
  OllamaRequest r;
  r.g.model = find_model(ctx, f, &scope.model);
  r.g.lease = scope.lease;
  r.g.route = "/api/chat";
  refuse_unsupported(f, true);
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(req.body);  // the client's key order
  const std::vector<ChatMessage> messages = read_ollama_messages(body, ordered);
  const bool stream = f.boolean("stream").value_or(true);
  if (messages.empty()) {
    // An empty conversation loads the model: it is loaded.
    send_json(res, {{"model", tagged(r.g.model->alias)}, {"created_at", now_rfc3339()},
                    {"message", {{"role", "assistant"}, {"content", ""}}}, {"done_reason", "load"}, {"done", true}});
    return;
  }
  r.think = f.boolean("think");
  ChatPromptOptions prompt_options;
  prompt_options.enable_thinking = r.think;
  prompt_options.tools = read_tools(ordered);
  if (prompt_options.tools.is_array()) r.tool_format = r.g.model->model->chat_template().tool_call_format();
  bool thinking_open = false;
  r.g.request.prompt = chat_prompt_tokens(*r.g.model, messages, prompt_options, &thinking_open);
  check_input_filters(ctx, user_texts(messages), static_cast<int64_t>(messages.size()),
                      static_cast<int64_t>(r.g.request.prompt.size()), "messages");
  r.g.starts_in_reasoning = thinking_open;
  read_options(f, *r.g.model, r.g.request);
  // edgellm's extension: OpenAI's "tool_choice" ("required" or a named function forces a call).
  const ToolChoiceField choice = read_tool_choice(body, prompt_options.tools);
  if (choice.choice == ToolChoice::kNone) r.tool_format = ToolCallFormat::kNone;
  std::string reply_grammar = ollama_reply_grammar(ordered);
  if (choice.choice == ToolChoice::kRequired || choice.choice == ToolChoice::kNamed) {
    if (!reply_grammar.empty()) bad_request("tool_choice", "a forced 'tool_choice' and 'format' cannot be combined");
    set_reply_grammar(*r.g.model, forced_call_grammar(*r.g.model, prompt_options.tools, choice, true, thinking_open),
                      "tool_choice", r.g.request);
  } else {
    set_reply_grammar(*r.g.model, reply_grammar, "format", r.g.request);
  }
  r.g.exchange = scope.exchange("", ordered["messages"].dump());
  apply_time_policy(ctx, scope, r.g.request, res);
  answer(ctx, res, r, stream);
}

void generate(ServerContext& ctx, const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
  const json body = parse_json_object(req.body);
  const Fields f(body, "");
  OllamaRequest r;
  r.chat = false;
  r.g.model = find_model(ctx, f, &scope.model);
  r.g.lease = scope.lease;
  r.g.route = "/api/generate";
  refuse_unsupported(f, false);
  const std::string prompt = f.string("prompt").value_or("");
  const bool stream = f.boolean("stream").value_or(true);
  if (prompt.empty()) {
    send_json(res, {{"model", tagged(r.g.model->alias)}, {"created_at", now_rfc3339()}, {"response", ""},
                    {"done_reason", "load"}, {"done", true}});
    return;
  }
  if (auto suffix = f.string("suffix"); suffix && !suffix->empty()) bad_request("suffix", "'suffix' is not supported");
  if (auto tmpl = f.string("template"); tmpl && !tmpl->empty()) {
    bad_request("template", "'template' is not supported: the model's own chat template is used (or 'raw': true)");
  }
  r.think = f.boolean("think");
  std::vector<int32_t> tokens;
  if (const json* context = f.raw("context")) {
    if (!context->is_array()) bad_request("context", "'context' must be an array of token ids");
    for (const json& t : *context) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= r.g.model->model->config().n_vocab) {
        bad_request("context", "'context' holds something that is not a token id of this model");
      }
      tokens.push_back(t.get<int32_t>());
    }
  }
  std::vector<int32_t> prompt_tokens;
  if (f.boolean("raw").value_or(false)) {
    prompt_tokens = completion_prompt_tokens(*r.g.model, prompt);
  } else {
    std::vector<ChatMessage> messages;
    if (auto system = f.string("system"); system && !system->empty()) messages.push_back({"system", *system, std::nullopt});
    messages.push_back({"user", prompt, std::nullopt});
    bool thinking_open = false;
    ChatPromptOptions prompt_options;
    prompt_options.enable_thinking = r.think;
    prompt_tokens = chat_prompt_tokens(*r.g.model, messages, prompt_options, &thinking_open);
    r.g.starts_in_reasoning = thinking_open;
  }
  {
    nlohmann::ordered_json input = nlohmann::ordered_json::array();
    if (auto system = f.string("system"); system && !system->empty()) {
      input.push_back({{"role", "system"}, {"content", *system}});
    }
    input.push_back({{"role", "user"}, {"content", prompt}});
    r.g.exchange = scope.exchange("", f.boolean("raw").value_or(false) ? nlohmann::json(prompt).dump() : input.dump());
  }
  std::vector<std::string> texts = {prompt};
  if (auto system = f.string("system"); system && !system->empty()) texts.push_back(*system);
  check_input_filters(ctx, texts, 1, static_cast<int64_t>(tokens.size() + prompt_tokens.size()), "prompt");
  tokens.insert(tokens.end(), prompt_tokens.begin(), prompt_tokens.end());
  r.g.request.prompt = tokens;
  r.context = tokens;
  read_options(f, *r.g.model, r.g.request);
  set_reply_grammar(*r.g.model, ollama_reply_grammar(nlohmann::ordered_json::parse(req.body)), "format", r.g.request);
  apply_time_policy(ctx, scope, r.g.request, res);
  answer(ctx, res, r, stream);
}

// ---- model listing ----

// Ollama's names for the weight types ("Q4_0", "F16", ...).
std::string quantization_level(DType type) {
  std::string name = dtype_name(type);
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return name;
}

json details_json(const ServedModel& m) {
  const ModelConfig& c = m.model->config();
  const auto params = static_cast<uint64_t>(m.model->model().n_params());
  char size[32];
  if (params >= 1000000000ull) {
    std::snprintf(size, sizeof size, "%.1fB", static_cast<double>(params) / 1e9);
  } else {
    std::snprintf(size, sizeof size, "%.0fM", static_cast<double>(params) / 1e6);
  }
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", arch_name(c.arch)},
          {"families", json::array({arch_name(c.arch)})},
          {"parameter_size", size},
          {"quantization_level", quantization_level(m.model->model().main_weight_type())}};
}

std::string digest_of(const ServedModel& m) { return m.model->weights_digest(); }

json tag_json(const ServedModel& m) {
  return {{"name", tagged(m.alias)},      {"model", tagged(m.alias)}, {"modified_at", m.modified_at},
          {"size", m.size_bytes},         {"digest", digest_of(m)},   {"details", details_json(m)}};
}

}  // namespace

void register_ollama_routes(httplib::Server& http, ServerContext& ctx) {
  const auto post = [&](const std::string& path, void (*fn)(ServerContext&, const httplib::Request&,
                                                            httplib::Response&, RequestScope&)) {
    http.Post(path, route(ctx, path, Dialect::kOllama, true,
                          [&ctx, fn](const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
                            fn(ctx, req, res, scope);
                          }));
  };
  post("/api/chat", chat);
  post("/api/generate", generate);
  http.Get("/api/tags", route(ctx, "/api/tags", Dialect::kOllama, true,
                              [&ctx](const httplib::Request&, httplib::Response& res, RequestScope&) {
                                json models = json::array();
                                for (const auto& m : ctx.models()) models.push_back(tag_json(*m));
                                send_json(res, {{"models", models}});
                              }));
  http.Get("/api/ps", route(ctx, "/api/ps", Dialect::kOllama, true,
                            [&ctx](const httplib::Request&, httplib::Response& res, RequestScope&) {
                              json models = json::array();
                              for (const auto& m : ctx.models()) {
                                json j = tag_json(*m);
                                j.erase("modified_at");
                                j["expires_at"] = "2318-01-01T00:00:00Z";  // loaded for the server's lifetime
                                j["size_vram"] = 0;
                                models.push_back(j);
                              }
                              send_json(res, {{"models", models}});
                            }));
  http.Post("/api/show",
            route(ctx, "/api/show", Dialect::kOllama, true,
                  [&ctx](const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
                    const json body = parse_json_object(req.body);
                    ServedModel* m = find_model(ctx, Fields(body, ""), &scope.model);
                    const ModelConfig& c = m->model->config();
                    const std::string arch = arch_name(c.arch);
                    const SamplingParams& s = m->model->default_sampling();
                    char params[256];
                    std::snprintf(params, sizeof params, "temperature %g\ntop_k %d\ntop_p %g\nnum_ctx %lld",
                                  static_cast<double>(s.temperature), s.top_k, static_cast<double>(s.top_p),
                                  static_cast<long long>(m->engine->options().n_ctx));
                    send_json(res, {{"modelfile", "FROM " + m->path + "\n"},
                                    {"parameters", params},
                                    {"template", m->model->chat_template().name()},
                                    {"details", details_json(*m)},
                                    {"model_info",
                                     {{"general.architecture", arch},
                                      {"general.parameter_count", m->model->model().n_params()},
                                      {arch + ".context_length", c.n_ctx_train},
                                      {arch + ".embedding_length", c.n_embd},
                                      {arch + ".block_count", c.n_layer},
                                      {arch + ".attention.head_count", c.n_head},
                                      {arch + ".attention.head_count_kv", c.n_head_kv}}},
                                    {"capabilities", json::array({"completion"})},
                                    {"modified_at", m->modified_at}});
                  }));
  http.Get("/api/version", route(ctx, "/api/version", Dialect::kOllama, false,
                                 [](const httplib::Request&, httplib::Response& res, RequestScope&) {
                                   send_json(res, {{"version", EDGELLM_VERSION}});
                                 }));
}

}  // namespace edgellm::server
