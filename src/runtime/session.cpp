#include "runtime/session.h"

#include "chat/tool_call_grammar.h"
#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kernels/quantize.h"
#include "runtime/prompt_lookup.h"
#include "runtime/prompt_tokens.h"
#include "runtime/stop_matcher.h"
#include "util/half.h"

namespace edgellm {
namespace {

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

// Clears the running flag (and a pending abort) however a call ends.
class RunningGuard {
 public:
  RunningGuard(std::atomic<bool>& running, std::atomic<bool>& abort) : running_(running), abort_(abort) {
    running_.store(true);
  }
  ~RunningGuard() {
    running_.store(false);
    abort_.store(false);
  }

 private:
  std::atomic<bool>& running_;
  std::atomic<bool>& abort_;
};

}  // namespace

Expected<std::unique_ptr<Session>> Session::create(std::shared_ptr<const LoadedModel> model,
                                                   const SessionOptions& options) {
  if (!model) return make_error(ErrorCode::kInvalidArgument, "session: no model");
  if (options.max_batch <= 0 || options.max_batch > 4096) {
    return make_error(ErrorCode::kInvalidArgument, "session: max_batch " + std::to_string(options.max_batch) +
                                                       " is out of range [1, 4096]");
  }
  // Checked before allocating: the allocation itself may succeed (overcommit) and fail only when touched.
  const size_t kv_bytes = KvCache::bytes_needed(model->config(), options.n_ctx, options.kv_type) +
                          KvCache::state_bytes_needed(model->config());
  const size_t available = available_memory_bytes();
  if (available > 0 && kv_bytes > available) {
    return make_error(ErrorCode::kOutOfMemory, "session: the " + std::string(dtype_name(options.kv_type)) +
                                                   " KV cache for " + std::to_string(options.n_ctx) +
                                                   " positions needs " + std::to_string(kv_bytes >> 20) +
                                                   " MiB but only " + std::to_string(available >> 20) +
                                                   " MiB are available (MemAvailable; EDGELLM_MEM_AVAILABLE_MB "
                                                   "overrides)");
  }
  EDGELLM_ASSIGN_OR_RETURN(KvCache kv, KvCache::create(model->config(), options.n_ctx, options.kv_type));
  return std::unique_ptr<Session>(new Session(std::move(model), options, std::move(kv)));
}

Session::Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options, KvCache kv)
    : model_(std::move(model)), options_(options), kv_(std::move(kv)) {
  scratch_ = std::make_unique<ForwardScratch>(model_->config(), options_.max_batch, options_.n_ctx,
                                              model_->pool().n_threads());
  logits_.resize(static_cast<size_t>(model_->config().n_vocab));
  chat_options_ = model_->chat_options();
}

Status Session::set_lora(const std::string& name, float scale) {
  if (!std::isfinite(scale)) return make_error(ErrorCode::kInvalidArgument, "LoRA scale must be finite");
  std::shared_ptr<const LoraAdapter> adapter;
  if (!name.empty()) {
    adapter = model_->find_lora(name);
    if (!adapter) {
      std::string known;
      for (const auto& n : model_->lora_names()) known += (known.empty() ? "" : ", ") + n;
      return make_error(ErrorCode::kNotFound, "no LoRA adapter named '" + name + "' is loaded" +
                                                  (known.empty() ? std::string(" (none are)") : " (loaded: " + known + ")"));
    }
  }
  if (adapter != lora_ || (adapter && scale != lora_scale_)) trim(0);  // the cached K/V used other weights
  lora_ = std::move(adapter);
  lora_name_ = name;
  lora_scale_ = scale;
  return {};
}

