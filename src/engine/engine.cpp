#include "engine/engine.h"

#include <optional>

#include <algorithm>
#include <cmath>

#include "model/lora.h"
#include "runtime/stop_matcher.h"
#include "tokenizer/tokenizer.h"
#include "util/check.h"
#include "util/log.h"

namespace edgellm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string mib(size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

}  // namespace

struct Engine::Request {
  Request(uint64_t request_id, EngineRequest r, const LoadedModel& model)
      : id(request_id),
        req(std::move(r)),
        sampler(req.sampling, static_cast<int32_t>(model.config().n_vocab)),
        decoder(model.tokenizer(), /*skip_special=*/true),
        stop_matcher(req.stop_strings) {
    if (req.grammar) grammar.emplace(req.grammar);
  }

  uint64_t id;
  EngineRequest req;
  Sequence seq;
  Sampler sampler;
  StreamingDecoder decoder;
  StopMatcher stop_matcher;
  std::shared_ptr<const LoraAdapter> lora;
  std::optional<GrammarMatcher> grammar;
  float ntk_alpha = 1.0f;  // Qwen 1 dynamic NTK: the multiplier of its cached keys
  int state_slot = -1;  // hybrid models: its linear-attention state (Engine::states_) while it runs
  int64_t n_generated = 0;
  std::string text;
  bool admitted = false;
  bool has_deadline = false;
  Clock::time_point submitted, first_admitted, first_token, deadline;
};

Expected<std::unique_ptr<Engine>> Engine::create(std::shared_ptr<const LoadedModel> model,
                                                 const EngineOptions& o) {
  if (!model) return make_error(ErrorCode::kInvalidArgument, "engine: no model");
  const ModelConfig& c = model->config();

  auto bad = [](const std::string& what) { return make_error(ErrorCode::kInvalidArgument, "engine: " + what); };
  if (o.max_parallel < 1 || o.max_parallel > 256) {
    return bad("parallel sequences " + std::to_string(o.max_parallel) + " out of range [1, 256]");
  }
  if (o.n_ctx < 2 || o.n_ctx > (int64_t{1} << 22)) {
    return bad("context " + std::to_string(o.n_ctx) + " out of range [2, 4194304]");
  }
  if (o.block_size != 8 && o.block_size != 16 && o.block_size != 32 && o.block_size != 64) {
    return bad("KV block size " + std::to_string(o.block_size) + " is not 16 or 32 (8 and 64 also work)");
  }
  if (o.prefill_chunk < 1 || o.prefill_chunk > 16384) {
    return bad("prefill chunk " + std::to_string(o.prefill_chunk) + " out of range [1, 16384]");
  }
  if (o.max_queue < 1) return bad("queue length " + std::to_string(o.max_queue) + " must be at least 1");
  if (o.kv_mem_bytes < 0) return bad("KV memory must not be negative");
  if (o.kv_type != DType::kF16 && o.kv_type != DType::kQ8_0 && o.kv_type != DType::kF32) {
    return bad(std::string("KV type ") + dtype_name(o.kv_type) + " is not supported (use f16 or q8_0)");
  }
  if (o.kv_type == DType::kQ8_0 && c.head_dim % 32 != 0) {
    return bad("KV type q8_0 needs head_dim to be a multiple of 32, got " + std::to_string(c.head_dim) + " (use f16)");
  }

  const size_t block_bytes = KvBlockPool::block_bytes(c, o.block_size, o.kv_type);
  const int64_t context_blocks = (o.n_ctx + o.block_size - 1) / o.block_size;
  const size_t one_context = static_cast<size_t>(context_blocks) * block_bytes;
  const size_t all_contexts = one_context * static_cast<size_t>(o.max_parallel);
  const size_t available = available_memory_bytes();
  size_t budget = static_cast<size_t>(o.kv_mem_bytes);
  if (budget == 0) budget = available > 0 ? std::min(all_contexts, available / 4 * 3) : all_contexts;
  if (budget < one_context) {
    return make_error(ErrorCode::kOutOfMemory,
                      "engine: the KV memory of " + mib(budget) + " holds " +
                          std::to_string(budget / block_bytes * static_cast<size_t>(o.block_size)) + " positions of " +
                          dtype_name(o.kv_type) + " KV, but one context of " + std::to_string(o.n_ctx) +
                          " positions needs " + mib(one_context) +
                          (o.kv_mem_bytes == 0 ? " and only " + mib(available) + " are available" : std::string()) +
                          ": raise --kv-mem, lower --ctx, or use --kv-type q8_0");
  }
  if (available > 0 && budget > available) {
    return make_error(ErrorCode::kOutOfMemory, "engine: the KV memory of " + mib(budget) + " is more than the " +
                                                   mib(available) +
                                                   " available (MemAvailable; EDGELLM_MEM_AVAILABLE_MB overrides): "
                                                   "lower --kv-mem");
  }
  // A hybrid model's running sequences each hold a linear-attention state beside their KV blocks.
  const size_t state_bytes = RecurrentState::bytes_needed(c) * static_cast<size_t>(o.max_parallel);
  if (available > 0 && budget + state_bytes > available) {
    return make_error(ErrorCode::kOutOfMemory, "engine: the KV memory of " + mib(budget) + " and the " +
                                                   std::to_string(o.max_parallel) + " linear-attention states of " +
                                                   mib(state_bytes) + " are more than the " + mib(available) +
                                                   " available: lower --kv-mem or --parallel");
  }
  const int64_t n_blocks = static_cast<int64_t>(budget / block_bytes);
  std::vector<RecurrentState> states;
  for (int i = 0; c.hybrid() && i < o.max_parallel; ++i) {
    EDGELLM_ASSIGN_OR_RETURN(RecurrentState state, RecurrentState::create(c));
    states.push_back(std::move(state));
  }
  EDGELLM_ASSIGN_OR_RETURN(KvBlockPool pool, KvBlockPool::create(c, n_blocks, o.block_size, o.kv_type));
  EDGELLM_LOG_INFO("engine: %d parallel, context %lld, KV %s %s in %lld blocks of %d positions (%lld positions), "
                   "step %lld tokens%s",
                   o.max_parallel, static_cast<long long>(o.n_ctx), dtype_name(o.kv_type),
                   mib(pool.size_bytes()).c_str(), static_cast<long long>(n_blocks), o.block_size,
                   static_cast<long long>(n_blocks * o.block_size),
                   static_cast<long long>(std::max<int64_t>(o.prefill_chunk, o.max_parallel)),
                   c.hybrid() ? (", linear-attention states " + mib(state_bytes) + ", no prefix cache").c_str() : "");
  return std::unique_ptr<Engine>(new Engine(std::move(model), o, std::move(pool), std::move(states)));
}

