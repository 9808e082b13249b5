// API keys (hashing, the keys file, lookups) and `edgellm serve --config` (TOML settings, errors with their
// line and column, unknown settings, the loopback rule).
#include <gtest/gtest.h>

#include <fstream>

#include "server/api_keys.h"
#include "server/serve_config.h"
#include "support/test_env.h"

namespace edgellm::server {
namespace {

std::string write_file(const test::TempDir& dir, const std::string& name, const std::string& text) {
  const std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(ApiKeys, GeneratedKeysAreDistinctAndFoundOnlyByThemselves) {
  const std::string a = ApiKeys::generate(), b = ApiKeys::generate();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("sk-edgellm-", 0), 0u);
  EXPECT_EQ(a.size(), 11u + 43u);
  ApiKeys keys;
  ASSERT_TRUE(keys.add_plain("kitchen", a).ok());
  ASSERT_TRUE(keys.add_plain("garden", b).ok());
  ASSERT_NE(keys.find(a), nullptr);
  EXPECT_EQ(*keys.find(a), "kitchen");
  EXPECT_EQ(*keys.find(b), "garden");
  EXPECT_EQ(keys.find(a.substr(0, a.size() - 1)), nullptr);
  EXPECT_EQ(keys.find(a + "x"), nullptr);
  EXPECT_EQ(keys.find(""), nullptr);
  // Names are unique and plain.
  EXPECT_FALSE(keys.add_plain("kitchen", "another").ok());
  EXPECT_FALSE(keys.add_plain("bad name", "k").ok());
  EXPECT_FALSE(keys.add_plain("quote\"", "k").ok());
  EXPECT_FALSE(keys.add_plain(std::string(65, 'a'), "k").ok());
}

TEST(ApiKeys, TheFileHoldsHashesAndErrorsNameTheirLine) {
  const std::string key = ApiKeys::generate();
  const std::string hash = ApiKeys::hash_text(key);
  EXPECT_EQ(hash.size(), 7u + 64u);
  auto parsed = ApiKeys::parse("# household keys\n\nkitchen " + hash + "\n  garden\t" +
                                   ApiKeys::hash_text("other") + "  \r\n",
                               "keys.txt");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].name, "kitchen");
  EXPECT_EQ((*parsed)[1].name, "garden");
  ApiKeys keys;
  for (auto& k : *parsed) ASSERT_TRUE(keys.add(k).ok());
  EXPECT_EQ(*keys.find(key), "kitchen");

  const struct {
    std::string text, needle;
  } bad[] = {
      {"kitchen\n", "keys.txt:1: expected `NAME sha256:HEX`"},
      {"# c\nkitchen " + key + "\n", "keys.txt:2: the hash of key 'kitchen'"},  // the key itself, not its hash
      {"kitchen sha256:" + std::string(63, 'a') + "\n", "keys.txt:1:"},
      {"kitchen sha256:" + std::string(63, 'a') + "g\n", "keys.txt:1:"},
      {"a " + hash + "\na " + hash + "\n", "keys.txt:2: a second key named 'a'"},
      {"b@d " + hash + "\n", "keys.txt:1: key name 'b@d'"},
  };
  for (const auto& b : bad) {
    const auto r = ApiKeys::parse(b.text, "keys.txt");
    ASSERT_FALSE(r.ok()) << b.text;
    EXPECT_NE(r.error().message.find(b.needle), std::string::npos) << r.error().message;
  }
}

TEST(ApiKeys, BearerHeader) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
  EXPECT_EQ(bearer_token(""), "");
}

TEST(ServeConfig, ReadsEverySettingAndTheCommandLineCanStillOverride) {
  test::TempDir dir;
  const std::string model = write_file(dir, "m.gguf", "x");
  const std::string keys_file = write_file(dir, "keys.txt", "garden " + ApiKeys::hash_text("g-key") + "\n");
  const std::string path = write_file(dir, "serve.toml", R"(# a board in the kitchen
[[model]]
path = ")" + model + R"("
alias = "qwen"

[server]
host = "0.0.0.0"
port = 9000
max_body = 65536
timeout = 30.5
threads = 4

[engine]
parallel = 8
ctx = 2048
kv_type = "q8_0"
queue = 16
prefill_chunk = 128
block_size = 32
prefix_cache = false

[auth]
api_keys_file = ")" + keys_file + R"("
[[auth.key]]
name = "kitchen"
hash = ")" + ApiKeys::hash_text("k-key") + R"("
)");
  ServeSettings s;
  const Status st = read_serve_config(path, &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(s.models.size(), 1u);
  EXPECT_EQ(s.models[0].alias, "qwen");
  EXPECT_EQ(s.host, "0.0.0.0");
  EXPECT_EQ(s.port, 9000);
  EXPECT_EQ(s.max_body, 65536);
  EXPECT_DOUBLE_EQ(s.timeout, 30.5);
  EXPECT_EQ(s.threads, 4);
  EXPECT_EQ(s.parallel, 8);
  EXPECT_EQ(s.ctx, 2048);
  EXPECT_EQ(s.kv_type, "q8_0");
  EXPECT_EQ(s.queue, 16);
  EXPECT_EQ(s.prefill_chunk, 128);
  EXPECT_EQ(s.block_size, 32);
  EXPECT_FALSE(s.prefix_cache);
  ASSERT_TRUE(check_serve_settings(s).ok()) << check_serve_settings(s).error().message;
  auto keys = load_api_keys(s);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(*keys->find("k-key"), "kitchen");
  EXPECT_EQ(*keys->find("g-key"), "garden");
  // Plain keys from the command line join them under their own names.
  s.plain_keys = {"p-key"};
  keys = load_api_keys(s);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys->find("p-key"), "cli-1");
}

