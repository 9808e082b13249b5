// n_batch > 1: an RKLLM handle's sequences run together through edgellm's serving engine
// (edgellm_engine_*): each rkllm_run takes an array of n_batch inputs, every step of the engine reads the
// weights once for all of them, and the callback receives an array of n_batch results per step, as the
// vendor runtime sends it (rkllm-api.md §3): a sequence that produced a token in the step has its text
// and token id, one that has finished has token_id -1 and text NULL, and one still reading its prompt has
// token_id -1 and text "". FINISH comes once all have ended, with each sequence's figures in its perf.
// Each sequence keeps its own conversation for keep_history; the engine's prefix cache makes the
// re-sent earlier turns cost nothing to recompute while their KV blocks are cached.
#include <sys/resource.h>

#include <chrono>
#include <condition_variable>
#include <deque>

#include "rkllm/rkllm_handle.h"

namespace rkllm_compat {
namespace {

// What the engine said about one sequence, queued for the thread that runs rkllm_run.
struct Event {
  int slot = 0;
  edgellm_event type = EDGELLM_EVENT_TEXT;
  std::string text;
  int32_t token = -1;
  uint64_t step = 0;
  edgellm_request_stats stats{};
  std::string finish_reason;
};

struct EventQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;  // guarded by mu
};

struct SlotRelay {
  EventQueue* queue;
  int slot;
};

// Engine thread: queue the event; the run's thread talks to the application.
int32_t relay_event(const edgellm_request_event* e, void* user_data) {
  auto* relay = static_cast<SlotRelay*>(user_data);
  Event ev;
  ev.slot = relay->slot;
  ev.type = e->type;
  ev.text.assign(e->text, e->text_len);
  ev.token = e->token;
  ev.step = e->step;
  if (e->stats) {
    ev.stats = *e->stats;
    ev.finish_reason = e->stats->finish_reason;
  }
  // Notified under the lock: once the run's thread has seen the last event it frees the relay and the
  // queue, so nothing of them may be touched after the unlock.
  EventQueue* queue = relay->queue;
  std::lock_guard<std::mutex> lock(queue->mu);
  queue->events.push_back(std::move(ev));
  queue->cv.notify_one();
  return 0;
}

float peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<float>(usage.ru_maxrss) / 1024.0f;  // Linux: kilobytes
}

std::string without_nul(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\0'), s.end());
  return s;
}

}  // namespace

int init_batch(Handle& h, const RKLLMParam& param) {
  edgellm_engine_params ep = edgellm_engine_default_params();
  ep.max_parallel = h.n_batch;
  ep.n_ctx = param.max_context_len;
  ep.max_queue = h.n_batch;
  if (edgellm_engine_create(h.model, &ep, &h.engine) != EDGELLM_OK) {
    return fail(thread_error_slot(), std::string("rkllm_init: n_batch ") + std::to_string(h.n_batch) + ": " +
                                         edgellm_model_last_error(h.model));
  }
  h.slots.assign(static_cast<size_t>(h.n_batch), BatchSlot{});
  return kOk;
}

void abort_batch(Handle& h) {
  std::lock_guard<std::mutex> lock(h.batch_mu);
  if (!h.running.load()) return;
  h.aborted_run = h.run_id;  // this run only, even if it has not submitted its requests yet
  for (uint64_t id : h.batch_requests) edgellm_engine_cancel(h.engine, id);
}

int clear_batch(Handle& h, int keep_system_prompt, const int* start_pos, const int* end_pos) {
  (void)keep_system_prompt;  // the engine's prefix cache keeps a shared system prompt's blocks anyway
  if (start_pos == nullptr) {
    for (BatchSlot& slot : h.slots) slot = BatchSlot{};
    return kOk;
  }
  for (int i = 0; i < h.n_batch; ++i) {
    if (start_pos[i] >= end_pos[i]) continue;  // the vendor skips ranges with start >= end
    if (start_pos[i] != 0) {
      return fail(h.last_error, "rkllm_clear_kv_cache: sequence " + std::to_string(i) + ": range [" +
                                    std::to_string(start_pos[i]) + ", " + std::to_string(end_pos[i]) +
                                    ") is not supported with n_batch > 1: only a whole sequence (start 0)");
    }
  }
  for (int i = 0; i < h.n_batch; ++i) {
    if (start_pos[i] < end_pos[i]) h.slots[static_cast<size_t>(i)] = BatchSlot{};
  }
  return kOk;
}

