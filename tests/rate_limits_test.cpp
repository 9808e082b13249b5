// Rate limits of `edgellm serve` with an injected clock: requests per second with a burst, generated tokens
// per minute charged at the end of a request, concurrent requests per key, keys and addresses apart, a
// refused request costing nothing, idle addresses forgotten; and their [limits] config tables.
#include <gtest/gtest.h>

#include <fstream>

#include "server/rate_limits.h"
#include "server/serve_config.h"
#include "support/test_env.h"

namespace edgellm::server {
namespace {

using std::chrono::milliseconds;

RateClock::time_point t0() {
  static const RateClock::time_point start = RateClock::now();
  return start;
}

RateClock::time_point at(double seconds) {
  return t0() + std::chrono::duration_cast<RateClock::duration>(std::chrono::duration<double>(seconds));
}

TEST(RateLimits, RequestsPerSecondWithABurst) {
  RateLimits limits;
  limits.per_key.requests_per_second = 2;
  limits.per_key.burst = 3;
  auto limiter = std::make_shared<RateLimiter>(limits);
  RateLimiter::Refusal refusal;
  for (int i = 0; i < 3; ++i) EXPECT_NE(limiter->admit("kitchen", "10.0.0.1", at(0), &refusal), nullptr) << i;
  EXPECT_EQ(limiter->admit("kitchen", "10.0.0.1", at(0), &refusal), nullptr);
  EXPECT_EQ(refusal.scope, "key");
  EXPECT_EQ(refusal.limit, "requests");
  EXPECT_NEAR(refusal.retry_after_seconds, 0.5, 1e-6);
  EXPECT_NE(refusal.message.find("key 'kitchen' may send 2 requests per second (burst 3)"), std::string::npos)
      << refusal.message;
  // Another key has its own bucket; without keys ("") there is no per-key limit.
  EXPECT_NE(limiter->admit("garden", "10.0.0.1", at(0), &refusal), nullptr);
  for (int i = 0; i < 10; ++i) EXPECT_NE(limiter->admit("", "10.0.0.1", at(0), &refusal), nullptr);
  // Half a second later one more passes, then not again.
  EXPECT_NE(limiter->admit("kitchen", "10.0.0.1", at(0.5), &refusal), nullptr);
  EXPECT_EQ(limiter->admit("kitchen", "10.0.0.1", at(0.5), &refusal), nullptr);
  // A long pause refills to the burst, no more.
  for (int i = 0; i < 3; ++i) EXPECT_NE(limiter->admit("kitchen", "10.0.0.1", at(100), &refusal), nullptr);
  EXPECT_EQ(limiter->admit("kitchen", "10.0.0.1", at(100), &refusal), nullptr);
}

TEST(RateLimits, GeneratedTokensAreChargedWhenTheRequestEnds) {
  RateLimits limits;
  limits.per_key.tokens_per_minute = 60;  // one per second
  auto limiter = std::make_shared<RateLimiter>(limits);
  RateLimiter::Refusal refusal;
  auto lease = limiter->admit("kitchen", "a", at(0), &refusal);
  ASSERT_NE(lease, nullptr);
  // While it runs, others are let in (the bucket is still full).
  EXPECT_NE(limiter->admit("kitchen", "a", at(0), &refusal), nullptr);
  lease->finish(100, at(1));  // the bucket was full (60): 60 - 100 = -40
  lease->finish(100, at(1));  // once only
  EXPECT_EQ(limiter->admit("kitchen", "a", at(1), &refusal), nullptr);
  EXPECT_EQ(refusal.limit, "tokens");
  EXPECT_NEAR(refusal.retry_after_seconds, 40, 0.01);
  EXPECT_NE(refusal.message.find("has used its 60 generated tokens per minute"), std::string::npos) << refusal.message;
  EXPECT_EQ(limiter->admit("kitchen", "a", at(40.9), &refusal), nullptr);
  EXPECT_NE(limiter->admit("kitchen", "a", at(41.1), &refusal), nullptr);
}

TEST(RateLimits, ConcurrentRequestsPerKeyHoldTheirSlotUntilTheyEnd) {
  RateLimits limits;
  limits.per_key.concurrent = 2;
  auto limiter = std::make_shared<RateLimiter>(limits);
  RateLimiter::Refusal refusal;
  auto a = limiter->admit("kitchen", "x", at(0), &refusal);
  auto b = limiter->admit("kitchen", "y", at(0), &refusal);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(limiter->admit("kitchen", "z", at(0), &refusal), nullptr);
  EXPECT_EQ(refusal.limit, "concurrent");
  EXPECT_NE(refusal.message.find("already has 2 requests running (at most 2 at once)"), std::string::npos);
  EXPECT_NE(limiter->admit("garden", "z", at(0), &refusal), nullptr);
  a->finish(3);
  auto c = limiter->admit("kitchen", "z", at(0), &refusal);
  EXPECT_NE(c, nullptr);
  // A lease dropped without finish() (a request that failed before it started) gives its slot back too.
  b.reset();
  c.reset();
  auto d = limiter->admit("kitchen", "z", at(0), &refusal);
  auto e = limiter->admit("kitchen", "z", at(0), &refusal);
  EXPECT_TRUE(d && e);
}

TEST(RateLimits, AddressLimitsSpanKeysAndARefusedRequestCostsNothing) {
  RateLimits limits;
  limits.per_key.requests_per_second = 1;
  limits.per_key.burst = 2;
  limits.per_address.requests_per_second = 1;
  limits.per_address.burst = 1;
  auto limiter = std::make_shared<RateLimiter>(limits);
  RateLimiter::Refusal refusal;
  EXPECT_NE(limiter->admit("kitchen", "10.0.0.1", at(0), &refusal), nullptr);
  // The same address with another key: over the address's limit.
  EXPECT_EQ(limiter->admit("garden", "10.0.0.1", at(0), &refusal), nullptr);
  EXPECT_EQ(refusal.scope, "address");
  EXPECT_NE(refusal.message.find("address 10.0.0.1"), std::string::npos);
  // That refusal took nothing from garden's bucket (burst 2): two from another address pass.
  EXPECT_NE(limiter->admit("garden", "10.0.0.2", at(0), &refusal), nullptr);
  EXPECT_EQ(limiter->admit("garden", "10.0.0.2", at(0), &refusal), nullptr);  // the address again
  EXPECT_NE(limiter->admit("garden", "10.0.0.3", at(0), &refusal), nullptr);
}

TEST(RateLimits, IdleAddressesAreForgotten) {
  RateLimits limits;
  limits.per_address.requests_per_second = 10;
  auto limiter = std::make_shared<RateLimiter>(limits);
  RateLimiter::Refusal refusal;
  for (int i = 0; i < 6000; ++i) {
    ASSERT_NE(limiter->admit("", "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256), at(i * 1e-3),
                             &refusal),
              nullptr);
  }
  EXPECT_LE(limiter->n_addresses(), 4097u + 2000u);
  limiter->admit("", "10.9.9.9", at(100), &refusal);
  EXPECT_LE(limiter->n_addresses(), 4097u);
}

TEST(RateLimits, ConfigTables) {
  test::TempDir dir;
  const std::string path = dir.file("limits.toml");
  std::ofstream(path) << "[limits.key]\nrequests_per_second = 0.5\nburst = 4\ntokens_per_minute = 2000\n"
                         "concurrent = 2\n\n[limits.address]\nrequests_per_second = 5\n";
  ServeSettings s;
  const Status st = read_serve_config(path, &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_DOUBLE_EQ(s.limits.per_key.requests_per_second, 0.5);
  EXPECT_DOUBLE_EQ(s.limits.per_key.burst, 4);
  EXPECT_DOUBLE_EQ(s.limits.per_key.tokens_per_minute, 2000);
  EXPECT_EQ(s.limits.per_key.concurrent, 2);
  EXPECT_DOUBLE_EQ(s.limits.per_address.requests_per_second, 5);
  EXPECT_FALSE(s.limits.per_address.tokens_per_minute > 0);
  std::ofstream(path) << "[limits.key]\nrequests_per_second = -1\nrps = 3\n[limits.host]\n";
  const Status bad = read_serve_config(path, &s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(":2:23: [limits.key] requests_per_second must be a number of requests per second"),
            std::string::npos)
      << bad.error().message;
  EXPECT_NE(bad.error().message.find(":3:1: unknown setting 'rps' in [limits.key]"), std::string::npos);
  EXPECT_NE(bad.error().message.find("unknown setting 'host' in [limits] (known: address, key)"), std::string::npos);
}

}  // namespace
}  // namespace edgellm::server
