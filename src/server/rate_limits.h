// Rate limits of `edgellm serve` ([limits.key] and [limits.address] in the config file): token buckets per
// API key and per client address for requests per second (with a burst) and for generated tokens per
// minute, and a cap on the requests a key has running at once. A request over any of them is refused with
// 429 and a Retry-After of when it would pass.
//
// A request takes one request token from each of its buckets when it is let in, and holds a concurrency
// slot of its key until it ends (RateLease). Generated tokens are charged when the request ends, so a long
// reply can take a bucket below zero: the next request waits until it has refilled above zero (the tokens
// are not known in advance, and a reply is never cut for the limit).
//
// Thread-safe. Time is passed in (tests inject it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace edgellm::server {

using RateClock = std::chrono::steady_clock;

struct RateLimit {
  double requests_per_second = 0;  // 0: no request limit
  double burst = 0;                // requests let through at once; 0: max(1, requests_per_second)
  double tokens_per_minute = 0;    // generated tokens; 0: no limit
  int concurrent = 0;              // requests running at once (per key only); 0: no limit
  bool any() const { return requests_per_second > 0 || tokens_per_minute > 0 || concurrent > 0; }
};

struct RateLimits {
  RateLimit per_key;      // each API key (when the server has keys)
  RateLimit per_address;  // each client address
  bool any() const { return per_key.any() || per_address.any(); }
};

// A bucket of `capacity` that refills at `rate` per second; it may be charged below zero.
class TokenBucket {
 public:
  TokenBucket(double capacity, double rate, RateClock::time_point now)
      : capacity_(capacity), rate_(rate), level_(capacity), last_(now) {}
  // Takes `n` if the bucket holds at least `n`; else returns the seconds until it will.
  bool take(double n, RateClock::time_point now, double* wait_seconds);
  // Whether it is above zero (else the seconds until it is).
  bool positive(RateClock::time_point now, double* wait_seconds);
  void charge(double n, RateClock::time_point now);
  // Full again (an idle bucket that can be forgotten).
  bool full(RateClock::time_point now);

 private:
  void refill(RateClock::time_point now);
  double capacity_, rate_, level_;
  RateClock::time_point last_;
};

class RateLimiter;

// A request let in: holds its key's concurrency slot until finish() or its destruction.
class RateLease {
 public:
  RateLease(std::shared_ptr<RateLimiter> limiter, std::string key, std::string address)
      : limiter_(std::move(limiter)), key_(std::move(key)), address_(std::move(address)) {}
  ~RateLease();
  RateLease(const RateLease&) = delete;
  RateLease& operator=(const RateLease&) = delete;
  // The request ended having generated `tokens`: charged to its buckets, its slot given back. Once.
  void finish(int64_t tokens, RateClock::time_point now = RateClock::now());

 private:
  std::shared_ptr<RateLimiter> limiter_;
  std::string key_, address_;
  bool finished_ = false;
};

class RateLimiter : public std::enable_shared_from_this<RateLimiter> {
 public:
  explicit RateLimiter(RateLimits limits) : limits_(limits) {}
  const RateLimits& limits() const { return limits_; }

  struct Refusal {
    std::string scope;  // "key" or "address"
    std::string limit;  // "requests", "tokens" or "concurrent"
    double retry_after_seconds = 0;
    std::string message;  // for the client, naming the limit
  };
  // Lets a request in (a lease) or says which limit it is over. `key` is "" without API keys.
  std::shared_ptr<RateLease> admit(const std::string& key, const std::string& address, RateClock::time_point now,
                                   Refusal* refusal);

  // Client addresses with state (for tests; idle ones are forgotten as more arrive).
  size_t n_addresses() const;

 private:
  friend class RateLease;
  struct State {
    std::unique_ptr<TokenBucket> requests, tokens;
    int running = 0;
  };
  State& state(std::unordered_map<std::string, State>& map, const std::string& id, const RateLimit& limit,
               RateClock::time_point now);
  void release(const std::string& key, const std::string& address, int64_t tokens, RateClock::time_point now);
  void forget_idle(RateClock::time_point now);

  const RateLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, State> keys_, addresses_;  // guarded by mu_
};

}  // namespace edgellm::server
