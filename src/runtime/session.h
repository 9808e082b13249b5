// A conversation with a model: its own KV cache, the tokens that cache holds, and the chat history.
//
// Every request is turned into the full token sequence the model should see (the rendered chat, or a
// raw prompt); the session keeps the longest prefix it already has in its KV cache and prefills only
// the rest. A multi-turn chat therefore prefills only each new message, and any change further back
// (a trimmed history, an edited turn) re-prefills exactly from the first differing token.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_template.h"
#include "chat/tool_calls.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "runtime/loaded_model.h"
#include "runtime/sampler.h"
#include "util/expected.h"

namespace edgellm {

struct SessionOptions {
  int64_t n_ctx = 4096;           // KV cache positions (RKLLM's max_context_len)
  DType kv_type = DType::kF16;    // f16, f32 or q8_0
  int64_t max_batch = 64;         // tokens per prefill step
};

// Which turns of the history are kept when a new message comes in. Whole rounds (a user message and
// the reply) are dropped, oldest first; the system prompt is always kept.
struct HistoryLimit {
  int32_t max_rounds = 0;   // 0: no limit on rounds
  int64_t max_tokens = 0;   // 0: fit the context (n_ctx minus the reply budget)
};

struct GenerateOptions {
  SamplingParams sampling;
  int32_t max_new_tokens = 256;
  std::vector<std::string> stop_strings;  // in addition to the model's stop tokens
  bool ignore_stop_tokens = false;
  // LoRA for this call (chat/complete): a loaded adapter's name, "" for none, nullopt to keep the
  // session's current choice.
  std::optional<std::string> lora_name;
  float lora_scale = 1.0f;
  // Chat with tools (ChatOptions::tools): "" or "auto" (the model decides), "none" (the reply is not read for
  // calls), "required" (a call is forced by a grammar) or a function's name (that call is forced).
  std::string tool_choice;
  // GBNF the output must match (grammar/grammar.h); "" for none. Compiled against the model's vocabulary
  // (LoadedModel::compile_grammar caches it); generation ends when the grammar is complete.
  std::string grammar;
  // Speculative decoding with prompt lookup (runtime/prompt_lookup.h): up to this many tokens drafted from the
  // context and verified per forward step, the number adapted to how many are accepted; 0: off. Output is
  // that of plain decoding (greedy: the same tokens; sampled: the same distribution). Models with
  // linear-attention layers (Qwen3.5) decode plainly.
  int32_t lookup = 0;
};

// The largest GenerateOptions::lookup.
inline constexpr int32_t kMaxLookup = 32;

struct GenerationStats {
  int64_t prompt_tokens = 0;    // tokens of the full sequence fed to the model this call
  int64_t reused_tokens = 0;    // of those, already in the KV cache
  int64_t prefill_tokens = 0;   // prompt_tokens - reused_tokens
  double prefill_ms = 0;
  int64_t decode_tokens = 0;
  double decode_ms = 0;
  size_t peak_rss_bytes = 0;
  // Speculative decoding: forward steps that verified a draft, the tokens drafted, and of those the accepted.
  int64_t verify_steps = 0;
  int64_t draft_tokens = 0;
  int64_t accepted_tokens = 0;
  std::string finish_reason;    // "stop" (stop token or string), "length", "callback", "aborted", "context"
  std::string text;             // everything emitted to the callback (the reply without its calls, when read)
  std::vector<ToolCall> tool_calls;  // chat with tools, calls read: the calls the reply made
};

// Receives each function call of a chat reply once it is complete (tools set, calls read). Return false to
// stop generation.
using ToolCallCallback = std::function<bool(const ToolCall& call)>;

// Receives text as it is generated (complete UTF-8 only). Return false to stop generation.
using TextCallback = std::function<bool(std::string_view text)>;

class Session {
 public:
  static Expected<std::unique_ptr<Session>> create(std::shared_ptr<const LoadedModel> model,
                                                   const SessionOptions& options);

  const LoadedModel& model() const { return *model_; }
  const SessionOptions& options() const { return options_; }

  // ---- tokens ----
  // Makes the KV cache hold exactly `tokens`, reusing the longest common prefix; returns the number of
  // tokens that had to be prefilled. Errors leave the cache holding a valid prefix of `tokens`.
  Expected<int64_t> prefill(const std::vector<int32_t>& tokens);
  // Generates after the cached tokens. The sampled tokens are appended to the cache (the final stop
  // token is not).
  Expected<GenerationStats> generate(const GenerateOptions& options, const TextCallback& callback);
  const std::vector<int32_t>& cached_tokens() const { return cached_; }
  // Drops cached tokens beyond `n` (0 clears the cache).
  void trim(int64_t n);

