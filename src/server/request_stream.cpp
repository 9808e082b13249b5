#include "server/request_stream.h"

namespace edgellm::server {

void RequestStream::attach(EngineRequest& request, std::function<void(const RequestResult&)> on_finish) {
  std::shared_ptr<RequestStream> self = shared_from_this();
  request.on_token = [self](const TokenEvent& e) {
    StreamToken t;
    t.token = e.token;
    t.text.assign(e.text);
    t.logprob = e.logprob;
    if (e.top_logprobs) t.top_logprobs = *e.top_logprobs;
    std::lock_guard<std::mutex> lock(self->mu_);
    self->tokens_.push_back(std::move(t));
    self->cv_.notify_all();
    return !self->client_gone_.load();
  };
  request.on_done = [self, on_finish = std::move(on_finish)](const RequestResult& r) {
    if (on_finish) on_finish(r);
    std::lock_guard<std::mutex> lock(self->mu_);
    self->result_ = r;
    self->done_ = true;
    self->cv_.notify_all();
  };
}

RequestStream::Next RequestStream::next(StreamToken* token, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !tokens_.empty() || done_; })) return Next::kTimeout;
  if (!tokens_.empty()) {
    *token = std::move(tokens_.front());
    tokens_.pop_front();
    return Next::kToken;
  }
  return Next::kDone;
}

std::vector<StreamToken> RequestStream::wait_all() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  std::vector<StreamToken> all(std::make_move_iterator(tokens_.begin()), std::make_move_iterator(tokens_.end()));
  tokens_.clear();
  return all;
}

}  // namespace edgellm::server
