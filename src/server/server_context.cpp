#include "server/server_context.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace edgellm::server {

ServerContext::ServerContext(ServeOptions options) : options_(std::move(options)) {
  std::random_device rd;
  id_salt_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  keys_ = std::make_shared<const ApiKeys>(options_.keys);
  limiter_ = std::make_shared<RateLimiter>(options_.limits);
  policy_ = std::make_shared<const std::vector<PolicyRule>>(options_.policy);
  filters_ = options_.filters ? options_.filters : *InputFilters::compile({});
}

std::shared_ptr<const InputFilters> ServerContext::filters() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return filters_;
}

void ServerContext::set_filters(std::shared_ptr<const InputFilters> filters) {
  if (!filters) filters = *InputFilters::compile({});
  std::lock_guard<std::mutex> lock(keys_mu_);
  filters_ = std::move(filters);
}

std::shared_ptr<const std::vector<PolicyRule>> ServerContext::policy() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return policy_;
}

void ServerContext::set_policy(std::vector<PolicyRule> rules) {
  auto next = std::make_shared<const std::vector<PolicyRule>>(std::move(rules));
  std::lock_guard<std::mutex> lock(keys_mu_);
  policy_ = std::move(next);
}

std::shared_ptr<RateLimiter> ServerContext::limiter() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return limiter_;
}

void ServerContext::set_limits(const RateLimits& limits) {
  auto next = std::make_shared<RateLimiter>(limits);
  std::lock_guard<std::mutex> lock(keys_mu_);
  limiter_ = std::move(next);
}

std::shared_ptr<const ApiKeys> ServerContext::keys() const {
  std::lock_guard<std::mutex> lock(keys_mu_);
  return keys_;
}

void ServerContext::set_keys(ApiKeys keys) {
  auto next = std::make_shared<const ApiKeys>(std::move(keys));
  std::lock_guard<std::mutex> lock(keys_mu_);
  keys_ = std::move(next);
}

void ServerContext::set_models(std::vector<std::unique_ptr<ServedModel>> models) {
  models_ = std::move(models);
  ready_.store(true);
}

ServedModel* ServerContext::find_model(const std::string& name) const {
  if (!ready()) return nullptr;
  if (name.empty()) return models_.empty() ? nullptr : models_.front().get();
  for (const auto& m : models_) {
    if (m->alias == name) return m.get();
  }
  // Ollama clients add a ":latest" tag to bare names.
  const std::string latest = ":latest";
  if (name.size() > latest.size() && name.compare(name.size() - latest.size(), latest.size(), latest) == 0) {
    return find_model(name.substr(0, name.size() - latest.size()));
  }
  return nullptr;
}

void ServerContext::begin_shutdown() {
  shutting_down_.store(true);
  if (!ready()) return;
  for (const auto& m : models_) m->engine->drain();
}

std::string ServerContext::new_id(const std::string& prefix) {
  const uint64_t n = next_id_.fetch_add(1);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%08llx%016llx", prefix.c_str(), static_cast<unsigned long long>(id_salt_ >> 32),
                static_cast<unsigned long long>((id_salt_ << 32) ^ (n * 0x9E3779B97F4A7C15ull)));
  return buf;
}

}  // namespace edgellm::server