  // ---- completion ----
  // Tokenizes `prompt` (BOS added if the model wants it; special tokens parsed only if allowed),
  // prefills with prefix reuse, and generates.
  Expected<GenerationStats> complete(std::string_view prompt, bool allow_special, const GenerateOptions& options,
                                     const TextCallback& callback);

  // ---- chat ----
  void set_system_prompt(std::string system_prompt);  // "" = none (the template's default, if any)
  void set_history_limit(const HistoryLimit& limit) { history_limit_ = limit; }
  void set_chat_options(const ChatOptions& options) { chat_options_ = options; }
  const ChatOptions& chat_options() const { return chat_options_; }
  // Adds a user turn, generates the reply, adds it to the history. On error or abort the user turn
  // is removed again, so the session stays as it was.
  //
  // With tools (chat_options().tools, shown to the model by its template) and read_tool_calls on, the reply is
  // read for calls in the template's format: text outside them streams to `callback`, each call goes to
  // `on_call` once complete, and the history keeps the turn as content plus tool_calls. With it off the calls
  // stay in the text (the RKLLM way: the application parses them).
  Expected<GenerationStats> chat(std::string_view user_message, const GenerateOptions& options,
                                 const TextCallback& callback, const ToolCallCallback& on_call = nullptr);
  // Generates the assistant's next turn for the history as it stands, e.g. after tool results were added.
  Expected<GenerationStats> respond(const GenerateOptions& options, const TextCallback& callback,
                                    const ToolCallCallback& on_call = nullptr);
  // Appends a message to the history without generating (role "tool": a result for `tool_call_id`).
  void add_message(ChatMessage message) { history_.push_back(std::move(message)); }
  void set_read_tool_calls(bool on) { read_tool_calls_ = on; }
  const std::vector<ChatMessage>& history() const { return history_; }
  void set_history(std::vector<ChatMessage> history) { history_ = std::move(history); }
  void clear_history() { history_.clear(); }

  // ---- LoRA ----
  // Runs with the model's adapter `name` ("" = none) at `scale`. Changing it invalidates the KV cache.
  // Errors: unknown name (kNotFound, listing the loaded ones), non-finite scale.
  Status set_lora(const std::string& name, float scale);
  const std::string& lora_name() const { return lora_name_; }

  // ---- control ----
  // Thread-safe: stops a running generate/prefill within one forward step (finish_reason "aborted").
  void abort() { abort_.store(true); }
  bool is_running() const { return running_.load(); }

  // ---- state ----
  const std::vector<float>& last_logits() const { return logits_; }        // [n_vocab] after the last step
  const std::vector<float>& last_hidden() const { return scratch_->hidden; }  // [n_embd], final norm applied
  // Prompt cache: the KV state of the cached tokens, bound to the model's weights digest.
  Status save_state(const std::string& path) const;
  Status load_state(const std::string& path);

 private:
  Session(std::shared_ptr<const LoadedModel> model, const SessionOptions& options, KvCache kv);
  Expected<std::vector<int32_t>> render_chat(const std::vector<ChatMessage>& messages) const;
  std::vector<ChatMessage> limited_history(int64_t reply_budget) const;
  Expected<GenerationStats> chat_turn(const GenerateOptions& options, const TextCallback& callback,
                                      const ToolCallCallback& on_call);

  std::shared_ptr<const LoadedModel> model_;
  SessionOptions options_;
  KvCache kv_;
  std::unique_ptr<ForwardScratch> scratch_;
  std::vector<int32_t> cached_;  // the tokens whose K/V are in kv_ (kv_.n_past() == cached_.size())
  std::vector<float> logits_;    // logits after the last cached token (valid when logits_valid_)
  bool logits_valid_ = false;
  std::string system_prompt_;
  std::vector<ChatMessage> history_;
  HistoryLimit history_limit_;
  ChatOptions chat_options_;
  bool read_tool_calls_ = true;
  std::shared_ptr<const LoraAdapter> lora_;  // active adapter (nullptr: none)
  std::string lora_name_;
  float lora_scale_ = 1.0f;
  std::atomic<bool> abort_{false};
  std::atomic<bool> running_{false};
};

}  // namespace edgellm