void Session::trim(int64_t n) {
  n = std::clamp<int64_t>(n, 0, static_cast<int64_t>(cached_.size()));
  if (n < static_cast<int64_t>(cached_.size())) logits_valid_ = false;
  // A hybrid model's linear-attention state goes back only to a snapshot: the tokens after it run again.
  const int64_t from = kv_.rewind_point(n);
  std::vector<int32_t> replay(cached_.begin() + from, cached_.begin() + n);
  cached_.resize(static_cast<size_t>(from));
  kv_.set_n_past(from);
  for (size_t pos = 0; pos < replay.size();) {
    const size_t len = std::min(replay.size() - pos, static_cast<size_t>(options_.max_batch));
    const Status st = model_->transformer().forward(&replay[pos], static_cast<int64_t>(len), kv_, *scratch_,
                                                    model_->pool(), LogitsMode::kNone, logits_,
                                                    ActiveLora{lora_.get(), lora_scale_});
    if (!st.ok()) break;  // cannot happen for tokens that ran before; the cache then ends where it stopped
    cached_.insert(cached_.end(), replay.begin() + static_cast<std::ptrdiff_t>(pos),
                   replay.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
  }
}

Expected<int64_t> Session::prefill(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return make_error(ErrorCode::kInvalidArgument, "prefill: no tokens");
  if (static_cast<int64_t>(tokens.size()) > kv_.n_ctx()) {
    return make_error(ErrorCode::kContextFull, "the prompt has " + std::to_string(tokens.size()) +
                                                   " tokens but the context holds " + std::to_string(kv_.n_ctx()));
  }
  size_t common = 0;
  while (common < cached_.size() && common < tokens.size() && cached_[common] == tokens[common]) ++common;
  if (common == tokens.size()) {
    if (common == cached_.size() && logits_valid_) return int64_t{0};
    --common;  // re-run the last token to get its logits
  }
  // A hybrid model restarts from its latest snapshot at or before the common prefix.
  common = static_cast<size_t>(kv_.rewind_point(static_cast<int64_t>(common)));
  trim(static_cast<int64_t>(common));
  const Transformer& tf = model_->transformer();
  const int64_t total = static_cast<int64_t>(tokens.size());
  int64_t pos = static_cast<int64_t>(common);
  while (pos < total) {
    if (abort_.load()) return make_error(ErrorCode::kAborted, "prefill aborted");
    int64_t n = std::min(options_.max_batch, total - pos);
    if (kv_.hybrid()) {
      // Snapshots before and after the prompt's last token: where the next request most likely diverges
      // (the same prompt again, or the conversation continued after it).
      if (pos < total - 1 && pos + n == total) n = total - 1 - pos;
      if (pos == total - 1) kv_.save_snapshot();
    }
    const LogitsMode mode = pos + n == total ? LogitsMode::kLast : LogitsMode::kNone;
    const Status st = tf.forward(&tokens[static_cast<size_t>(pos)], n, kv_, *scratch_, model_->pool(), mode, logits_,
                                 ActiveLora{lora_.get(), lora_scale_});
    if (!st.ok()) {
      cached_.resize(static_cast<size_t>(kv_.n_past()));
      return st.error();
    }
    cached_.insert(cached_.end(), tokens.begin() + pos, tokens.begin() + pos + n);
    pos += n;
  }
  kv_.save_snapshot();
  logits_valid_ = true;
  return total - static_cast<int64_t>(common);
}

Expected<GenerationStats> Session::generate(const GenerateOptions& options, const TextCallback& callback) {
  const int32_t n_vocab = static_cast<int32_t>(model_->config().n_vocab);
  EDGELLM_TRY(options.sampling.validate(n_vocab));
  if (options.max_new_tokens < 0) {
    return make_error(ErrorCode::kInvalidArgument, "max_new_tokens must be >= 0, got " +
                                                       std::to_string(options.max_new_tokens));
  }
  if (options.lookup < 0 || options.lookup > kMaxLookup) {
    return make_error(ErrorCode::kInvalidArgument, "lookup (draft tokens per step) must be in [0, " +
                                                       std::to_string(kMaxLookup) + "], got " +
                                                       std::to_string(options.lookup));
  }
  if (!logits_valid_) return make_error(ErrorCode::kInvalidArgument, "generate: nothing has been prefilled");
  RunningGuard guard(running_, abort_);

  std::optional<GrammarMatcher> grammar;
  if (!options.grammar.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledGrammar> compiled, model_->compile_grammar(options.grammar));
    grammar.emplace(std::move(compiled));
  }
  GenerationStats stats;
  Sampler sampler(options.sampling, n_vocab);
  for (int32_t t : cached_) sampler.accept(t);
  StreamingDecoder decoder(model_->tokenizer(), /*skip_special=*/true);
  StopMatcher stop_matcher(options.stop_strings);
  const auto& stop_ids = model_->stop_token_ids();
  std::vector<float> work(logits_.size());
  const ActiveLora lora{lora_.get(), lora_scale_};

  auto emit = [&](const std::string& text) {
    if (text.empty()) return true;
    stats.text += text;
    return callback ? callback(text) : true;
  };
  // The next token from a row of logits (a draft to verify, or kNoToken).
  auto pick = [&](const float* row, int32_t draft) -> Expected<int32_t> {
    std::copy(row, row + n_vocab, work.begin());
    if (grammar) grammar->mask_logits(work.data(), static_cast<int64_t>(work.size()));
    const int32_t token = sampler.sample(work.data(), draft);
    if (token == Sampler::kNoToken) {
      if (grammar) return make_error(ErrorCode::kInvalidArgument, kGrammarDeadEnd);
      return make_error(ErrorCode::kInternal, "sampling found no token with a finite logit (broken logits)");
    }
    return token;
  };
  bool stopped_by_string = false;
  // A chosen token goes out (or ends the reply: a stop token is not emitted); true when generation ends.
  auto take = [&](int32_t token) -> Expected<bool> {
    if (!options.ignore_stop_tokens && std::binary_search(stop_ids.begin(), stop_ids.end(), token)) {
      stats.finish_reason = "stop";
      return true;
    }
    ++stats.decode_tokens;
    if (grammar) EDGELLM_TRY(grammar->accept(token));
    const StopMatcher::Result r = stop_matcher.push(decoder.push(token));
    if (!emit(r.emit)) {
      stats.finish_reason = "callback";
      return true;
    }
    if (r.stopped) {
      stats.finish_reason = "stop";
      stopped_by_string = true;
      return true;
    }
    if (grammar && grammar->must_finish()) {
      stats.finish_reason = "stop";
      return true;
    }
    if (stats.decode_tokens == options.max_new_tokens) return true;
    if (static_cast<int64_t>(cached_.size()) >= kv_.n_ctx()) {
      stats.finish_reason = "context";
      return true;
    }
    return false;
  };

  // Speculative decoding with prompt lookup: each token is forwarded together with the tokens that followed
  // the latest earlier occurrence of the context's last n-gram, and the step's logits verify them in order
  // (Sampler::sample with a draft: greedy output is exactly plain decoding's, sampled output has its
  // distribution). The KV cache then goes back to the last accepted token. The draft length adapts: two
  // more after a step that accepted all, one fewer after one that did not. Hybrid models (linear-attention
  // state, which cannot go back a few positions) decode plainly.
  const bool speculate = options.lookup > 0 && !kv_.hybrid();
  const PromptLookup lookup;
  int64_t draft_len = options.lookup;
  std::vector<int32_t> draft;
  std::vector<int32_t> batch;
  std::vector<float> rows;

  const auto start = std::chrono::steady_clock::now();
  stats.finish_reason = "length";
  std::optional<int32_t> chosen;  // a token already drawn from a verification step's row
  while (stats.decode_tokens < options.max_new_tokens) {
    if (abort_.load()) {
      stats.finish_reason = "aborted";
      break;
    }
    int32_t token;
    if (chosen) {
      token = *chosen;
      chosen.reset();
    } else {
      EDGELLM_ASSIGN_OR_RETURN(token, pick(logits_.data(), Sampler::kNoToken));
    }
    EDGELLM_ASSIGN_OR_RETURN(const bool end, take(token));
    if (end) break;

    draft.clear();
    if (speculate) {
      const int64_t room = std::min({kv_.n_ctx() - static_cast<int64_t>(cached_.size()) - 1,
                                     static_cast<int64_t>(options.max_new_tokens - stats.decode_tokens),
                                     options_.max_batch - 1, draft_len});
      if (room > 0) {
        cached_.push_back(token);  // the context the draft continues
        lookup.propose(cached_, static_cast<int>(room), draft);
        cached_.pop_back();
      }
    }
    if (draft.empty()) {
      const Status st = model_->transformer().forward(&token, 1, kv_, *scratch_, model_->pool(), LogitsMode::kLast,
                                                      logits_, lora);
      if (!st.ok()) return st.error();
      cached_.push_back(token);
      sampler.accept(token);
      continue;
    }
    batch.assign(1, token);
    batch.insert(batch.end(), draft.begin(), draft.end());
    const size_t base = cached_.size();
    const Status st = model_->transformer().forward(batch.data(), static_cast<int64_t>(batch.size()), kv_, *scratch_,
                                                    model_->pool(), LogitsMode::kAll, rows, lora);
    if (!st.ok()) return st.error();
    cached_.push_back(token);
    sampler.accept(token);
    ++stats.verify_steps;
    stats.draft_tokens += static_cast<int64_t>(draft.size());
    size_t accepted = 0;
    bool ended = false;
    while (accepted < draft.size()) {
      EDGELLM_ASSIGN_OR_RETURN(const int32_t next, pick(&rows[accepted * static_cast<size_t>(n_vocab)], draft[accepted]));
      if (next != draft[accepted]) {
        chosen = next;
        break;
      }
      ++accepted;
      EDGELLM_ASSIGN_OR_RETURN(ended, take(next));
      if (ended) break;
      cached_.push_back(next);
      sampler.accept(next);
    }
    stats.accepted_tokens += static_cast<int64_t>(accepted);
    draft_len = accepted == draft.size() ? std::min<int64_t>(draft_len + 2, options.lookup)
                                         : std::max<int64_t>(draft_len - 1, 1);
    // The cache keeps the accepted tokens; the logits are the row after the last of them.
    const size_t row = cached_.size() - base - 1;
    std::copy_n(&rows[row * static_cast<size_t>(n_vocab)], n_vocab, logits_.begin());
    kv_.set_n_past(static_cast<int64_t>(cached_.size()));
    if (ended) break;
  }
  kv_.save_snapshot();  // a hybrid model's state after the reply, where the next turn continues
  if (!stopped_by_string && stats.finish_reason != "callback") {
    emit(stop_matcher.push(decoder.flush()).emit);
    emit(stop_matcher.flush());
  }
  stats.decode_ms = ms_since(start);
  stats.peak_rss_bytes = peak_rss_bytes();
  return stats;
}