namespace {

SchedulerOptions scheduler_options(const EngineOptions& o, const ModelConfig& c) {
  SchedulerOptions s;
  s.max_parallel = o.max_parallel;
  s.step_tokens = std::max<int64_t>(o.prefill_chunk, o.max_parallel);
  // Qwen 1's dynamic NTK rotates keys by a multiplier that depends on the sequence length beyond the
  // training context, so equal prefixes can hold different keys there: no sharing then.
  s.prefix_cache = o.prefix_cache && !(c.dynamic_ntk && o.n_ctx > c.n_ctx_train);
  // A hybrid model's linear-attention state at a block boundary is not kept (docs/serving.md): a cached
  // block's keys alone cannot resume a sequence, so nothing is shared.
  s.prefix_cache = s.prefix_cache && !c.hybrid();
  return s;
}

}  // namespace

Engine::Engine(std::shared_ptr<const LoadedModel> model, const EngineOptions& options, KvBlockPool pool,
               std::vector<RecurrentState> states)
    : model_(std::move(model)),
      options_(options),
      pool_(std::move(pool)),
      scheduler_(pool_, scheduler_options(options_, model_->config())),
      states_(std::move(states)) {
  for (int i = static_cast<int>(states_.size()) - 1; i >= 0; --i) free_states_.push_back(i);
  const ModelConfig& c = model_->config();
  const int64_t step_tokens = std::max<int64_t>(options_.prefill_chunk, options_.max_parallel);
  scratch_ = std::make_unique<ForwardScratch>(c, step_tokens, options_.n_ctx, model_->pool().n_threads());
  logits_.resize(static_cast<size_t>(options_.max_parallel * c.n_vocab));
  stats_.kv_blocks_total = pool_.n_blocks();
  stats_.kv_block_size = pool_.block_size();
  stats_.kv_bytes = pool_.size_bytes();
  thread_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::set_step_observer(std::function<void(const StepStats&)> observer) {
  std::lock_guard<std::mutex> lock(mu_);
  step_observer_ = std::move(observer);
}

Expected<uint64_t> Engine::submit(EngineRequest request) {
  const ModelConfig& c = model_->config();
  const int64_t n_prompt = static_cast<int64_t>(request.prompt.size());
  if (n_prompt == 0) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  for (int64_t i = 0; i < n_prompt; ++i) {
    const int32_t t = request.prompt[static_cast<size_t>(i)];
    if (t < 0 || t >= c.n_vocab) {
      return make_error(ErrorCode::kInvalidArgument, "prompt token " + std::to_string(t) + " at index " +
                                                         std::to_string(i) + " is outside the vocabulary [0, " +
                                                         std::to_string(c.n_vocab) + ")");
    }
  }
  if (n_prompt >= options_.n_ctx) {
    return make_error(ErrorCode::kContextFull, "the prompt has " + std::to_string(n_prompt) +
                                                   " tokens; the context holds " + std::to_string(options_.n_ctx) +
                                                   " positions, prompt and reply together");
  }
  EDGELLM_TRY(request.sampling.validate(static_cast<int32_t>(c.n_vocab)));
  if (request.max_new_tokens < 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "max_new_tokens must be >= 0, got " + std::to_string(request.max_new_tokens));
  }
  if (!std::isfinite(request.timeout_seconds) || request.timeout_seconds < 0) {
    return make_error(ErrorCode::kInvalidArgument, "timeout must be a finite number of seconds >= 0");
  }
  if (!std::isfinite(request.lora_scale)) return make_error(ErrorCode::kInvalidArgument, "LoRA scale must be finite");
  if (request.logprobs < -1 || request.logprobs > 20) {
    return make_error(ErrorCode::kInvalidArgument,
                      "logprobs must be between 0 and 20 (or -1 for none), got " + std::to_string(request.logprobs));
  }
  std::shared_ptr<const LoraAdapter> lora;
  if (!request.lora_name.empty()) {
    lora = model_->find_lora(request.lora_name);
    if (!lora) {
      std::string known;
      for (const auto& n : model_->lora_names()) known += (known.empty() ? "" : ", ") + n;
      return make_error(ErrorCode::kNotFound, "no LoRA adapter named '" + request.lora_name + "' is loaded" +
                                                  (known.empty() ? std::string(" (none are)") : " (loaded: " + known + ")"));
    }
  }

  const uint64_t id = next_id_.fetch_add(1);
  auto r = std::make_unique<Request>(id, std::move(request), *model_);
  r->lora = std::move(lora);
  r->seq.id = id;
  r->seq.tokens = r->req.prompt;
  r->seq.n_prompt = n_prompt;
  if (r->lora) {
    char scale[32];
    std::snprintf(scale, sizeof scale, "%a", static_cast<double>(r->req.lora_scale));
    r->seq.cache_salt = "lora:" + r->req.lora_name + "@" + scale;
  }
  for (int32_t t : r->seq.tokens) r->sampler.accept(t);
  r->submitted = Clock::now();
  if (r->req.timeout_seconds > 0) {
    r->has_deadline = true;
    r->deadline = r->submitted + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(r->req.timeout_seconds));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || draining_) return make_error(ErrorCode::kAborted, "the engine is shutting down");
    const int64_t queued = static_cast<int64_t>(inbox_.size()) + n_waiting_;
    if (queued >= options_.max_queue) {
      return make_error(ErrorCode::kBusy, "the queue is full (" + std::to_string(queued) +
                                              " requests waiting for a slot); try again later");
    }
    inbox_.push_back(std::move(r));
    ++stats_.requests_submitted;
  }
  wake_.notify_one();
  return id;
}