TEST(ServeConfig, EachErrorNamesItsLineAndWhatWasExpected) {
  test::TempDir dir;
  const struct {
    std::string text, needle;
  } bad[] = {
      {"[server]\nport = \"80\"\n", ":2:8: [server] port must be a whole number from 0 to 65535"},
      {"[server]\nport = 70000\n", ":2:8: [server] port must be a whole number"},
      {"[engine]\nparalel = 4\n", ":2:1: unknown setting 'paralel' in [engine] (known: block_size, ctx,"},
      {"[limitz]\nrps = 1\n", ":1:2: unknown setting 'limitz'"},
      {"[engine]\nkv_type = \"q4_0\"\n", ":2:11: [engine] kv_type must be \"f16\" or \"q8_0\""},
      {"[engine]\nblock_size = 8\n", ":2:14: [engine] block_size must be 16 or 32"},
      {"[server]\ntimeout = -1\n", ":2:11: [server] timeout must be a number of seconds"},
      {"[server]\ninsecure = 1\n", ":2:12: [server] insecure must be true or false"},
      {"[[model]]\nalias = \"a\"\n", ":1:1: [[model]] needs path"},
      {"[[model]]\npath = \"m\"\nsize = 3\n", ":3:1: unknown setting 'size' in [[model]]"},
      {"[[auth.key]]\nname = \"k\"\nhash = \"sk-edgellm-abc\"\n", ":3:8: [[auth.key]] hash must be"},
      {"[server\nport = 1\n", ":1:"},  // a syntax error, with toml++'s own description
      {"port = 1\n", ":1:1: unknown setting 'port' (the file has [[model]], [server], [engine], [auth], [limits], "
                    "[[policy]], [filters] and [store])"},
  };
  for (const auto& b : bad) {
    const std::string path = write_file(dir, "bad.toml", b.text);
    ServeSettings s;
    const Status st = read_serve_config(path, &s);
    ASSERT_FALSE(st.ok()) << b.text;
    EXPECT_NE(st.error().message.find(path + b.needle), std::string::npos) << st.error().message;
  }
  // Several errors at once: all of them, one per line.
  const std::string path = write_file(dir, "two.toml", "[server]\nport = \"x\"\nhost = 3\n");
  ServeSettings s;
  const Status st = read_serve_config(path, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(":2:8:"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("\n" + path + ":3:8:"), std::string::npos) << st.error().message;
}

TEST(ServeConfig, StoreAndTrustedProxies) {
  test::TempDir dir;
  ServeSettings s;
  Status st = read_serve_config(write_file(dir, "a.toml", R"([server]
trusted_proxies = ["127.0.0.1", "192.168.1.10"]

[store]
path = "/var/lib/edgellm/conversations.db"
retention_days = 90
max_mb = 512
quota_mb = 1024
synchronous = "normal"
)"),
                                &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(s.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "192.168.1.10"}));
  EXPECT_EQ(s.db, "/var/lib/edgellm/conversations.db");
  EXPECT_EQ(s.store_retention_days, 90);
  EXPECT_EQ(s.store_max_mb, 512);
  EXPECT_EQ(s.store_quota_mb, 1024);
  EXPECT_FALSE(s.store_synchronous_full);
  st = read_serve_config(write_file(dir, "b.toml", "[server]\ntrusted_proxies = \"127.0.0.1\"\n\n[store]\n"
                                                   "synchronous = \"off\"\nretention = 3\n"),
                         &s);
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_NE(m.find(":2:19: [server] trusted_proxies must be a list of strings"), std::string::npos) << m;
  EXPECT_NE(m.find(":5:15: [store] synchronous must be \"full\""), std::string::npos) << m;
  EXPECT_NE(m.find(":6:1: unknown setting 'retention' in [store] (known: max_mb, path, quota_mb, retention_days, "
                   "synchronous)"),
            std::string::npos)
      << m;
}