Expected<GenerationStats> Session::complete(std::string_view prompt, bool allow_special,
                                            const GenerateOptions& options, const TextCallback& callback) {
  if (options.lora_name) EDGELLM_TRY(set_lora(*options.lora_name, options.lora_scale));
  EDGELLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, completion_tokens(*model_, prompt, allow_special));
  RunningGuard guard(running_, abort_);
  const auto start = std::chrono::steady_clock::now();
  EDGELLM_ASSIGN_OR_RETURN(const int64_t prefilled, prefill(tokens));
  const double prefill_ms = ms_since(start);
  EDGELLM_ASSIGN_OR_RETURN(GenerationStats stats, generate(options, callback));
  stats.prompt_tokens = static_cast<int64_t>(tokens.size());
  stats.prefill_tokens = prefilled;
  stats.reused_tokens = stats.prompt_tokens - prefilled;
  stats.prefill_ms = prefill_ms;
  return stats;
}

void Session::set_system_prompt(std::string system_prompt) { system_prompt_ = std::move(system_prompt); }

Expected<std::vector<int32_t>> Session::render_chat(const std::vector<ChatMessage>& messages) const {
  return chat_tokens(*model_, messages, chat_options_);
}

std::vector<ChatMessage> Session::limited_history(int64_t reply_budget) const {
  std::vector<ChatMessage> history = history_;
  // Indices where rounds start (a user message).
  auto round_starts = [](const std::vector<ChatMessage>& h) {
    std::vector<size_t> starts;
    for (size_t i = 0; i < h.size(); ++i) {
      if (h[i].role == "user") starts.push_back(i);
    }
    return starts;
  };
  auto drop_oldest_round = [&](std::vector<ChatMessage>& h) {
    const auto starts = round_starts(h);
    if (starts.size() < 2) return false;
    h.erase(h.begin() + static_cast<std::ptrdiff_t>(starts[0]), h.begin() + static_cast<std::ptrdiff_t>(starts[1]));
    return true;
  };
  if (history_limit_.max_rounds > 0) {
    while (static_cast<int32_t>(round_starts(history).size()) > history_limit_.max_rounds) {
      if (!drop_oldest_round(history)) break;
    }
  }
  const int64_t budget = history_limit_.max_tokens > 0 ? std::min(history_limit_.max_tokens, kv_.n_ctx() - reply_budget)
                                                        : kv_.n_ctx() - reply_budget;
  for (;;) {
    std::vector<ChatMessage> messages;
    if (!system_prompt_.empty()) messages.push_back({"system", system_prompt_, std::nullopt});
    messages.insert(messages.end(), history.begin(), history.end());
    auto tokens = render_chat(messages);
    if (!tokens.ok() || static_cast<int64_t>(tokens->size()) <= budget) break;
    if (!drop_oldest_round(history)) break;
  }
  return history;
}

