// API keys of `edgellm serve`. A client presents its key as `Authorization: Bearer KEY` (the OpenAI
// clients' api_key; Ollama clients send the same header from OLLAMA_API_KEY). The server holds only each
// key's SHA-256 and the name it was given: a stolen keys file or config does not reveal any key. A fast hash
// is enough because the keys are 256 random bits (nothing to guess from a dictionary); the comparison runs
// over every stored hash in full whatever matches, so its time says nothing about the keys.
//
// Keys file (`edgellm keys add NAME --file FILE` writes it): one key per line, `NAME sha256:HEX`, where NAME
// is 1-64 of [A-Za-z0-9._-] (it appears in metrics labels, logs and the conversation store); blank lines
// and lines starting with '#' are ignored.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace edgellm::server {

struct ApiKey {
  std::string name;
  std::array<uint8_t, 32> sha256{};
};

class ApiKeys {
 public:
  // A new key: "sk-edgellm-" and 43 base64url characters (32 random bytes).
  static std::string generate();
  // "sha256:" and the 64 hex digits of the key's SHA-256, as the keys file stores it.
  static std::string hash_text(std::string_view key);
  static bool valid_name(std::string_view name);

  // Parses a keys file's text; errors name `origin` and the line ("keys.txt:3: ...").
  static Expected<std::vector<ApiKey>> parse(std::string_view text, const std::string& origin);
  static Expected<std::vector<ApiKey>> read_file(const std::string& path);
  // Reads "sha256:HEX" into `out`; false if it is not that.
  static bool parse_hash(std::string_view text, std::array<uint8_t, 32>* out);

  // Adds a key; errors: an invalid name, a name already taken (each key has its own name).
  Status add(ApiKey key);
  Status add_plain(const std::string& name, std::string_view key);

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  const std::vector<ApiKey>& keys() const { return keys_; }

  // The name of the key `presented` is, or nullptr.
  const std::string* find(std::string_view presented) const;

 private:
  std::vector<ApiKey> keys_;
};

// The key in an `Authorization: Bearer KEY` header value ("" if it is not one).
std::string_view bearer_token(std::string_view authorization);

}  // namespace edgellm::server
