// One generation request between the engine and the HTTP thread that answers it. The engine's callbacks
// (on the engine thread) queue tokens and the final result; the HTTP thread waits for them and writes
// them to the client. Owned by both through a shared_ptr, so either side may finish first. When the
// client goes away the HTTP side says so and the engine cancels the request at its next token.
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
  void attach(EngineRequest& request, std::function<void(const RequestResult&)> on_finish = {});

  enum class Next { kToken, kDone, kTimeout };
  // Waits up to `timeout` for the next token (moved to *token) or the end.
  Next next(StreamToken* token, std::chrono::milliseconds timeout);
  // Waits for the end, collecting every token (a non-streaming response).
  std::vector<StreamToken> wait_all();
  // Valid after next() returned kDone or wait_all() returned.
  const RequestResult& result() const { return result_; }

  // The client has gone: the engine ends the request (finish "cancelled") at its next token.
  void client_gone() { client_gone_.store(true); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StreamToken> tokens_;  // guarded by mu_
  bool done_ = false;               // guarded by mu_
  RequestResult result_;            // written once under mu_ before done_
  std::atomic<bool> client_gone_{false};
};

}  // namespace edgellm::server