Expected<GenerationStats> Session::chat(std::string_view user_message, const GenerateOptions& options,
                                        const TextCallback& callback, const ToolCallCallback& on_call) {
  history_.push_back({"user", std::string(user_message), std::nullopt});
  auto stats = chat_turn(options, callback, on_call);
  if (!stats.ok()) history_.pop_back();
  return stats;
}

Expected<GenerationStats> Session::respond(const GenerateOptions& options, const TextCallback& callback,
                                           const ToolCallCallback& on_call) {
  if (history_.empty()) return make_error(ErrorCode::kInvalidArgument, "respond: the history is empty");
  return chat_turn(options, callback, on_call);
}

Expected<GenerationStats> Session::chat_turn(const GenerateOptions& options, const TextCallback& callback,
                                             const ToolCallCallback& on_call) {
  if (options.lora_name) EDGELLM_TRY(set_lora(*options.lora_name, options.lora_scale));
  std::vector<ChatMessage> kept = limited_history(options.max_new_tokens);
  const size_t dropped = history_.size() - kept.size();
  std::vector<ChatMessage> messages;
  if (!system_prompt_.empty()) messages.push_back({"system", system_prompt_, std::nullopt});
  messages.insert(messages.end(), kept.begin(), kept.end());
  EDGELLM_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, render_chat(messages));
  if (static_cast<int64_t>(tokens.size()) >= kv_.n_ctx()) {
    return make_error(ErrorCode::kContextFull, "the message needs " + std::to_string(tokens.size()) +
                                                   " tokens with the chat template; the context holds " +
                                                   std::to_string(kv_.n_ctx()));
  }

  // Tools: which format the reply is read in, and the grammar of a forced call.
  const bool has_tools = chat_options_.tools.is_array() && !chat_options_.tools.empty();
  const std::string& choice = options.tool_choice;
  if (!has_tools && !choice.empty() && choice != "auto" && choice != "none") {
    return make_error(ErrorCode::kInvalidArgument, "tool_choice '" + choice + "' needs tools (set them first)");
  }
  const ToolCallFormat format =
      has_tools && choice != "none" ? model_->chat_template().tool_call_format() : ToolCallFormat::kNone;
  GenerateOptions run = options;
  if (has_tools && !choice.empty() && choice != "auto" && choice != "none") {
    if (!options.grammar.empty()) {
      return make_error(ErrorCode::kInvalidArgument, "a forced tool_choice and a grammar cannot be combined");
    }
    ToolCallGrammarOptions forced;
    forced.only_name = choice == "required" ? "" : choice;
    // A forced choice implies tools and not "none", so `format` is the template's own.
    EDGELLM_ASSIGN_OR_RETURN(run.grammar, tool_call_gbnf(format, chat_options_.tools, forced));
  }
  const bool read_calls = read_tool_calls_ && format != ToolCallFormat::kNone;
  ToolCallStream calls(format);
  bool stopped_by_caller = false;
  auto deliver = [&](const ToolCallStream::Output& out) {
    if (!out.text.empty() && callback && !callback(out.text)) return false;
    for (const ToolCall& call : out.calls) {
      if (on_call && !on_call(call)) return false;
    }
    return true;
  };
  const TextCallback reading = [&](std::string_view piece) {
    if (!deliver(calls.feed(piece))) {
      stopped_by_caller = true;
      return false;
    }
    return true;
  };

  RunningGuard guard(running_, abort_);
  const auto start = std::chrono::steady_clock::now();
  EDGELLM_ASSIGN_OR_RETURN(const int64_t prefilled, prefill(tokens));
  const double prefill_ms = ms_since(start);
  EDGELLM_ASSIGN_OR_RETURN(GenerationStats stats, generate(run, read_calls ? reading : callback));
  ChatMessage reply{"assistant", stats.text, std::nullopt};
  if (read_calls) {
    if (!stopped_by_caller && !deliver(calls.finish())) stats.finish_reason = "callback";
    ParsedReply parsed = parse_tool_calls(format, stats.text);
    if (!parsed.calls.empty()) {
      reply.content = parsed.content;
      reply.content_null = parsed.content.empty();
      reply.tool_calls = nlohmann::ordered_json::array();
      for (const ToolCall& c : parsed.calls) {
        reply.tool_calls.push_back({{"id", c.id}, {"type", "function"},
                                    {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      }
      stats.text = parsed.content;
      stats.tool_calls = std::move(parsed.calls);
    }
  }
  // The history the model saw is now the kept part; drop what no longer fits for good.
  if (dropped > 0) history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(dropped));
  history_.push_back(std::move(reply));
  stats.prompt_tokens = static_cast<int64_t>(tokens.size());
  stats.prefill_tokens = prefilled;
  stats.reused_tokens = stats.prompt_tokens - prefilled;
  stats.prefill_ms = prefill_ms;
  return stats;
}

// ---- prompt cache ----
// Layout (little-endian): "EDGEKV01", u32 version, 64-byte weights digest, u32 kv dtype, u32 n_layer,
// u32 kv_dim, u64 n_tokens, [versions 2, 3: u64 n_state], [version 3: u32 n_snapshots], i32
// tokens[n_tokens], then per layer K rows then V rows (n_tokens rows of kv_dim values in the kv dtype),
// [versions 2, 3: f32 state[n_state]], [version 3: n_snapshots x (u64 position, f32 state[n_state])], then
// f32 logits[n_vocab] after the last token. Versions 2 and 3 are for hybrid models (Qwen3.5): n_layer
// counts the full-attention layers, the state is the linear-attention state after the last token, and
// version 3 (written since) adds the session's snapshots before it (ascending, 1 <= position < n_tokens):
// a loaded cache can then go back to them, e.g. to the position before a prompt's last token, which a
// run of the same prompt needs to compute that token's logits again.

namespace {
constexpr char kStateMagic[8] = {'E', 'D', 'G', 'E', 'K', 'V', '0', '1'};
constexpr uint32_t kStateVersion = 1;
constexpr uint32_t kStateVersionHybrid = 2;
constexpr uint32_t kStateVersionHybridSnapshots = 3;
}  // namespace

Status Session::save_state(const std::string& path) const {
  if (cached_.empty() || !logits_valid_) {
    return make_error(ErrorCode::kInvalidArgument, "save_state: the session holds no prefilled tokens");
  }
  const std::string& digest = model_->weights_digest();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::kIo, path + ": cannot create");
    auto put = [&](const void* p, size_t n) { out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); };
    put(kStateMagic, 8);
    put(kv_.hybrid() ? &kStateVersionHybridSnapshots : &kStateVersion, 4);
    std::string d = digest;
    d.resize(64, '\0');
    put(d.data(), 64);
    const uint32_t type = static_cast<uint32_t>(kv_.type());
    const uint32_t n_layer = static_cast<uint32_t>(kv_.n_layer());
    const uint32_t kv_dim = static_cast<uint32_t>(kv_.kv_dim());
    const uint64_t n_tokens = cached_.size();
    put(&type, 4);
    put(&n_layer, 4);
    put(&kv_dim, 4);
    put(&n_tokens, 8);
    const uint64_t n_state = kv_.recurrent().size_bytes() / sizeof(float);
    std::vector<int64_t> snapshots;
    for (int64_t pos : kv_.snapshot_positions()) {
      if (pos < static_cast<int64_t>(n_tokens)) snapshots.push_back(pos);
    }
    const auto n_snapshots = static_cast<uint32_t>(snapshots.size());
    if (kv_.hybrid()) {
      put(&n_state, 8);
      put(&n_snapshots, 4);
    }
    put(cached_.data(), cached_.size() * sizeof(int32_t));
    // Position-major rows in the file (a position's heads side by side), whatever the cache's layout.
    std::vector<uint8_t> rows(kv_.row_bytes() * n_tokens);
    for (int64_t l = 0; l < kv_.n_layer(); ++l) {
      for (bool is_value : {false, true}) {
        for (uint64_t p = 0; p < n_tokens; ++p) {
          kv_.read_row(is_value, l, static_cast<int64_t>(p), rows.data() + p * kv_.row_bytes());
        }
        put(rows.data(), rows.size());
      }
    }
    if (kv_.hybrid()) {
      put(kv_.recurrent().data(), n_state * sizeof(float));
      for (int64_t pos : snapshots) {
        const uint64_t p = static_cast<uint64_t>(pos);
        put(&p, 8);
        put(kv_.snapshot_at(pos)->data(), n_state * sizeof(float));
      }
    }
    put(logits_.data(), logits_.size() * sizeof(float));
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return make_error(ErrorCode::kIo, path + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, path + ": cannot rename into place");
  }
  return {};
}

