// `edgellm serve --config FILE`: every serve setting in one TOML file (docs/serving.md, "Configuration"),
// with the command line overriding what it sets. Errors name the file, line and column and say what
// was expected; unknown settings are errors too (a misspelt limit must not be silently ignored).
//
//   [[model]]                       # repeat for several; `path` required, `alias` optional
//   path = "/var/lib/edgellm/qwen2.5-1.5b-w4a16.gguf"
//   alias = "qwen"
//   [server]    host, port, insecure, max_body, timeout, threads, require_signature, key_file, trusted_proxies
//   [engine]    parallel, ctx, kv_mem_mib, kv_type, queue, prefill_chunk, block_size, prefix_cache
//   [auth]      api_keys_file, and [[auth.key]] tables of name + hash ("sha256:...", from `edgellm keys add`)
//   [limits.key], [limits.address]   requests_per_second, burst, tokens_per_minute, concurrent (rate_limits.h)
//   [[policy]]  from, to ("HH:MM", local time), max_tokens, keys (time_policy.h)
//   [filters]   max_prompt_chars, max_prompt_tokens, max_messages; [[filters.block]] name, words | regex, reason
//               (input_filters.h)
//   [store]     path, retention_days, max_mb, quota_mb, synchronous ("full" | "normal") (conversation_store.h)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/api_keys.h"
#include "server/input_filters.h"
#include "server/rate_limits.h"
#include "server/time_policy.h"
#include "util/expected.h"

namespace edgellm::server {

// What `edgellm serve` runs with, before it becomes ServeOptions: the defaults, then the config file's
// settings, then the command line's.
struct ServeSettings {
  struct Model {
    std::string path, alias;
  };
  std::vector<Model> models;
  std::string host = "127.0.0.1";
  int port = 8080;
  bool insecure = false;  // listen beyond loopback without API keys
  int64_t max_body = 8 << 20;
  double timeout = 600;
  int threads = 0;  // 0: the machine's default
  std::string require_signature;
  std::string key_file;  // of encrypted models
  std::vector<std::string> trusted_proxies;  // addresses whose X-Forwarded-For names the client
  int parallel = 4;
  int64_t ctx = 4096;
  int64_t kv_mem_mib = 0;
  std::string kv_type = "f16";
  int64_t queue = 64;
  int64_t prefill_chunk = 256;
  int block_size = 16;
  bool prefix_cache = true;
  // Authentication: keys given as hashes (config), a keys file, keys given in plain (--api-key).
  std::vector<ApiKey> key_hashes;
  std::string api_keys_file;
  std::vector<std::string> plain_keys;
  RateLimits limits;
  std::vector<PolicyRule> policy;
  InputFilterConfig filters;
  std::string db;  // the conversation store ("": none)
  int64_t store_retention_days = 0;
  int64_t store_max_mb = 0;
  bool store_synchronous_full = true;
  int64_t store_quota_mb = 0;
};

// Reads the config file over `settings` (only what it sets changes). Every problem found is reported, one
// per line as "FILE:LINE:COL: message"; on any, `settings` may be partly updated and must not be used.
Status read_serve_config(const std::string& path, ServeSettings* settings);

// Checks the settings as a whole (after the command line): value ranges, a model to serve, the keys file.
// Errors are one per line.
Status check_serve_settings(const ServeSettings& settings);

// The keys in force: the config's hashes, the keys file's, the plain ones (named "cli-1", "cli-2", ...).
// Errors: an unreadable or malformed keys file (with its line), two keys with one name.
Expected<ApiKeys> load_api_keys(const ServeSettings& settings);

// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost): only this machine can connect.
bool is_loopback_host(const std::string& host);

}  // namespace edgellm::server
