#include "server/rate_limits.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

namespace edgellm::server {
namespace {

// Idle client addresses are forgotten once there are this many (a client rotating addresses cannot grow
// the table without bound).
constexpr size_t kMaxIdleAddresses = 4096;

std::string rate_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

void TokenBucket::refill(RateClock::time_point now) {
  if (now > last_) {
    level_ = std::min(capacity_, level_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
}

bool TokenBucket::take(double n, RateClock::time_point now, double* wait_seconds) {
  refill(now);
  if (level_ >= n) {
    level_ -= n;
    return true;
  }
  *wait_seconds = (n - level_) / rate_;
  return false;
}

bool TokenBucket::positive(RateClock::time_point now, double* wait_seconds) {
  refill(now);
  if (level_ > 0) return true;
  // Strictly above zero: a hair past the moment it reaches it.
  *wait_seconds = -level_ / rate_ + 1e-3;
  return false;
}

void TokenBucket::charge(double n, RateClock::time_point now) {
  refill(now);
  level_ -= n;
}

bool TokenBucket::full(RateClock::time_point now) {
  refill(now);
  return level_ >= capacity_;
}

RateLease::~RateLease() {
  if (!finished_) finish(0);
}

void RateLease::finish(int64_t tokens, RateClock::time_point now) {
  if (finished_) return;
  finished_ = true;
  limiter_->release(key_, address_, tokens, now);
}

RateLimiter::State& RateLimiter::state(std::unordered_map<std::string, State>& map, const std::string& id,
                                       const RateLimit& limit, RateClock::time_point now) {
  auto [it, inserted] = map.try_emplace(id);
  if (inserted) {
    if (limit.requests_per_second > 0) {
      const double burst = limit.burst > 0 ? limit.burst : std::max(1.0, limit.requests_per_second);
      it->second.requests = std::make_unique<TokenBucket>(burst, limit.requests_per_second, now);
    }
    if (limit.tokens_per_minute > 0) {
      it->second.tokens = std::make_unique<TokenBucket>(limit.tokens_per_minute, limit.tokens_per_minute / 60.0, now);
    }
  }
  return it->second;
}

std::shared_ptr<RateLease> RateLimiter::admit(const std::string& key, const std::string& address,
                                              RateClock::time_point now, Refusal* refusal) {
  std::lock_guard<std::mutex> lock(mu_);
  if (addresses_.size() > kMaxIdleAddresses) forget_idle(now);
  struct Scope {
    const char* name;
    std::string who;
    const RateLimit* limit;
    State* state;
  };
  Scope scopes[2];
  int n_scopes = 0;
  if (!key.empty() && limits_.per_key.any()) {
    scopes[n_scopes++] = {"key", "key '" + key + "'", &limits_.per_key, &state(keys_, key, limits_.per_key, now)};
  }
  if (limits_.per_address.any()) {
    scopes[n_scopes++] = {"address", "address " + address, &limits_.per_address,
                          &state(addresses_, address, limits_.per_address, now)};
  }
  const auto refuse = [&](const Scope& s, const char* limit, double wait, std::string what) {
    refusal->scope = s.name;
    refusal->limit = limit;
    refusal->retry_after_seconds = wait;
    refusal->message = "rate limit: " + s.who + " " + what;
    return nullptr;
  };
  // Every limit is checked before any bucket is taken from, so a refused request costs nothing.
  for (const Scope& s : std::span(scopes, static_cast<size_t>(n_scopes))) {
    if (s.limit->concurrent > 0 && s.state->running >= s.limit->concurrent) {
      return refuse(s, "concurrent", 1.0,
                    "already has " + std::to_string(s.state->running) + " requests running (at most " +
                        std::to_string(s.limit->concurrent) + " at once)");
    }
    double wait = 0;
    if (s.state->tokens && !s.state->tokens->positive(now, &wait)) {
      return refuse(s, "tokens", wait,
                    "has used its " + rate_text(s.limit->tokens_per_minute) + " generated tokens per minute");
    }
    if (s.state->requests) {
      // take() only to learn the wait; it takes nothing when it refuses.
      TokenBucket probe = *s.state->requests;
      if (!probe.take(1, now, &wait)) {
        const double burst = s.limit->burst > 0 ? s.limit->burst : std::max(1.0, s.limit->requests_per_second);
        return refuse(s, "requests", wait,
                      "may send " + rate_text(s.limit->requests_per_second) + " requests per second (burst " +
                          rate_text(burst) + ")");
      }
    }
  }
  for (const Scope& s : std::span(scopes, static_cast<size_t>(n_scopes))) {
    double unused = 0;
    if (s.state->requests) s.state->requests->take(1, now, &unused);
    ++s.state->running;
  }
  const bool key_scope = !key.empty() && limits_.per_key.any();
  return std::make_shared<RateLease>(shared_from_this(), key_scope ? key : "",
                                     limits_.per_address.any() ? address : "");
}

void RateLimiter::release(const std::string& key, const std::string& address, int64_t tokens,
                          RateClock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto settle = [&](std::unordered_map<std::string, State>& map, const std::string& id) {
    const auto it = map.find(id);
    if (it == map.end()) return;
    it->second.running = std::max(0, it->second.running - 1);
    if (it->second.tokens && tokens > 0) it->second.tokens->charge(static_cast<double>(tokens), now);
  };
  if (!key.empty()) settle(keys_, key);
  if (!address.empty()) settle(addresses_, address);
}

void RateLimiter::forget_idle(RateClock::time_point now) {
  for (auto it = addresses_.begin(); it != addresses_.end();) {
    State& s = it->second;
    const bool idle = s.running == 0 && (!s.requests || s.requests->full(now)) && (!s.tokens || s.tokens->full(now));
    it = idle ? addresses_.erase(it) : std::next(it);
  }
}

size_t RateLimiter::n_addresses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return addresses_.size();
}

}  // namespace edgellm::server