void Engine::drain() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    cancel_all_ = true;
  }
  wake_.notify_one();
}

void Engine::cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  wake_.notify_one();
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::run() {
  std::vector<std::unique_ptr<Request>> inbox;
  std::vector<uint64_t> cancels;
  std::function<void(const StepStats&)> step_observer;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] {
        return stop_ || cancel_all_ || !inbox_.empty() || !cancels_.empty() || !active_.empty();
      });
      if (stop_) break;
      inbox.swap(inbox_);
      // They move from the inbox to the scheduler's queue: still counted against max_queue until the
      // statistics are published after the step.
      n_waiting_ += static_cast<int64_t>(inbox.size());
      cancels.swap(cancels_);
      if (cancel_all_) {
        for (const auto& r : inbox) cancels.push_back(r->id);
        for (const auto& [id, r] : active_) cancels.push_back(id);
        cancel_all_ = false;
      }
      step_observer = step_observer_;
    }
    take_inbox(inbox, cancels);
    expire_requests();
    const bool ran = run_step(step_observer);
    publish_stats(ran);
    call_done_callbacks();
    if (!ran && !active_.empty()) {
      // Nothing could run (it cannot happen with a pool that holds one context); do not spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    inbox.swap(inbox_);
    cancels_.clear();
  }
  take_inbox(inbox, cancels);
  std::vector<uint64_t> ids;
  for (const auto& [id, r] : active_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint64_t id : ids) finish(*active_.at(id), "cancelled");
  publish_stats(false);
  call_done_callbacks();
}