Status Session::load_state(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  auto get = [&](void* p, size_t n) {
    in.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    return static_cast<bool>(in);
  };
  auto bad = [&](const std::string& what) { return make_error(ErrorCode::kFormat, path + ": " + what); };
  char magic[8];
  uint32_t version = 0, type = 0, n_layer = 0, kv_dim = 0;
  uint64_t n_tokens = 0;
  char digest[64];
  if (!get(magic, 8) || std::memcmp(magic, kStateMagic, 8) != 0) return bad("not an edgellm prompt cache");
  if (!get(&version, 4) || (version != kStateVersion && version != kStateVersionHybrid &&
                             version != kStateVersionHybridSnapshots)) {
    return bad("unsupported prompt cache version");
  }
  const bool hybrid_file = version != kStateVersion;
  uint64_t n_state = 0;
  uint32_t n_snapshots = 0;
  if (!get(digest, 64) || !get(&type, 4) || !get(&n_layer, 4) || !get(&kv_dim, 4) || !get(&n_tokens, 8) ||
      (hybrid_file && !get(&n_state, 8)) || (version == kStateVersionHybridSnapshots && !get(&n_snapshots, 4))) {
    return bad("truncated header");
  }
  if (n_snapshots >= static_cast<uint32_t>(KvCache::kMaxSnapshots)) {
    return bad(std::to_string(n_snapshots) + " state snapshots (at most " +
               std::to_string(KvCache::kMaxSnapshots - 1) + ")");
  }
  const std::string file_digest(digest, strnlen(digest, 64));
  if (file_digest != model_->weights_digest()) {
    return make_error(ErrorCode::kInvalidArgument,
                      path + ": the prompt cache was made for another model (weights digest " +
                          file_digest.substr(0, 16) + "..., this model " + model_->weights_digest().substr(0, 16) +
                          "...)");
  }
  if (n_layer != kv_.n_layer() || kv_dim != kv_.kv_dim()) return bad("KV shape does not match the model");
  const uint64_t model_state = kv_.recurrent().size_bytes() / sizeof(float);
  if (hybrid_file != kv_.hybrid() || n_state != model_state) {
    return bad("linear-attention state of " + std::to_string(n_state) + " values, the model has " +
               std::to_string(model_state));
  }
  if (type != static_cast<uint32_t>(DType::kF16) && type != static_cast<uint32_t>(DType::kF32) &&
      type != static_cast<uint32_t>(DType::kQ8_0)) {
    return bad("unknown KV type " + std::to_string(type));
  }
  if (n_tokens == 0 || n_tokens > static_cast<uint64_t>(kv_.n_ctx())) {
    return make_error(ErrorCode::kContextFull, path + ": holds " + std::to_string(n_tokens) +
                                                   " tokens; this session's context is " + std::to_string(kv_.n_ctx()));
  }
  std::vector<int32_t> tokens(n_tokens);
  if (!get(tokens.data(), n_tokens * sizeof(int32_t))) return bad("truncated tokens");
  for (int32_t t : tokens) {
    if (t < 0 || t >= model_->config().n_vocab) return bad("token id " + std::to_string(t) + " out of range");
  }
  const DType file_type = static_cast<DType>(type);
  if (file_type == DType::kQ8_0 && kv_dim % 32 != 0) return bad("q8_0 KV rows of " + std::to_string(kv_dim) + " values");
  const size_t file_row = dtype_row_bytes(file_type, kv_dim);
  // Check the whole size before touching the cache, so a bad file leaves the session as it was.
  const uint64_t expected_size = 8 + 4 + 64 + 4 + 4 + 4 + 8 + (hybrid_file ? 8 : 0) +
                                 (version == kStateVersionHybridSnapshots ? 4 : 0) + n_tokens * 4 +
                                 2ull * n_layer * n_tokens * file_row + n_state * sizeof(float) +
                                 n_snapshots * (8 + n_state * sizeof(float)) + logits_.size() * sizeof(float);
  std::error_code ec;
  const uint64_t actual_size = std::filesystem::file_size(path, ec);
  if (ec || actual_size != expected_size) {
    return bad("size " + std::to_string(actual_size) + " bytes, expected " + std::to_string(expected_size) +
               " (truncated or corrupted)");
  }
  std::vector<uint8_t> rows(file_row * n_tokens);
  std::vector<float> row_f32(kv_dim);
  std::vector<uint8_t> converted(kv_.row_bytes());
  // Read into the cache, converting (through f32) if the session's KV type differs.
  auto store_rows = [&](bool is_k, int64_t layer) {
    for (uint64_t p = 0; p < n_tokens; ++p) {
      const uint8_t* src = rows.data() + p * file_row;
      if (file_type != kv_.type()) {
        // Both types hold kv_dim values (a multiple of 32 for q8_0, checked above and in KvCache::create).
        (void)dequantize_row(file_type, src, row_f32.data(), kv_dim);
        (void)quantize_row(kv_.type(), row_f32.data(), converted.data(), kv_dim);
        src = converted.data();
      }
      kv_.write_row(!is_k, layer, static_cast<int64_t>(p), src);
    }
  };
  trim(0);
  for (uint32_t l = 0; l < n_layer; ++l) {
    if (!get(rows.data(), rows.size())) return bad("truncated KV data");
    store_rows(true, l);
    if (!get(rows.data(), rows.size())) return bad("truncated KV data");
    store_rows(false, l);
  }
  const auto all_finite = [](const float* v, uint64_t n) {
    return std::all_of(v, v + n, [](float x) { return std::isfinite(x); });
  };
  std::vector<float> state(n_state);
  if (n_state > 0) {
    if (!get(state.data(), n_state * sizeof(float))) return bad("truncated linear-attention state");
    if (!all_finite(state.data(), n_state)) return bad("non-finite value in the linear-attention state");
  }
  std::vector<uint64_t> snapshot_pos(n_snapshots);
  std::vector<float> snapshot_states(n_snapshots * n_state);
  for (uint32_t i = 0; i < n_snapshots; ++i) {
    float* values = snapshot_states.data() + i * n_state;
    if (!get(&snapshot_pos[i], 8) || !get(values, n_state * sizeof(float))) return bad("truncated state snapshot");
    if (snapshot_pos[i] < 1 || snapshot_pos[i] >= n_tokens || (i > 0 && snapshot_pos[i] <= snapshot_pos[i - 1])) {
      return bad("state snapshot at position " + std::to_string(snapshot_pos[i]) + " (positions must rise within [1, " +
                 std::to_string(n_tokens) + "))");
    }
    if (!all_finite(values, n_state)) return bad("non-finite value in a state snapshot");
  }
  std::vector<float> logits(logits_.size());
  if (!get(logits.data(), logits.size() * sizeof(float))) return bad("truncated logits");
  if (in.peek() != std::char_traits<char>::eof()) return bad("trailing bytes after the logits");
  cached_ = std::move(tokens);
  std::copy(state.begin(), state.end(), kv_.recurrent().data());
  kv_.set_n_past(static_cast<int64_t>(cached_.size()));
  for (uint32_t i = 0; i < n_snapshots; ++i) {
    kv_.add_snapshot(static_cast<int64_t>(snapshot_pos[i]), snapshot_states.data() + i * n_state);
  }
  kv_.save_snapshot();
  logits_ = std::move(logits);
  logits_valid_ = true;
  return {};
}

}  // namespace edgellm
