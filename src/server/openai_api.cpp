// OpenAI's API (platform.openai.com/docs/api-reference): POST /v1/chat/completions, POST /v1/completions,
// GET /v1/models, streaming as server-sent events ("data: {chunk}\n\n" ... "data: [DONE]\n\n").
#include <ctime>

#include "server/reasoning_splitter.h"
#include "server/reply_grammar.h"
#include "server/request_fields.h"
#include "server/routes.h"
#include "server/tool_fields.h"

namespace edgellm::server {
namespace {

using nlohmann::json;

// ---- reading a request ----

std::vector<ChatMessage> read_openai_messages(const json& body, const nlohmann::ordered_json& ordered) {
  const auto it = body.find("messages");
  if (it == body.end() || it->is_null()) bad_request("messages", "'messages' is required");
  if (!it->is_array()) bad_request("messages", "'messages' must be an array, got " + json_type_name(*it));
  if (it->empty()) bad_request("messages", "'messages' must hold at least one message");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string path = "messages[" + std::to_string(i) + "]";
    const json& m = (*it)[i];
    const Fields f(m, path);
    std::string role = f.string("role").value_or("");
    if (role.empty()) bad_request(f.path("role"), quote(f.path("role")) + " is required");
    if (role == "developer") role = "system";  // OpenAI's newer name for the system role
    if (role == "function") role = "tool";      // OpenAI's older name for tool results
    if (role != "system" && role != "user" && role != "assistant" && role != "tool") {
      bad_request(f.path("role"), quote(f.path("role")) + " must be system, developer, user, assistant or tool, got '" +
                                      role + "'");
    }
    ChatMessage msg;
    if (role == "assistant") msg.tool_calls = read_message_tool_calls(ordered, i);
    std::string content;
    const json* c = f.raw("content");
    if (c == nullptr) {
      if (role != "assistant") bad_request(f.path("content"), quote(f.path("content")) + " is required");
    } else if (c->is_string()) {
      content = c->get<std::string>();
    } else if (c->is_array()) {
      // Content parts: text parts are joined; anything else (images, audio) is not something these models read.
      for (size_t p = 0; p < c->size(); ++p) {
        const Fields part((*c)[p], f.path("content") + "[" + std::to_string(p) + "]");
        const std::string type = part.string("type").value_or("");
        if (type != "text") {
          bad_request(part.path("type"), "content part type '" + type + "' is not supported (text only)");
        }
        content += part.string("text").value_or("");
      }
    } else {
      bad_request(f.path("content"), quote(f.path("content")) + " must be a string or an array of text parts, got " +
                                         json_type_name(*c));
    }
    if (content.empty() && role != "assistant" && role != "tool") {
      bad_request(f.path("content"), quote(f.path("content")) + " is empty");
    }
    msg.role = role;
    msg.content = content;
    msg.content_null = c == nullptr || c->is_null();
    if (role == "assistant") {
      if (auto r = f.string("reasoning_content")) msg.reasoning_content = *r;
    }
    if (role == "tool") {
      msg.tool_call_id = f.string("tool_call_id").value_or("");
      msg.name = f.string("name").value_or("");
    }
    out.push_back(std::move(msg));
  }
  return out;
}

std::vector<std::string> read_stop(const Fields& f) {
  const json* stop = f.raw("stop");
  if (stop == nullptr) return {};
  std::vector<std::string> out;
  if (stop->is_string()) {
    out.push_back(stop->get<std::string>());
  } else if (stop->is_array()) {
    if (stop->size() > 16) bad_request("stop", "'stop' holds at most 16 strings, got " + std::to_string(stop->size()));
    for (size_t i = 0; i < stop->size(); ++i) {
      if (!(*stop)[i].is_string()) {
        bad_request("stop", "'stop[" + std::to_string(i) + "]' must be a string, got " + json_type_name((*stop)[i]));
      }
      out.push_back((*stop)[i].get<std::string>());
    }
  } else {
    bad_request("stop", "'stop' must be a string or an array of strings, got " + json_type_name(*stop));
  }
  for (const auto& s : out) {
    if (s.empty()) bad_request("stop", "'stop' strings must not be empty");
  }
  return out;
}

// What chat and completion requests share: model, sampling, limits, streaming.
struct Common {
  ServedModel* model = nullptr;
  bool stream = false;
  bool include_usage = false;
};

Common read_common(ServerContext& ctx, const Fields& f, std::string* model_label) {
  Common c;
  const std::string name = f.string("model").value_or("");
  c.model = ctx.find_model(name);
  if (c.model == nullptr) {
    ApiError e;
    e.status = 404;
    e.param = "model";
    e.code = "model_not_found";
    e.message = "The model '" + name + "' does not exist (served: ";
    for (size_t i = 0; i < ctx.models().size(); ++i) e.message += (i ? ", " : "") + ctx.models()[i]->alias;
    e.message += ")";
    throw RequestError(std::move(e));
  }
  *model_label = c.model->alias;
  if (auto n = f.integer("n", INT64_MIN, INT64_MAX); n && *n != 1) {
    bad_request("n", "'n' must be 1: edgellm generates one choice per request, got " + std::to_string(*n));
  }
  c.stream = f.boolean("stream").value_or(false);
  if (const json* so = f.raw("stream_options")) {
    c.include_usage = Fields(*so, "stream_options").boolean("include_usage").value_or(false);
  }
  return c;
}

// Sampling and limits into `r`; `default_max_tokens` when the request sets none (0: the context's rest).
void read_sampling(const Fields& f, const ServedModel& m, EngineRequest& r, int64_t default_max_tokens) {
  SamplingParams s = m.model->default_sampling();
  if (auto v = f.number("temperature", 0, 2)) s.temperature = static_cast<float>(*v);
  if (auto v = f.number("top_p", 0, 1)) s.top_p = static_cast<float>(*v);
  if (auto v = f.integer("top_k", 0, m.model->config().n_vocab)) s.top_k = static_cast<int32_t>(*v);
  if (auto v = f.number("min_p", 0, 1)) s.min_p = static_cast<float>(*v);
  if (auto v = f.number("presence_penalty", -2, 2)) s.presence_penalty = static_cast<float>(*v);
  if (auto v = f.number("frequency_penalty", -2, 2)) s.frequency_penalty = static_cast<float>(*v);
  if (auto v = f.number("repetition_penalty", 0.01, 10)) s.repetition_penalty = static_cast<float>(*v);
  if (auto v = f.integer("seed", INT64_MIN, INT64_MAX)) s.seed = static_cast<uint64_t>(*v);
  r.sampling = s;
  const int64_t ctx_left = m.engine->options().n_ctx - static_cast<int64_t>(r.prompt.size());
  std::optional<int64_t> max_tokens = f.integer("max_completion_tokens", INT64_MIN, INT64_MAX);
  const char* max_name = "max_completion_tokens";
  if (!max_tokens) {
    max_tokens = f.integer("max_tokens", INT64_MIN, INT64_MAX);
    max_name = "max_tokens";
  }
  if (max_tokens && *max_tokens <= 0) {
    bad_request(max_name, std::string("'") + max_name + "' must be at least 1, got " + std::to_string(*max_tokens));
  }
  const int64_t n = max_tokens ? *max_tokens : (default_max_tokens > 0 ? default_max_tokens : ctx_left);
  r.max_new_tokens = static_cast<int32_t>(std::clamp<int64_t>(n, 0, INT32_MAX));
  r.stop_strings = read_stop(f);
  // llama-server's extension: go on past the end-of-turn token (benchmarks of fixed length).
  r.ignore_stop_tokens = f.boolean("ignore_eos").value_or(false);
}

json usage_json(const RequestResult& r) {
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.generated_tokens},
          {"total_tokens", r.prompt_tokens + r.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", r.cached_tokens}}}};
}

std::vector<int> bytes_of(const std::string& s) {
  std::vector<int> out;
  for (unsigned char c : s) out.push_back(c);
  return out;
}

// Chat logprobs of one token: {"token", "logprob", "bytes", "top_logprobs": [...]}.
json chat_logprob(const Tokenizer& tok, const StreamToken& t) {
  json top = json::array();
  for (const auto& alt : t.top_logprobs) {
    const std::string s = tok.token_bytes(alt.token);
    top.push_back({{"token", s}, {"logprob", alt.logprob}, {"bytes", bytes_of(s)}});
  }
  const std::string s = tok.token_bytes(t.token);
  return {{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}, {"top_logprobs", top}};
}

std::string sse(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

// ---- /v1/chat/completions ----

struct ChatRequest {
  Common common;
  Generation g;
  bool logprobs = false;
  std::string id;
  int64_t created = 0;
  ToolCallFormat tool_format = ToolCallFormat::kNone;  // kNone: the reply is not read for calls
  bool parallel_tool_calls = true;
};

class ChatStream : public StreamFormatter {
 public:
  explicit ChatStream(ChatRequest r)
      : r_(std::move(r)), splitter_(r_.g.starts_in_reasoning), tools_(r_.tool_format, r_.id + "_call_"),
        tok_(r_.g.model->model->tokenizer()) {}
  std::string start() override { return chunk({{"role", "assistant"}, {"content", ""}}, json(nullptr)); }
  std::string token(const StreamToken& t) override {
    json delta = json::object();
    std::string content = t.text;
    if (r_.g.split_reasoning) {
      const auto p = splitter_.push(t.text);
      if (!p.reasoning.empty()) delta["reasoning_content"] = p.reasoning;
      content = p.content;
    }
    add_content(content, delta);
    json logprobs(nullptr);
    if (r_.logprobs && t.token >= 0) logprobs = {{"content", json::array({chat_logprob(tok_, t)})}};
    if (delta.empty() && logprobs.is_null()) return {};
    return chunk(delta, logprobs);
  }
  std::string finish(const RequestResult& res) override {
    std::string out;
    json delta = json::object();
    std::string content;
    if (r_.g.split_reasoning) {
      const auto p = splitter_.flush();
      if (!p.reasoning.empty()) delta["reasoning_content"] = p.reasoning;
      content = p.content;
    }
    add_content(content, delta);
    const ToolCallStream::Output rest = tools_.finish();
    if (!rest.text.empty()) delta["content"] = delta.value("content", std::string()) + rest.text;
    add_calls(rest.calls, delta);
    if (!delta.empty()) out += chunk(delta, json(nullptr));
    if (res.finish_reason == "error") {
      out += sse({{"error", {{"message", res.error}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}});
      return out + "data: [DONE]\n\n";
    }
    json last = base();
    const std::string reason = n_calls_ > 0 ? "tool_calls" : api_finish_reason(res.finish_reason);
    last["choices"] = json::array({{{"index", 0}, {"delta", json::object()}, {"logprobs", nullptr}, {"finish_reason", reason}}});
    out += sse(last);
    if (r_.common.include_usage) {
      json usage = base();
      usage["choices"] = json::array();
      usage["usage"] = usage_json(res);
      out += sse(usage);
    }
    return out + "data: [DONE]\n\n";
  }
  std::string keepalive() override { return ": keep-alive\n\n"; }

 private:
  json base() const {
    return {{"id", r_.id}, {"object", "chat.completion.chunk"}, {"created", r_.created}, {"model", r_.g.model->alias}};
  }
  std::string chunk(const json& delta, const json& logprobs) const {
    json j = base();
    j["choices"] = json::array({{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", nullptr}}});
    return sse(j);
  }
  // Answer text through the tool-call reader: text that cannot be part of a call at once, a call once whole.
  void add_content(const std::string& content, json& delta) {
    if (content.empty()) return;
    ToolCallStream::Output o = tools_.feed(content);
    if (!o.text.empty()) delta["content"] = o.text;
    add_calls(o.calls, delta);
  }
  void add_calls(std::vector<ToolCall> calls, json& delta) {
    if (!r_.parallel_tool_calls && n_calls_ + calls.size() > 1) calls.resize(n_calls_ > 0 ? 0 : 1);
    if (calls.empty()) return;
    delta["tool_calls"] = openai_tool_calls(calls, n_calls_, /*with_index=*/true);
    n_calls_ += static_cast<int>(calls.size());
  }
  ChatRequest r_;
  ReasoningSplitter splitter_;
  ToolCallStream tools_;
  int n_calls_ = 0;
  const Tokenizer& tok_;
};

void chat_completions(ServerContext& ctx, const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
  const json body = parse_json_object(req.body);
  const nlohmann::ordered_json ordered = nlohmann::ordered_json::parse(req.body);  // the client's key order
  const Fields f(body, "");
  ChatRequest r;
  r.common = read_common(ctx, f, &scope.model);
  const std::vector<ChatMessage> messages = read_openai_messages(body, ordered);
  ChatPromptOptions prompt_options;
  if (const json* kw = f.raw("chat_template_kwargs")) {
    if (!kw->is_object()) bad_request("chat_template_kwargs", "'chat_template_kwargs' must be an object");
    prompt_options.enable_thinking = Fields(*kw, "chat_template_kwargs").boolean("enable_thinking");
    prompt_options.template_kwargs = ordered["chat_template_kwargs"];
    prompt_options.template_kwargs.erase("enable_thinking");
  }
  r.logprobs = f.boolean("logprobs").value_or(false);
  const auto top_logprobs = f.integer("top_logprobs", 0, 20);
  if (top_logprobs && !r.logprobs) bad_request("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  if (const json* v = f.raw("functions"); v && !(v->is_array() && v->empty())) {
    bad_request("functions", "'functions' is OpenAI's deprecated form: send 'tools' instead");
  }
  prompt_options.tools = read_tools(ordered);
  const ToolChoiceField choice = read_tool_choice(body, prompt_options.tools);
  r.parallel_tool_calls = f.boolean("parallel_tool_calls").value_or(true);
  if (prompt_options.tools.is_array() && choice.choice != ToolChoice::kNone) {
    r.tool_format = r.common.model->model->chat_template().tool_call_format();
  }
  const ReplyGrammar reply_grammar = openai_reply_grammar(ordered);

  Generation& g = r.g;
  g.model = r.common.model;
  g.route = "/v1/chat/completions";
  g.lease = scope.lease;
  bool thinking_open = false;
  g.request.prompt = chat_prompt_tokens(*g.model, messages, prompt_options, &thinking_open);
  check_input_filters(ctx, user_texts(messages), static_cast<int64_t>(messages.size()),
                      static_cast<int64_t>(g.request.prompt.size()), "messages");
  g.split_reasoning = has_reasoning_template(*g.model);
  g.starts_in_reasoning = thinking_open;
  read_sampling(f, *g.model, g.request, 0);
  if (choice.choice == ToolChoice::kRequired || choice.choice == ToolChoice::kNamed) {
    if (!reply_grammar.gbnf.empty()) {
      bad_request("tool_choice", "a forced 'tool_choice' and a constrained reply ('response_format', 'grammar' or "
                                 "'json_schema') cannot be combined");
    }
    set_reply_grammar(*g.model,
                      forced_call_grammar(*g.model, prompt_options.tools, choice, r.parallel_tool_calls, thinking_open),
                      "tool_choice", g.request);
  } else {
    set_reply_grammar(*g.model, reply_grammar.gbnf, reply_grammar.field, g.request);
  }
  g.request.logprobs = r.logprobs ? static_cast<int32_t>(top_logprobs.value_or(0)) : -1;
  r.id = ctx.new_id("chatcmpl-");
  r.created = static_cast<int64_t>(std::time(nullptr));
  g.exchange = scope.exchange(r.id, ordered["messages"].dump());
  apply_time_policy(ctx, scope, g.request, res);
  start_generation(ctx, g);

  if (r.common.stream) {
    auto formatter = std::make_unique<ChatStream>(r);  // a copy: r.g goes to the stream below
    stream_generation(ctx, res, "text/event-stream", std::move(r.g), std::move(formatter));
    return;
  }
  const std::vector<StreamToken> tokens = g.stream->wait_all();
  const RequestResult& result = g.stream->result();
  if (result.finish_reason == "error") {
    ApiError e;
    e.status = 500;
    e.type = "server_error";
    e.message = result.error;
    throw RequestError(std::move(e));
  }
  json message = {{"role", "assistant"}};
  std::string content = result.text;
  if (g.split_reasoning) {
    ReasoningSplitter splitter(g.starts_in_reasoning);
    auto p = splitter.push(result.text);
    const auto rest = splitter.flush();
    p.reasoning += rest.reasoning;
    content = p.content + rest.content;
    if (!(p.reasoning.empty())) message["reasoning_content"] = p.reasoning;
  }
  ParsedReply reply = parse_tool_calls(r.tool_format, content, r.id + "_call_");
  if (!r.parallel_tool_calls && reply.calls.size() > 1) reply.calls.resize(1);
  if (reply.calls.empty()) {
    message["content"] = content;
  } else {
    message["content"] = reply.content.empty() ? json(nullptr) : json(reply.content);
    message["tool_calls"] = openai_tool_calls(reply.calls);
  }
  json logprobs(nullptr);
  if (r.logprobs) {
    json content = json::array();
    for (const StreamToken& t : tokens) {
      if (t.token >= 0) content.push_back(chat_logprob(g.model->model->tokenizer(), t));
    }
    logprobs = {{"content", content}};
  }
  send_json(res, {{"id", r.id},
                  {"object", "chat.completion"},
                  {"created", r.created},
                  {"model", g.model->alias},
                  {"choices", json::array({{{"index", 0},
                                            {"message", message},
                                            {"logprobs", logprobs},
                                            {"finish_reason", reply.calls.empty() ? api_finish_reason(result.finish_reason)
                                                                                  : std::string("tool_calls")}}})},
                  {"usage", usage_json(result)}});
}

// ---- /v1/completions ----

struct CompletionRequest {
  Common common;
  Generation g;
  int logprobs = -1;  // the legacy API's integer: 0..5 alternatives
  std::string id;
  int64_t created = 0;
};

// Legacy logprobs of a list of tokens: {"tokens", "token_logprobs", "top_logprobs", "text_offset"}.
json completion_logprobs(const Tokenizer& tok, const std::vector<StreamToken>& tokens, size_t text_offset) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const StreamToken& t : tokens) {
    if (t.token < 0) continue;
    const std::string s = tok.token_bytes(t.token);
    out["tokens"].push_back(s);
    out["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (const auto& alt : t.top_logprobs) top[tok.token_bytes(alt.token)] = alt.logprob;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(text_offset);
    text_offset += s.size();
  }
  return out;
}

class CompletionStream : public StreamFormatter {
 public:
  explicit CompletionStream(CompletionRequest r) : r_(std::move(r)), tok_(r_.g.model->model->tokenizer()) {}
  std::string token(const StreamToken& t) override {
    json logprobs(nullptr);
    if (r_.logprobs >= 0 && t.token >= 0) {
      logprobs = completion_logprobs(tok_, {t}, offset_);
    }
    offset_ += t.text.size();
    if (t.text.empty() && logprobs.is_null()) return {};
    return chunk(t.text, logprobs, json(nullptr));
  }
  std::string finish(const RequestResult& res) override {
    if (res.finish_reason == "error") {
      return sse({{"error", {{"message", res.error}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}}) +
             "data: [DONE]\n\n";
    }
    std::string out = chunk("", json(nullptr), api_finish_reason(res.finish_reason));
    if (r_.common.include_usage) {
      json usage = base();
      usage["choices"] = json::array();
      usage["usage"] = usage_json(res);
      out += sse(usage);
    }
    return out + "data: [DONE]\n\n";
  }
  std::string keepalive() override { return ": keep-alive\n\n"; }

 private:
  json base() const {
    return {{"id", r_.id}, {"object", "text_completion"}, {"created", r_.created}, {"model", r_.g.model->alias}};
  }
  std::string chunk(const std::string& text, const json& logprobs, const json& finish_reason) const {
    json j = base();
    j["choices"] = json::array({{{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish_reason}}});
    return sse(j);
  }
  CompletionRequest r_;
  const Tokenizer& tok_;
  size_t offset_ = 0;
};

void completions(ServerContext& ctx, const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
  const json body = parse_json_object(req.body);
  const Fields f(body, "");
  CompletionRequest r;
  r.common = read_common(ctx, f, &scope.model);
  Generation& g = r.g;
  g.model = r.common.model;
  g.route = "/v1/completions";
  g.lease = scope.lease;
  // prompt: a string, an array of one string, or an array of token ids.
  const json* prompt = f.raw("prompt");
  if (prompt == nullptr) bad_request("prompt", "'prompt' is required");
  if (prompt->is_string()) {
    g.request.prompt = completion_prompt_tokens(*g.model, prompt->get<std::string>());
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    g.request.prompt = completion_prompt_tokens(*g.model, (*prompt)[0].get<std::string>());
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
    for (size_t i = 0; i < prompt->size(); ++i) {
      const json& t = (*prompt)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= g.model->model->config().n_vocab) {
        bad_request("prompt", "'prompt[" + std::to_string(i) + "]' is not a token id of this model's vocabulary of " +
                                  std::to_string(g.model->model->config().n_vocab));
      }
      g.request.prompt.push_back(t.get<int32_t>());
    }
  } else {
    bad_request("prompt", "'prompt' must be a string, an array of one string or an array of token ids (one prompt "
                          "per request)");
  }
  // Token-id prompts are filtered as the text they stand for.
  check_input_filters(ctx, {g.model->model->tokenizer().decode(g.request.prompt)}, 1,
                      static_cast<int64_t>(g.request.prompt.size()), "prompt");
  if (f.boolean("echo").value_or(false)) bad_request("echo", "'echo' is not supported");
  const ReplyGrammar reply_grammar = openai_reply_grammar(nlohmann::ordered_json::parse(req.body));
  if (auto suffix = f.string("suffix"); suffix && !suffix->empty()) bad_request("suffix", "'suffix' is not supported");
  if (auto best_of = f.integer("best_of", INT64_MIN, INT64_MAX); best_of && *best_of != 1) {
    bad_request("best_of", "'best_of' must be 1");
  }
  read_sampling(f, *g.model, g.request, 16);  // OpenAI's default max_tokens for completions
  set_reply_grammar(*g.model, reply_grammar.gbnf, reply_grammar.field, g.request);
  if (auto lp = f.integer("logprobs", 0, 5)) r.logprobs = static_cast<int>(*lp);
  g.request.logprobs = r.logprobs;
  r.id = ctx.new_id("cmpl-");
  r.created = static_cast<int64_t>(std::time(nullptr));
  g.exchange = scope.exchange(r.id, prompt->dump());
  apply_time_policy(ctx, scope, g.request, res);
  start_generation(ctx, g);

  if (r.common.stream) {
    auto formatter = std::make_unique<CompletionStream>(r);  // a copy: r.g goes to the stream below
    stream_generation(ctx, res, "text/event-stream", std::move(r.g), std::move(formatter));
    return;
  }
  const std::vector<StreamToken> tokens = g.stream->wait_all();
  const RequestResult& result = g.stream->result();
  if (result.finish_reason == "error") {
    ApiError e;
    e.status = 500;
    e.type = "server_error";
    e.message = result.error;
    throw RequestError(std::move(e));
  }
  json logprobs(nullptr);
  if (r.logprobs >= 0) logprobs = completion_logprobs(g.model->model->tokenizer(), tokens, 0);
  send_json(res, {{"id", r.id},
                  {"object", "text_completion"},
                  {"created", r.created},
                  {"model", g.model->alias},
                  {"choices", json::array({{{"index", 0},
                                            {"text", result.text},
                                            {"logprobs", logprobs},
                                            {"finish_reason", api_finish_reason(result.finish_reason)}}})},
                  {"usage", usage_json(result)}});
}

json model_json(const ServedModel& m) {
  return {{"id", m.alias}, {"object", "model"}, {"created", m.created_unix}, {"owned_by", "edgellm"}};
}

}  // namespace

void register_openai_routes(httplib::Server& http, ServerContext& ctx) {
  http.Post("/v1/chat/completions",
            route(ctx, "/v1/chat/completions", Dialect::kOpenAI, true,
                  [&ctx](const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
                    chat_completions(ctx, req, res, scope);
                  }));
  http.Post("/v1/completions", route(ctx, "/v1/completions", Dialect::kOpenAI, true,
                                     [&ctx](const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
                                       completions(ctx, req, res, scope);
                                     }));
  http.Get("/v1/models", route(ctx, "/v1/models", Dialect::kOpenAI, true,
                               [&ctx](const httplib::Request&, httplib::Response& res, RequestScope&) {
                                 json data = json::array();
                                 for (const auto& m : ctx.models()) data.push_back(model_json(*m));
                                 send_json(res, {{"object", "list"}, {"data", data}});
                               }));
  http.Get(R"(/v1/models/(.+))", route(ctx, "/v1/models/{model}", Dialect::kOpenAI, true,
                                      [&ctx](const httplib::Request& req, httplib::Response& res, RequestScope& scope) {
                                        ServedModel* m = ctx.find_model(req.matches[1]);
                                        if (m == nullptr) {
                                          ApiError e;
                                          e.status = 404;
                                          e.param = "model";
                                          e.code = "model_not_found";
                                          e.message = "The model '" + std::string(req.matches[1]) + "' does not exist";
                                          throw RequestError(std::move(e));
                                        }
                                        scope.model = m->alias;
                                        send_json(res, model_json(*m));
                                      }));
}

}  // namespace edgellm::server
