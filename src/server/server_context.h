// What every route of `edgellm serve` shares: the served models (each with its own engine), the options
// and the metrics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "runtime/loaded_model.h"
#include "server/api_keys.h"
#include "server/conversation_store.h"
#include "server/input_filters.h"
#include "server/metrics.h"
#include "server/rate_limits.h"
#include "server/time_policy.h"

namespace edgellm::server {

struct ServeOptions {
  struct ModelSpec {
    std::string path;
    std::string alias;  // the name clients use in `model`; "" = the file name without its extension
  };
  std::vector<ModelSpec> models;
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port
  EngineOptions engine;               // --parallel, --ctx, --kv-mem, --kv-type, --queue, --prefill-chunk
  LoadOptions load;                   // -t, --pin, --cpus
  size_t max_body_bytes = 8u << 20;   // --max-body: larger request bodies get 413
  double timeout_seconds = 600;       // --timeout: a request's limit from arrival to its last token; 0 = none
  int http_threads = 0;               // 0: enough for every running and queued request, plus a few
  ApiKeys keys;                       // --api-key, --api-keys-file, the config's keys; empty: no authentication
  RateLimits limits;                  // the config's [limits.key] and [limits.address]
  std::vector<PolicyRule> policy;     // the config's [[policy]]
  std::shared_ptr<const InputFilters> filters;  // the config's [filters] (nullptr: none)
  std::vector<std::string> trusted_proxies;  // --trusted-proxy: their X-Forwarded-For names the client
  std::string db_path;                // --db, the config's [store] path: "" = no conversation store
  StoreOptions store;                 // the config's [store] retention and durability
};

struct ServedModel {
  std::string alias;
  std::string path;
  std::shared_ptr<LoadedModel> model;
  std::unique_ptr<Engine> engine;
  int64_t created_unix = 0;   // when it was loaded (OpenAI's `created`)
  uint64_t size_bytes = 0;    // of the file (or the weights of a directory)
  std::string modified_at;    // of the file, RFC 3339 (Ollama's `modified_at`)
};

class ServerContext {
 public:
  explicit ServerContext(ServeOptions options);

  const ServeOptions& options() const { return options_; }
  Metrics& metrics() { return metrics_; }

  // The models, in the order given. Only after set_models (ready() is then true).
  const std::vector<std::unique_ptr<ServedModel>>& models() const { return models_; }
  void set_models(std::vector<std::unique_ptr<ServedModel>> models);
  bool ready() const { return ready_.load(); }
  // The model a request names by alias (or its file name); an empty name is the first model.
  // nullptr if there is none by that name.
  ServedModel* find_model(const std::string& name) const;

  bool shutting_down() const { return shutting_down_.load(); }
  // Refuses new requests and cancels the queued and running ones: their streams end with a final event.
  void begin_shutdown();

  // Streams being written (a shutdown waits for them to send their final event).
  void stream_opened() { open_streams_.fetch_add(1); }
  void stream_closed() { open_streams_.fetch_sub(1); }
  int open_streams() const { return open_streams_.load(); }

  // "chatcmpl-..." style ids: `prefix` + 24 hex digits, unique per server.
  std::string new_id(const std::string& prefix);

  // The API keys in force (empty: every request is let in). set_keys() swaps them for the requests that
  // arrive after it (a reload); requests already let in keep going.
  std::shared_ptr<const ApiKeys> keys() const;
  void set_keys(ApiKeys keys);
  // The rate limiter in force; set_limits() starts a new one (with full buckets) for later requests.
  std::shared_ptr<RateLimiter> limiter() const;
  void set_limits(const RateLimits& limits);
  // The time-of-day rules in force (reloadable like the keys).
  std::shared_ptr<const std::vector<PolicyRule>> policy() const;
  void set_policy(std::vector<PolicyRule> rules);
  // The conversation store (nullptr: none). Set before the server takes requests; lives as long as the context.
  ConversationStore* store() const { return store_.get(); }
  void set_store(std::unique_ptr<ConversationStore> store) { store_ = std::move(store); }
  // The input filters in force (never nullptr; reloadable like the keys).
  std::shared_ptr<const InputFilters> filters() const;
  void set_filters(std::shared_ptr<const InputFilters> filters);

 private:
  ServeOptions options_;
  Metrics metrics_;
  std::unique_ptr<ConversationStore> store_;  // before models_: destroyed after the engines, whose ends write to it
  std::vector<std::unique_ptr<ServedModel>> models_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> open_streams_{0};
  std::atomic<uint64_t> next_id_{1};
  mutable std::mutex keys_mu_;
  std::shared_ptr<const ApiKeys> keys_;  // guarded by keys_mu_
  std::shared_ptr<RateLimiter> limiter_;  // guarded by keys_mu_
  std::shared_ptr<const std::vector<PolicyRule>> policy_;  // guarded by keys_mu_
  std::shared_ptr<const InputFilters> filters_;             // guarded by keys_mu_
  uint64_t id_salt_ = 0;
};

}  // namespace edgellm::server
