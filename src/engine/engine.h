// The serving engine: many requests on one model, every step one pass over the weights for all of them.
//
//   submit() (any thread) -> bounded queue -> Scheduler (continuous batching over the KvBlockPool)
//     -> Transformer::forward_batch -> per request: Sampler -> stop tokens/strings -> callbacks
//
// One engine thread runs the steps; submit(), cancel() and stats() are thread-safe. Each accepted request
// gets its text through on_token as it is generated and exactly one on_done with its finish reason and
// statistics, both called on the engine thread (keep them short: copy the text out, signal a waiter).
// The HTTP server, the C API and the RKLLM layer all drive it through this interface.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/kv_block_pool.h"
#include "engine/scheduler.h"
#include "runtime/loaded_model.h"
#include "grammar/compiled_grammar.h"
#include "runtime/sampler.h"
#include "runtime/sampling_params.h"
#include "util/expected.h"

namespace edgellm {

struct EngineOptions {
  int max_parallel = 4;         // sequences in a step at most (--parallel)
  int64_t n_ctx = 4096;         // positions per sequence: prompt plus generated tokens (--ctx)
  DType kv_type = DType::kF16;  // f16 or q8_0 (f32 for tests)
  // KV memory for all sequences (--kv-mem). 0: enough for max_parallel full contexts, at most 3/4 of the
  // memory available after the weights; it must hold at least one full context.
  int64_t kv_mem_bytes = 0;
  int block_size = 16;          // positions per KV block: 16 or 32
  int64_t prefill_chunk = 256;  // tokens per step: prefill chunks plus the running sequences' decode tokens
  int64_t max_queue = 64;       // requests waiting for a slot; more are refused (kBusy)
  bool prefix_cache = true;     // share the KV blocks of common prompt prefixes between requests
};

// One generated token as it streams out. `text` is what became printable with it (complete UTF-8, after
// stop-string hold-back): often one piece, sometimes empty (a partial character, a possible stop string).
// At the end, held-back text is flushed as an event with token -1.
// A token's log-probability under the model (log-softmax of its raw logits, before sampling settings).
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0;
};

struct TokenEvent {
  uint64_t request_id = 0;
  int32_t token = -1;
  std::string_view text;
  uint64_t step = 0;  // the engine step that produced it (the same for every request's token of a step)
  // With EngineRequest::logprobs >= 0: the token's log-probability and the `logprobs` most likely tokens
  // (most likely first; valid during the call).
  float logprob = 0;
  const std::vector<TokenLogprob>* top_logprobs = nullptr;
};

struct RequestResult {
  uint64_t id = 0;
  // "stop" (a stop token or string), "length" (max_new_tokens), "context" (the context is full),
  // "cancelled" (cancel(), on_token returned false, or the engine shut down), "timeout", "error".
  std::string finish_reason;
  std::string error;            // what went wrong, for "error"
  std::string text;             // everything on_token delivered
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;    // prompt tokens whose K/V came from the prefix cache
  int64_t generated_tokens = 0;
  int n_preemptions = 0;        // times it was paused to free memory and recomputed
  double queue_ms = 0;          // submit -> first admitted to a step
  double ttft_ms = 0;           // submit -> first token (0 if none)
  double total_ms = 0;          // submit -> finish
};

using TokenCallback = std::function<bool(const TokenEvent&)>;  // false: stop (finish "cancelled")
using DoneCallback = std::function<void(const RequestResult&)>;

struct EngineRequest {
  std::vector<int32_t> prompt;           // token ids (BOS, chat template: the caller's)
  SamplingParams sampling;               // seed included: a request's tokens depend only on its own inputs
  int32_t max_new_tokens = 256;
  std::vector<std::string> stop_strings;
  bool ignore_stop_tokens = false;       // go on past EOS / end-of-turn (benchmarks)
  int32_t logprobs = -1;                 // -1: none; 0: each token's log-probability; k > 0: and the top k (<= 20)
  std::string lora_name;                 // a loaded adapter, "" for none; requests with different ones share steps
  float lora_scale = 1.0f;
  double timeout_seconds = 0;            // from submit to finish; 0: none
  // Output constrained to this grammar (LoadedModel::compile_grammar); finishes "stop" once it is complete.
  std::shared_ptr<const CompiledGrammar> grammar;
  TokenCallback on_token;
  DoneCallback on_done;
};

// A step as it ran, for benchmarks (EngineOptions has no effect on it).
struct StepStats {
  int n_sequences = 0;
  int64_t n_tokens = 0;         // prefill and decode tokens
  int64_t n_decode_tokens = 0;  // sequences that produced a token
  int64_t n_prefill_tokens = 0; // prompt tokens (or recomputed ones after a preemption)
  double ms = 0;
};