void Engine::take_inbox(std::vector<std::unique_ptr<Request>>& inbox, std::vector<uint64_t>& cancels) {
  for (auto& r : inbox) {
    Request* p = r.get();
    active_.emplace(p->id, std::move(r));
    scheduler_.add(&p->seq);
  }
  inbox.clear();
  for (uint64_t id : cancels) {
    const auto it = active_.find(id);
    if (it != active_.end()) finish(*it->second, "cancelled");
  }
  cancels.clear();
}

void Engine::expire_requests() {
  const Clock::time_point now = Clock::now();
  std::vector<uint64_t> expired;
  for (const auto& [id, r] : active_) {
    if (r->has_deadline && now >= r->deadline) expired.push_back(id);
  }
  std::sort(expired.begin(), expired.end());
  for (uint64_t id : expired) finish(*active_.at(id), "timeout");
}

bool Engine::run_step(const std::function<void(const StepStats&)>& observer) {
  const Clock::time_point start = Clock::now();
  std::vector<Sequence*> preempted;
  const std::vector<ScheduledChunk> plan = scheduler_.schedule(&preempted);
  for (Sequence* p : preempted) release_state(*active_.at(p->id));  // it restarts from position 0
  {
    // The queue as admission left it, before any of this step's callbacks can wake a submitter.
    std::lock_guard<std::mutex> lock(mu_);
    n_waiting_ = static_cast<int64_t>(scheduler_.waiting().size());
  }
  if (plan.empty()) return false;
  ++step_index_;
  const ModelConfig& c = model_->config();
  const int64_t V = c.n_vocab;
  std::vector<BatchSequence> batch;
  std::vector<Request*> requests;
  batch.reserve(plan.size());
  requests.reserve(plan.size());
  StepStats step;
  int64_t n_rows = 0;
  for (const ScheduledChunk& chunk : plan) {
    Request& r = *active_.at(chunk.seq->id);
    if (!r.admitted) {
      r.admitted = true;
      r.first_admitted = start;
    }
    const Sequence& s = r.seq;
    BatchSequence q;
    q.tokens = s.tokens.data() + s.n_computed;
    q.n_tokens = chunk.n_tokens;
    q.pos0 = s.n_computed;
    q.block_table = s.blocks.data();
    q.block_table_len = static_cast<int64_t>(s.blocks.size());
    q.logits = chunk.wants_logits ? LogitsMode::kLast : LogitsMode::kNone;
    q.lora = ActiveLora{r.lora.get(), r.req.lora_scale};
    if (c.dynamic_ntk && (chunk.n_tokens > 1 || s.n_computed == 0)) {
      r.ntk_alpha = qwen_ntk_alpha(s.n_computed + chunk.n_tokens, c.n_ctx_train);
    }
    q.ntk_alpha = r.ntk_alpha;
    if (c.hybrid()) {
      if (r.state_slot < 0) {
        // Only running sequences hold a slot, and at most max_parallel run.
        EDGELLM_CHECK(!free_states_.empty());
        r.state_slot = free_states_.back();
        free_states_.pop_back();
      }
      RecurrentState& state = states_[static_cast<size_t>(r.state_slot)];
      if (s.n_computed == 0) state.clear();  // its first step, or recomputed after a preemption
      q.state = &state;
    }
    batch.push_back(q);
    requests.push_back(&r);
    n_rows += chunk.wants_logits;
    step.n_tokens += chunk.n_tokens;
    const bool decoding = chunk.n_tokens == 1 && s.n_computed >= s.n_prompt && r.n_generated > 0;
    (decoding ? step.n_decode_tokens : step.n_prefill_tokens) += chunk.n_tokens;
  }
  if (logits_.size() < static_cast<size_t>(n_rows * V)) logits_.resize(static_cast<size_t>(n_rows * V));
  const Status st = model_->transformer().forward_batch(batch.data(), static_cast<int>(batch.size()), pool_.cache(),
                                                        pool_.block_shift(), *scratch_, model_->pool(), logits_.data());
  if (!st.ok()) {
    EDGELLM_LOG_ERROR("engine: a step of %zu sequences failed: %s", plan.size(), st.error().message.c_str());
    for (Request* r : requests) finish(*r, "error", st.error().message);
    return true;
  }
  scheduler_.step_done(plan);
  int64_t row = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!plan[i].wants_logits) continue;
    on_logits(*requests[i], &logits_[static_cast<size_t>(row++ * V)]);
  }
  step.n_sequences = static_cast<int>(plan.size());
  step.ms = ms_between(start, Clock::now());
  if (observer) observer(step);
  return true;
}