int run_batch_request(Handle& h, const RunRequest& r) {
  void* userdata = r.userdata ? r.userdata : h.callbacks.result_userdata;
  const edgellm_generate_params gp = generate_params_of(h, r);
  const size_t n = static_cast<size_t>(h.n_batch);
  uint64_t this_run = 0;
  {
    std::lock_guard<std::mutex> lock(h.batch_mu);
    this_run = h.run_id;
  }
  EventQueue queue;
  std::vector<SlotRelay> relays(n);
  std::vector<std::string> custom_texts(n);  // custom template: the text each sequence was given
  std::vector<uint64_t> ids;

  // Cancels what was submitted and waits for their ends (the engine reports each exactly once).
  auto cancel_submitted = [&]() {
    {
      std::lock_guard<std::mutex> lock(h.batch_mu);
      for (uint64_t id : ids) edgellm_engine_cancel(h.engine, id);
    }
    size_t ended = 0;
    std::unique_lock<std::mutex> lock(queue.mu);
    while (ended < ids.size()) {
      queue.cv.wait(lock, [&] { return !queue.events.empty(); });
      while (!queue.events.empty()) {
        ended += queue.events.front().type != EDGELLM_EVENT_TEXT;
        queue.events.pop_front();
      }
    }
  };

  for (size_t i = 0; i < n; ++i) {
    const RunInput& in = r.inputs[i];
    BatchSlot& slot = h.slots[i];
    relays[i] = SlotRelay{&queue, static_cast<int>(i)};
    edgellm_request req{};
    req.params = gp;
    req.enable_thinking = in.enable_thinking ? 1 : 0;
    std::vector<edgellm_chat_message> messages;
    if (in.input_type == RKLLM_INPUT_TOKEN) {
      req.tokens = in.tokens.data();
      req.n_tokens = in.tokens.size();
    } else if (h.custom_template) {
      const std::string& before = r.keep_history && !slot.transcript.empty() ? slot.transcript : h.system_prompt;
      custom_texts[i] = before + h.prompt_prefix + in.prompt + h.prompt_postfix;
      req.prompt = custom_texts[i].c_str();
      req.params.allow_special = 1;  // the prefix and postfix hold the template's special tokens
    } else {
      if (r.keep_history) {
        for (const auto& [role, content] : slot.history) messages.push_back({role.c_str(), content.c_str()});
      }
      messages.push_back({"user", in.prompt.c_str()});
      req.messages = messages.data();
      req.n_messages = static_cast<int32_t>(messages.size());
    }
    uint64_t id = 0;
    if (edgellm_engine_submit(h.engine, &req, relay_event, &relays[i], &id) != EDGELLM_OK) {
      const std::string message = "rkllm_run: input " + std::to_string(i) + ": " + edgellm_engine_last_error(h.engine);
      cancel_submitted();
      {
        std::lock_guard<std::mutex> lock(h.batch_mu);
        h.batch_requests.clear();
      }
      return report_error(h, userdata, message);
    }
    ids.push_back(id);
    std::lock_guard<std::mutex> lock(h.batch_mu);
    h.batch_requests = ids;
    if (h.aborted_run == this_run) edgellm_engine_cancel(h.engine, id);  // rkllm_abort came while submitting
  }

  // Per sequence: what this step gave it, whether it has ended, and its reply and figures.
  std::vector<std::string> step_text(n), replies(n);
  std::vector<int32_t> step_token(n, -1);
  std::vector<bool> has_step(n, false), ended(n, false);
  std::vector<int> delivered_tokens(n, 0);
  std::vector<Event> finals(n);
  uint64_t current_step = 0;
  size_t n_ended = 0;
  bool stopped = false;  // the application returned 1 (pause) or another stop value
  std::string error;

  auto flush_step = [&]() {
    if (std::none_of(has_step.begin(), has_step.end(), [](bool b) { return b; })) return;
    std::vector<RKLLMResult> results(n);
    for (size_t i = 0; i < n; ++i) {
      results[i] = RKLLMResult{};
      if (has_step[i]) {
        results[i].text = step_text[i].c_str();
        results[i].token_id = step_token[i];
      } else {
        results[i].text = ended[i] ? nullptr : "";
        results[i].token_id = -1;
      }
    }
    const int answer = deliver(h, results.data(), userdata, RKLLM_RUN_NORMAL);
    if (answer != 0 && answer != 2 && !stopped) {
      stopped = true;
      std::lock_guard<std::mutex> lock(h.batch_mu);
      for (uint64_t id : h.batch_requests) edgellm_engine_cancel(h.engine, id);
    }
    std::fill(has_step.begin(), has_step.end(), false);
    for (auto& t : step_text) t.clear();
    std::fill(step_token.begin(), step_token.end(), -1);
  };

  while (n_ended < n) {
    Event ev;
    {
      std::unique_lock<std::mutex> lock(queue.mu);
      queue.cv.wait(lock, [&] { return !queue.events.empty(); });
      ev = std::move(queue.events.front());
      queue.events.pop_front();
    }
    const size_t i = static_cast<size_t>(ev.slot);
    if (!stopped) {
      std::lock_guard<std::mutex> lock(h.batch_mu);
      stopped = h.aborted_run == this_run;
    }
    if (ev.type == EDGELLM_EVENT_TEXT) {
      // After a stop (the callback's 1, rkllm_abort) the engine may still have produced a few tokens
      // before it saw the cancel; the application never sees them.
      if (stopped) continue;
      if (ev.step != current_step) {
        flush_step();
        current_step = ev.step;
      }
      const std::string piece = without_nul(ev.text);
      step_text[i] += piece;
      replies[i] += piece;
      if (ev.token >= 0) {
        step_token[i] = ev.token;
        ++delivered_tokens[i];
      }
      has_step[i] = true;
    } else {
      ended[i] = true;
      ++n_ended;
      if (ev.type == EDGELLM_EVENT_ERROR && error.empty()) error = "rkllm_run: input " + std::to_string(i) + ": " + ev.text;
      finals[i] = std::move(ev);
    }
    // Every sequence still running has spoken in this step: no need to wait for the next one.
    bool step_complete = true;
    for (size_t j = 0; j < n; ++j) step_complete = step_complete && (ended[j] || has_step[j]);
    if (step_complete) flush_step();
  }
  flush_step();
  {
    std::lock_guard<std::mutex> lock(h.batch_mu);
    h.batch_requests.clear();
  }
  if (!error.empty()) return report_error(h, userdata, error);

  // The conversations as the next run sees them.
  for (size_t i = 0; i < n; ++i) {
    BatchSlot& slot = h.slots[i];
    const RunInput& in = r.inputs[i];
    const edgellm_request_stats& st = finals[i].stats;
    if (!r.keep_history || in.input_type == RKLLM_INPUT_TOKEN) {
      slot = BatchSlot{};
      continue;
    }
    if (h.custom_template) {
      slot.transcript = custom_texts[i] + replies[i];
    } else {
      slot.history.emplace_back("user", in.prompt);
      slot.history.emplace_back("assistant", replies[i]);
    }
    slot.kv_tokens = static_cast<int>(st.prompt_tokens + delivered_tokens[i]);
  }

  std::vector<RKLLMResult> results(n);
  const float rss = peak_rss_mb();
  for (size_t i = 0; i < n; ++i) {
    const edgellm_request_stats& st = finals[i].stats;
    results[i] = RKLLMResult{};
    results[i].text = nullptr;
    results[i].token_id = -1;
    results[i].perf.prefill_tokens = static_cast<int>(st.prompt_tokens - st.cached_tokens);
    results[i].perf.prefill_time_ms = static_cast<float>(st.ttft_ms);
    results[i].perf.generate_tokens = delivered_tokens[i];
    results[i].perf.generate_time_ms = static_cast<float>(st.generated_tokens > 0 ? st.total_ms - st.ttft_ms : 0.0);
    results[i].perf.memory_usage_mb = rss;
    if (h.log_level >= 1) {
      std::fprintf(stderr, "I RKLLM: sequence %zu: %s, prefill %d tokens (%lld cached), first token %.1f ms, "
                   "generate %d tokens %.1f ms, peak %.1f MB\n",
                   i, finals[i].finish_reason.c_str(), results[i].perf.prefill_tokens,
                   static_cast<long long>(st.cached_tokens), results[i].perf.prefill_time_ms,
                   results[i].perf.generate_tokens, results[i].perf.generate_time_ms, rss);
    }
  }
  deliver(h, results.data(), userdata, RKLLM_RUN_FINISH);
  return kOk;
}

}  // namespace rkllm_compat