struct EngineStats {
  int64_t n_waiting = 0, n_running = 0;
  int64_t kv_blocks_total = 0, kv_blocks_used = 0, kv_blocks_cached = 0;
  int64_t kv_block_size = 0;
  size_t kv_bytes = 0;          // the pool's whole budget
  int64_t requests_submitted = 0, requests_finished = 0;
  int64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0;
  int64_t preemptions = 0, steps = 0;
  int64_t prefix_cache_hits = 0;  // KV blocks taken from the prefix cache
};

class Engine {
 public:
  // Sizes the KV pool (EngineOptions::kv_mem_bytes) and starts the engine thread. Errors: bad options
  // (kInvalidArgument), a budget that cannot hold one full context or more than the available memory
  // (kOutOfMemory, saying how much is needed and what to change).
  static Expected<std::unique_ptr<Engine>> create(std::shared_ptr<const LoadedModel> model,
                                                  const EngineOptions& options);
  // Stops the thread; requests still queued or running finish with "cancelled" (their on_done runs).
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns its id. Errors (the callbacks are not called then): an empty prompt or a
  // token outside the vocabulary, a prompt that leaves no room in the context, bad sampling parameters,
  // an unknown adapter (kInvalidArgument / kContextFull / kNotFound), a full queue (kBusy).
  Expected<uint64_t> submit(EngineRequest request);
  // Ends a request at the next step boundary (finish "cancelled"); nothing if it has already finished.
  void cancel(uint64_t id);
  // For a shutdown: refuses new requests from now on (kAborted) and cancels every queued or running one.
  void drain();
  // Hook called on the engine thread after every step (benchmarks), before the on_done callbacks of the
  // requests the step finished. Takes effect for the steps after the next submit.
  void set_step_observer(std::function<void(const StepStats&)> observer);

  EngineStats stats() const;
  const EngineOptions& options() const { return options_; }
  const LoadedModel& model() const { return *model_; }

 private:
  struct Request;
  Engine(std::shared_ptr<const LoadedModel> model, const EngineOptions& options, KvBlockPool pool,
         std::vector<RecurrentState> states);
  void run();
  void take_inbox(std::vector<std::unique_ptr<Request>>& inbox, std::vector<uint64_t>& cancels);
  void expire_requests();
  bool run_step(const std::function<void(const StepStats&)>& observer);
  void on_logits(Request& r, float* logits);
  // Hands a token to the request's on_token; false if that ended the request (r is gone then).
  bool emit(Request& r, const TokenEvent& event);
  // Ends a request: releases its blocks and queues its on_done for call_done_callbacks().
  void finish(Request& r, const std::string& reason, const std::string& error = {});
  void release_state(Request& r);  // gives a hybrid model's state slot back (nothing if it holds none)
  void call_done_callbacks();
  void publish_stats(bool stepped);
  void update_stats_locked();  // from the scheduler and the pool; mu_ held

  std::shared_ptr<const LoadedModel> model_;
  EngineOptions options_;
  KvBlockPool pool_;
  Scheduler scheduler_;
  // Hybrid models: one linear-attention state per sequence that can run at once, and the free ones.
  std::vector<RecurrentState> states_;
  std::vector<int> free_states_;
  std::unique_ptr<ForwardScratch> scratch_;
  std::vector<float> logits_;
  std::vector<float> raw_logits_;             // a row before sampling changes it (logprobs)
  std::vector<TokenLogprob> top_logprobs_;    // the current token's top alternatives
  uint64_t step_index_ = 0;  // engine thread only: steps run so far

  // Engine thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Request>> active_;
  std::vector<std::pair<DoneCallback, RequestResult>> done_;  // finished this iteration, not yet told

  // Shared with the submitting threads.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Request>> inbox_;  // guarded by mu_
  std::vector<uint64_t> cancels_;                // guarded by mu_
  std::function<void(const StepStats&)> step_observer_;  // guarded by mu_; copied by the engine thread
  bool stop_ = false;                            // guarded by mu_
  bool draining_ = false;                        // guarded by mu_: drain() was called
  bool cancel_all_ = false;                      // guarded by mu_: cancel every request at the next step
  int64_t n_waiting_ = 0;                        // guarded by mu_: queued in the scheduler (engine-published)
  EngineStats stats_;                            // guarded by mu_
  std::atomic<uint64_t> next_id_{1};
  std::thread thread_;
};

}  // namespace edgellm