TEST(ServeConfig, BeyondLoopbackNeedsKeysOrInsecure) {
  test::TempDir dir;
  ServeSettings s;
  s.models.push_back({write_file(dir, "m.gguf", "x"), ""});
  for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "::1"}) {
    s.host = host;
    EXPECT_TRUE(check_serve_settings(s).ok()) << host;
  }
  for (const char* host : {"0.0.0.0", "192.168.1.20", "::", "127.0.0.1.example.com", "1270.0.0.1"}) {
    s.host = host;
    const Status st = check_serve_settings(s);
    ASSERT_FALSE(st.ok()) << host;
    EXPECT_NE(st.error().message.find("--insecure"), std::string::npos);
  }
  s.host = "0.0.0.0";
  s.plain_keys = {"k"};
  EXPECT_TRUE(check_serve_settings(s).ok());
  s.plain_keys.clear();
  s.insecure = true;
  EXPECT_TRUE(check_serve_settings(s).ok());
  // No model, a missing model, an unreadable keys file.
  s.models[0].path = dir.file("missing.gguf");
  s.api_keys_file = dir.file("missing-keys.txt");
  const Status st = check_serve_settings(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("missing.gguf does not exist"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("cannot read the keys file"), std::string::npos) << st.error().message;
  s.models.clear();
  EXPECT_NE(check_serve_settings(s).error().message.find("no model to serve"), std::string::npos);
}

}  // namespace
}  // namespace edgellm::server

namespace edgellm::server {
namespace {

TEST(TimePolicy, RulesByLocalTimeAndKeyWithTheirErrors) {
  test::TempDir dir;
  const std::string path = write_file(dir, "policy.toml", R"([[policy]]
from = "08:00"
to = "10:00"
max_tokens = 128

[[policy]]
from = "22:00"
to = "06:00"
max_tokens = 64
keys = ["kitchen"]

[[policy]]
max_tokens = 512
)");
  ServeSettings s;
  const Status st = read_serve_config(path, &s);
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_EQ(s.policy.size(), 3u);
  EXPECT_EQ(s.policy[0].name, "1 (08:00-10:00)");
  EXPECT_EQ(s.policy[1].name, "2 (22:00-06:00)");
  EXPECT_EQ(s.policy[2].name, "3 (all day)");
  const auto cap = [&](const char* time, const std::string& key) {
    const PolicyRule* r = find_policy(s.policy, parse_clock_time(time), key);
    return r ? r->max_tokens : 0;
  };
  EXPECT_EQ(cap("09:00", ""), 128);
  EXPECT_EQ(cap("08:00", "kitchen"), 128);
  EXPECT_EQ(cap("09:59", "garden"), 128);
  EXPECT_EQ(cap("10:00", ""), 512);  // `to` is excluded
  EXPECT_EQ(cap("11:00", "kitchen"), 512);
  EXPECT_EQ(cap("23:30", "kitchen"), 64);  // across midnight, this key only
  EXPECT_EQ(cap("05:59", "kitchen"), 64);
  EXPECT_EQ(cap("06:00", "kitchen"), 512);
  EXPECT_EQ(cap("23:30", "garden"), 512);
  // A policy naming a key the server does not have.
  s.models.push_back({path, ""});
  const Status unknown = check_serve_settings(s);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("policy rule 2 (22:00-06:00) names the key 'kitchen'"), std::string::npos)
      << unknown.error().message;
  s.plain_keys = {"k"};
  s.key_hashes.push_back({"kitchen", {}});
  EXPECT_TRUE(check_serve_settings(s).ok()) << check_serve_settings(s).error().message;

  EXPECT_EQ(parse_clock_time("24:00"), 1440);
  for (const char* bad : {"8:00", "08:60", "25:00", "24:01", "08-00", "0800", ""}) EXPECT_EQ(parse_clock_time(bad), -1) << bad;
  const struct {
    std::string text, needle;
  } errors[] = {
      {"[[policy]]\nfrom = \"8am\"\nto = \"10:00\"\nmax_tokens = 1\n", ":2:8: [[policy]] from must be a local time"},
      {"[[policy]]\nmax_tokens = 0\n", ":2:14: [[policy]] max_tokens must be a whole number from 1"},
      {"[[policy]]\nfrom = \"08:00\"\nmax_tokens = 5\n", ":1:1: [[policy]] needs both from and to"},
      {"[[policy]]\nfrom = \"08:00\"\nto = \"08:00\"\nmax_tokens = 5\n", ":1:1: [[policy]] from and to are the same"},
      {"[[policy]]\nto = \"09:00\"\nfrom = \"08:00\"\n", ":1:1: [[policy]] needs max_tokens"},
      {"[[policy]]\nmax_tokens = 5\nkeys = \"kitchen\"\n", ":3:8: [[policy]] keys must be a list"},
      {"[[policy]]\nmax_tokens = 5\nuntil = \"09:00\"\n", ":3:1: unknown setting 'until' in [[policy]]"},
  };
  for (const auto& e : errors) {
    const std::string bad_path = write_file(dir, "bad.toml", e.text);
    ServeSettings b;
    const Status r = read_serve_config(bad_path, &b);
    ASSERT_FALSE(r.ok()) << e.text;
    EXPECT_NE(r.error().message.find(bad_path + e.needle), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace edgellm::server
