#include "server/request_stream.h"

namespace edgellm::server {

void RequestStream::attach(EngineRequest& request, std::function<void(const RequestResult&)> on_finish,
                           std::shared_ptr<const InputFilters> output_filters) {
  std::shared_ptr<RequestStream> self = shared_from_this();
  if (output_filters && output_filters->screens_output()) screen_ = std::make_unique<OutputScreen>(output_filters);
  request.on_token = [self](const TokenEvent& e) {
    StreamToken t;
    t.token = e.token;
    t.text.assign(e.text);
    t.logprob = e.logprob;
    if (e.top_logprobs) t.top_logprobs = *e.top_logprobs;
    if (self->screen_) return self->screen_token(std::move(t));
    std::vector<StreamToken> one;
    one.push_back(std::move(t));
    self->push(std::move(one));
    return !self->client_gone_.load();
  };
  request.on_done = [self, on_finish = std::move(on_finish)](const RequestResult& r) {
    RequestResult result = r;
    std::vector<StreamToken> last;
    if (self->screen_ && self->blocked_ == nullptr) {
      // A match that the end of the text left open (\d{13,16} after 13 digits) is decided now.
      const OutputScreen::Verdict v = self->screen_->finish();
      self->release(v, &last);
      if (v.blocked != nullptr) self->blocked_ = v.blocked;
    }
    if (self->blocked_ != nullptr) {
      result.finish_reason = "content_filter";
      result.error = self->blocked_->name;
    }
    std::unique_lock<std::mutex> lock(self->mu_);
    for (StreamToken& t : last) {
      self->sent_ += t.text;
      self->tokens_.push_back(std::move(t));
    }
    if (self->screen_) result.text = self->sent_;
    lock.unlock();
    if (on_finish) on_finish(result);
    lock.lock();
    self->result_ = std::move(result);
    self->done_ = true;
    self->cv_.notify_all();
    if (self->client_gone_.load()) self->complete(lock, /*client_waits=*/false);
  };
}

void RequestStream::push(std::vector<StreamToken> tokens) {
  if (tokens.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (StreamToken& t : tokens) {
    sent_ += t.text;
    tokens_.push_back(std::move(t));
  }
  cv_.notify_all();
}

bool RequestStream::screen_token(StreamToken token) {
  const std::string text = token.text;
  held_.push_back(std::move(token));
  const OutputScreen::Verdict v = screen_->append(text);
  held_ends_.push_back(screen_->text().size());
  std::vector<StreamToken> out;
  release(v, &out);
  push(std::move(out));
  if (v.blocked != nullptr) {
    blocked_ = v.blocked;
    return false;
  }
  return !client_gone_.load();
}

void RequestStream::release(const OutputScreen::Verdict& v, std::vector<StreamToken>* out) {
  while (!held_.empty() && held_ends_.front() <= v.safe_end) {
    released_end_ = held_ends_.front();
    out->push_back(std::move(held_.front()));
    held_.pop_front();
    held_ends_.pop_front();
  }
  if (v.blocked == nullptr) return;
  // The match starts inside the next held token: its text before the match goes out alone.
  if (v.safe_end > released_end_) {
    StreamToken piece;
    piece.text = screen_->text().substr(released_end_, v.safe_end - released_end_);
    out->push_back(std::move(piece));
    released_end_ = v.safe_end;
  }
  held_.clear();
  held_ends_.clear();
}

void RequestStream::complete(std::unique_lock<std::mutex>& lock, bool client_waits) {
  if (completed_ || !on_complete_) return;
  completed_ = true;
  const RequestResult result = result_;
  const std::string sent = sent_;
  lock.unlock();
  on_complete_(result, sent, client_waits);
  lock.lock();
}

void RequestStream::client_gone() {
  client_gone_.store(true);
  std::unique_lock<std::mutex> lock(mu_);
  if (done_) complete(lock, /*client_waits=*/false);
}

RequestStream::Next RequestStream::next(StreamToken* token, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !tokens_.empty() || done_; })) return Next::kTimeout;
  if (!tokens_.empty()) {
    *token = std::move(tokens_.front());
    tokens_.pop_front();
    return Next::kToken;
  }
  complete(lock, /*client_waits=*/true);
  return Next::kDone;
}

std::vector<StreamToken> RequestStream::wait_all() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  std::vector<StreamToken> all(std::make_move_iterator(tokens_.begin()), std::make_move_iterator(tokens_.end()));
  tokens_.clear();
  complete(lock, /*client_waits=*/true);
  return all;
}

}  // namespace edgellm::server
