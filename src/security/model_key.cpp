#include "security/model_key.h"

#include <sodium.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "security/sodium_init.h"

namespace edgellm {
namespace {

constexpr const char* kComment = "untrusted comment: edgellm model encryption key";
constexpr size_t kMaxKeyFileBytes = 4096;
// Personalisation of the key-id digest: ids are never equal to any other use of the key.
constexpr char kIdContext[] = "edgellm model key id v1";


// Decodes `text` (whitespace around it ignored) as base64 or hex of exactly kBytes; false otherwise.
bool decode_key_text(std::string text, std::array<uint8_t, ModelKey::kBytes>& out) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  size_t start = 0;
  while (start < text.size() && std::isspace(static_cast<unsigned char>(text[start]))) ++start;
  text.erase(0, start);
  std::vector<uint8_t> bin(ModelKey::kBytes + 1);
  size_t n = 0;
  const char* end = nullptr;
  if (text.size() == 2 * ModelKey::kBytes &&
      sodium_hex2bin(bin.data(), bin.size(), text.data(), text.size(), nullptr, &n, &end) == 0 &&
      end == text.data() + text.size() && n == ModelKey::kBytes) {
    std::memcpy(out.data(), bin.data(), n);
    sodium_memzero(bin.data(), bin.size());
    return true;
  }
  if (sodium_base642bin(bin.data(), bin.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) == 0 &&
      end == text.data() + text.size() && n == ModelKey::kBytes) {
    std::memcpy(out.data(), bin.data(), n);
    sodium_memzero(bin.data(), bin.size());
    return true;
  }
  sodium_memzero(bin.data(), bin.size());
  return false;
}

}  // namespace

const char* const kModelKeyPlaces =
    "--key-file, EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or a systemd credential named edgellm-model-key "
    "($CREDENTIALS_DIRECTORY)";

ModelKey::~ModelKey() { sodium_memzero(key_.data(), key_.size()); }

ModelKey ModelKey::generate() {
  init_sodium();
  ModelKey key;
  randombytes_buf(key.key_.data(), key.key_.size());
  return key;
}

Expected<ModelKey> ModelKey::parse(const std::string& contents, const std::string& source) {
  init_sodium();
  ModelKey key;
  if (contents.size() == kBytes) {  // raw bytes
    std::memcpy(key.key_.data(), contents.data(), kBytes);
    if (sodium_is_zero(key.key_.data(), key.key_.size())) {
      return make_error(ErrorCode::kFormat, source + ": the key is all zeros, not a random key");
    }
    return key;
  }
  if (contents.size() > kMaxKeyFileBytes) {
    return make_error(ErrorCode::kFormat, source + ": " + std::to_string(contents.size()) +
                                              " bytes is not a model key (expected a key file of one line)");
  }
  // Text: comment lines, then the one key line.
  std::istringstream lines(contents);
  std::string line, key_line;
  int key_lines = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("untrusted comment:", 0) == 0) continue;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    key_line = line;
    ++key_lines;
  }
  if (key_lines != 1 || !decode_key_text(key_line, key.key_)) {
    sodium_memzero(key_line.data(), key_line.size());
    return make_error(ErrorCode::kFormat,
                      source + ": not a model key (expected one line of base64 or hex of 32 bytes, as "
                               "`edgellm keygen --encryption-key` writes, or 32 raw bytes)");
  }
  sodium_memzero(key_line.data(), key_line.size());
  if (sodium_is_zero(key.key_.data(), key.key_.size())) {
    return make_error(ErrorCode::kFormat, source + ": the key is all zeros, not a random key");
  }
  return key;
}

Expected<ModelKey> ModelKey::read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open the model key: " + std::strerror(errno));
  std::string contents(kMaxKeyFileBytes + 1, '\0');
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  contents.resize(static_cast<size_t>(in.gcount()));
  auto key = parse(contents, path);
  sodium_memzero(contents.data(), contents.size());
  return key;
}

std::array<uint8_t, ModelKey::kIdBytes> ModelKey::id() const {
  std::array<uint8_t, kIdBytes> id{};
  crypto_generichash(id.data(), id.size(), reinterpret_cast<const unsigned char*>(kIdContext),
                     sizeof(kIdContext) - 1, key_.data(), key_.size());
  return id;
}

std::string ModelKey::id_hex() const {
  const auto bytes = id();
  std::string hex(2 * bytes.size() + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes.data(), bytes.size());
  hex.pop_back();
  return hex;
}

std::string format_model_key(const ModelKey& key) {
  std::string b64(sodium_base64_ENCODED_LEN(ModelKey::kBytes, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(b64.data(), b64.size(), key.data(), ModelKey::kBytes, sodium_base64_VARIANT_ORIGINAL);
  b64.resize(std::strlen(b64.c_str()));
  std::string text = std::string(kComment) + " " + key.id_hex() + "\n" + b64 + "\n";
  sodium_memzero(b64.data(), b64.size());
  return text;
}

Expected<ModelKey> find_model_key(const std::string& key_file) {
  if (!key_file.empty()) return ModelKey::read_file(key_file);
  if (const char* file = std::getenv("EDGELLM_MODEL_KEY_FILE"); file != nullptr && *file != '\0') {
    return ModelKey::read_file(file);
  }
  if (const char* text = std::getenv("EDGELLM_MODEL_KEY"); text != nullptr && *text != '\0') {
    return ModelKey::parse(text, "EDGELLM_MODEL_KEY");
  }
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0') {
    const std::string path = std::string(dir) + "/edgellm-model-key";
    std::ifstream probe(path);
    if (probe) return ModelKey::read_file(path);
  }
  return make_error(ErrorCode::kNotFound, std::string("no model key given (looked at ") + kModelKeyPlaces + ")");
}

}  // namespace edgellm