void Engine::on_logits(Request& r, float* logits) {
  if (r.n_generated >= r.req.max_new_tokens) {
    finish(r, "length");
    return;
  }
  const int64_t V = model_->config().n_vocab;
  if (r.grammar) r.grammar->mask_logits(logits, V);
  float log_normalizer = 0;
  if (r.req.logprobs >= 0) {
    // log p = logit - log(sum exp(logits)), from the row as the model gave it (sampling rewrites it).
    raw_logits_.assign(logits, logits + V);
    const float max_logit = *std::max_element(logits, logits + V);
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i] - max_logit));
    log_normalizer = max_logit + static_cast<float>(std::log(sum));
    top_logprobs_.clear();
    if (r.req.logprobs > 0) {
      std::vector<int32_t> ids(static_cast<size_t>(V));
      for (int64_t i = 0; i < V; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      const auto k = static_cast<std::ptrdiff_t>(std::min<int64_t>(r.req.logprobs, V));
      std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
      });
      for (std::ptrdiff_t i = 0; i < k; ++i) top_logprobs_.push_back({ids[static_cast<size_t>(i)], logits[ids[static_cast<size_t>(i)]] - log_normalizer});
    }
  }
  const int32_t token = r.sampler.sample(logits);
  if (token == Sampler::kNoToken) {
    finish(r, "error", r.grammar ? kGrammarDeadEnd : "sampling found no token with a finite logit (broken logits)");
    return;
  }
  const auto& stop_ids = model_->stop_token_ids();
  if (!r.req.ignore_stop_tokens && std::binary_search(stop_ids.begin(), stop_ids.end(), token)) {
    finish(r, "stop");
    return;
  }
  if (r.grammar) {
    const Status st = r.grammar->accept(token);
    if (!st.ok()) {
      finish(r, "error", st.error().message);
      return;
    }
  }
  if (r.n_generated++ == 0) r.first_token = Clock::now();
  r.seq.tokens.push_back(token);
  r.sampler.accept(token);
  const StopMatcher::Result m = r.stop_matcher.push(r.decoder.push(token));
  TokenEvent event{r.id, token, m.emit, step_index_};
  if (r.req.logprobs >= 0) {
    event.logprob = raw_logits_[static_cast<size_t>(token)] - log_normalizer;
    event.top_logprobs = &top_logprobs_;
  }
  if (!emit(r, event)) return;  // finished inside
  if (m.stopped || (r.grammar && r.grammar->must_finish())) {
    finish(r, "stop");
    return;
  }
  if (r.n_generated >= r.req.max_new_tokens) {
    finish(r, "length");
    return;
  }
  if (static_cast<int64_t>(r.seq.tokens.size()) > options_.n_ctx) finish(r, "context");
}

