// One generation request between the engine and the HTTP thread that answers it. The engine's callbacks
// (on the engine thread) queue tokens and the final result; the HTTP thread waits for them and writes
// them to the client. Owned by both through a shared_ptr, so either side may finish first. When the
// client goes away the HTTP side says so and the engine cancels the request at its next token.
//
// With output filters (server/input_filters.h) the tokens pass an OutputScreen on the engine's thread
// before they are queued: text that could begin a blocked phrase waits for the tokens that decide it; a
// match ends the request, and its result's finish reason becomes "content_filter" (the rule's name in
// `error`) before anything else sees it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "server/input_filters.h"

namespace edgellm::server {

struct StreamToken {
  int32_t token = -1;  // -1: text held back until the end (stop strings, partial characters)
  std::string text;
  float logprob = 0;
  std::vector<TokenLogprob> top_logprobs;
};

class RequestStream : public std::enable_shared_from_this<RequestStream> {
 public:
  // Points the request's on_token/on_done at this stream; `on_finish` (may be empty) is called on the
  // engine's thread once the result is in (metrics), whether or not anybody still reads the stream.
  // `output_filters` (may be nullptr) screens the reply when it has output rules.
  void attach(EngineRequest& request, std::function<void(const RequestResult&)> on_finish = {},
              std::shared_ptr<const InputFilters> output_filters = nullptr);

  // Called once, with the result and the text the client was sent, when the exchange is complete: on the
  // reading thread just before next() returns kDone or wait_all() returns (`client_waits`: the response's
  // end waits for it), or, when the client went away first, on whichever thread learns the end last.
  using CompleteCallback = std::function<void(const RequestResult&, const std::string& sent, bool client_waits)>;
  void on_complete(CompleteCallback callback) { on_complete_ = std::move(callback); }  // before attach()

  enum class Next { kToken, kDone, kTimeout };
  // Waits up to `timeout` for the next token (moved to *token) or the end.
  Next next(StreamToken* token, std::chrono::milliseconds timeout);
  // Waits for the end, collecting every token (a non-streaming response).
  std::vector<StreamToken> wait_all();
  // Valid after next() returned kDone or wait_all() returned.
  const RequestResult& result() const { return result_; }

  // The client has gone: the engine ends the request (finish "cancelled") at its next token.
  void client_gone();

 private:
  // Engine thread: passes a token through the screen; false when a rule matched (stop the request).
  bool screen_token(StreamToken token);
  // Engine thread: the tokens the verdict lets out (and, for a block, the safe text of the token the
  // match starts in), appended to *out.
  void release(const OutputScreen::Verdict& verdict, std::vector<StreamToken>* out);
  void push(std::vector<StreamToken> tokens);
  // Takes the completion (once) and calls on_complete_ outside the lock.
  void complete(std::unique_lock<std::mutex>& lock, bool client_waits);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamToken> tokens_;  // guarded by mu_
  std::string sent_;                // guarded by mu_: the text of every token queued for the client
  bool done_ = false;               // guarded by mu_
  bool completed_ = false;          // guarded by mu_: on_complete_ was called
  RequestResult result_;            // written once under mu_ before done_
  std::atomic<bool> client_gone_{false};
  CompleteCallback on_complete_;
  // The output screen (engine thread only): tokens not yet let out and where each ends in the screened text.
  std::unique_ptr<OutputScreen> screen_;
  std::deque<StreamToken> held_;
  std::deque<size_t> held_ends_;
  size_t released_end_ = 0;
  const BlockRule* blocked_ = nullptr;
};

}  // namespace edgellm::server
