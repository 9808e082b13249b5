#include "server/api_keys.h"

#include <sodium.h>

#include <cctype>
#include <fstream>
#include <sstream>

#include "security/sodium_init.h"
#include "util/sha256.h"

namespace edgellm::server {
namespace {

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string ApiKeys::generate() {
  init_sodium();
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  char text[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof text, bytes, sizeof bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(bytes, sizeof bytes);
  return std::string("sk-edgellm-") + text;
}

std::string ApiKeys::hash_text(std::string_view key) {
  const auto digest = sha256_digest(key.data(), key.size());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool ApiKeys::valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool ApiKeys::parse_hash(std::string_view text, std::array<uint8_t, 32>* out) {
  constexpr std::string_view kPrefix = "sha256:";
  if (text.substr(0, kPrefix.size()) != kPrefix || text.size() != kPrefix.size() + 64) return false;
  text.remove_prefix(kPrefix.size());
  for (size_t i = 0; i < 32; ++i) {
    const int hi = hex_digit_value(text[2 * i]), lo = hex_digit_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

Expected<std::vector<ApiKey>> ApiKeys::parse(std::string_view text, const std::string& origin) {
  ApiKeys keys;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = trim_blanks(text.substr(0, end));
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const auto where = [&] { return origin + ":" + std::to_string(line_no) + ": "; };
    const size_t space = line.find_first_of(" \t");
    if (space == std::string_view::npos) {
      return make_error(ErrorCode::kInvalidArgument,
                        where() + "expected `NAME sha256:HEX` (a key's name and the hash `edgellm keys add` printed)");
    }
    ApiKey key;
    key.name = std::string(line.substr(0, space));
    const std::string_view hash = trim_blanks(line.substr(space + 1));
    if (!parse_hash(hash, &key.sha256)) {
      return make_error(ErrorCode::kInvalidArgument,
                        where() + "the hash of key '" + key.name +
                            "' is not `sha256:` and 64 hex digits (a key itself never goes in this file)");
    }
    const Status st = keys.add(std::move(key));
    if (!st.ok()) return make_error(ErrorCode::kInvalidArgument, where() + st.error().message);
  }
  return keys.keys_;
}

Expected<std::vector<ApiKey>> ApiKeys::read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read the keys file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

Status ApiKeys::add(ApiKey key) {
  if (!valid_name(key.name)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "key name '" + key.name + "' must be 1-64 characters of A-Z a-z 0-9 . _ -");
  }
  for (const ApiKey& k : keys_) {
    if (k.name == key.name) return make_error(ErrorCode::kInvalidArgument, "a second key named '" + key.name + "'");
  }
  keys_.push_back(std::move(key));
  return {};
}

Status ApiKeys::add_plain(const std::string& name, std::string_view key) {
  if (key.empty()) return make_error(ErrorCode::kInvalidArgument, "an empty API key");
  ApiKey k;
  k.name = name;
  k.sha256 = sha256_digest(key.data(), key.size());
  return add(std::move(k));
}

const std::string* ApiKeys::find(std::string_view presented) const {
  if (presented.empty()) return nullptr;
  const auto digest = sha256_digest(presented.data(), presented.size());
  const std::string* found = nullptr;
  for (const ApiKey& k : keys_) {
    // sodium_memcmp takes the same time whatever the bytes; every key is compared.
    if (sodium_memcmp(k.sha256.data(), digest.data(), digest.size()) == 0) found = &k.name;
  }
  return found;
}

std::string_view bearer_token(std::string_view authorization) {
  authorization = trim_blanks(authorization);
  if (authorization.size() < 7) return {};
  std::string scheme(authorization.substr(0, 7));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return {};
  return trim_blanks(authorization.substr(7));
}

}  // namespace edgellm::server