bool Engine::emit(Request& r, const TokenEvent& event) {
  r.text += event.text;
  if (!r.req.on_token) return true;
  bool go_on = false;
  try {
    go_on = r.req.on_token(event);
  } catch (const std::exception& e) {
    finish(r, "error", std::string("the token callback threw: ") + e.what());
    return false;
  } catch (...) {
    finish(r, "error", "the token callback threw");
    return false;
  }
  if (!go_on) finish(r, "cancelled");
  return go_on;
}

void Engine::release_state(Request& r) {
  if (r.state_slot < 0) return;
  free_states_.push_back(r.state_slot);
  r.state_slot = -1;
}

void Engine::finish(Request& r, const std::string& reason, const std::string& error) {
  // What the stop matcher and the decoder still hold is the end of the text, unless a stop string ended it
  // (everything from it on is dropped) or the client asked to stop.
  if (reason == "stop" || reason == "length" || reason == "context" || reason == "timeout") {
    if (!r.stop_matcher.stopped()) {
      std::string rest = r.stop_matcher.push(r.decoder.flush()).emit;
      rest += r.stop_matcher.flush();
      if (!rest.empty()) {
        r.text += rest;
        if (r.req.on_token) {
          try {
            r.req.on_token(TokenEvent{r.id, -1, rest, step_index_});
          } catch (...) {
            // The request is ending anyway.
          }
        }
      }
    }
  }
  scheduler_.remove(&r.seq);
  release_state(r);
  const Clock::time_point now = Clock::now();
  RequestResult res;
  res.id = r.id;
  res.finish_reason = reason;
  res.error = error;
  res.text = std::move(r.text);
  res.prompt_tokens = r.seq.n_prompt;
  res.cached_tokens = std::max<int64_t>(0, r.seq.n_cached_tokens);
  res.generated_tokens = r.n_generated;
  res.n_preemptions = r.seq.n_preemptions;
  res.queue_ms = ms_between(r.submitted, r.admitted ? r.first_admitted : now);
  res.ttft_ms = r.n_generated > 0 ? ms_between(r.submitted, r.first_token) : 0.0;
  res.total_ms = ms_between(r.submitted, now);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.requests_finished;
    stats_.prompt_tokens += res.prompt_tokens;
    stats_.cached_prompt_tokens += res.cached_tokens;
    stats_.generated_tokens += res.generated_tokens;
    update_stats_locked();  // its blocks are back before its on_done runs
  }
  if (r.req.on_done) done_.emplace_back(std::move(r.req.on_done), std::move(res));
  active_.erase(r.id);  // r is gone from here on
}

void Engine::call_done_callbacks() {
  // After the step and its statistics: a caller woken by on_done finds the engine's state settled.
  for (auto& [done, res] : done_) {
    try {
      done(res);
    } catch (...) {
      EDGELLM_LOG_WARN("engine: the done callback of request %llu threw", static_cast<unsigned long long>(res.id));
    }
  }
  done_.clear();
}

void Engine::publish_stats(bool stepped) {
  std::lock_guard<std::mutex> lock(mu_);
  update_stats_locked();
  stats_.steps += stepped;
}

void Engine::update_stats_locked() {
  n_waiting_ = static_cast<int64_t>(scheduler_.waiting().size());
  stats_.n_waiting = n_waiting_ + static_cast<int64_t>(inbox_.size());
  stats_.n_running = static_cast<int64_t>(scheduler_.running().size());
  stats_.kv_blocks_used = pool_.n_used();
  stats_.kv_blocks_cached = pool_.n_cached();
  stats_.preemptions = scheduler_.n_preemptions();
  stats_.prefix_cache_hits = pool_.n_hits();
}

}  // namespace edgellm
