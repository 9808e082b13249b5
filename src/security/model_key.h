// The secret key of encrypted model files (security/encrypted_model.h): 32 random bytes for libsodium's
// XChaCha20-Poly1305 secretstream, and where a program on the board finds it.
//
// A key file is what `edgellm keygen --encryption-key FILE` writes:
//   "untrusted comment: edgellm model encryption key\n" base64(key[32]) "\n"
// A bare base64 or hex line, or exactly 32 raw bytes (`head -c 32 /dev/urandom > key`, or what systemd
// decrypts from `systemd-creds encrypt`), are read too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "util/expected.h"

namespace edgellm {

class ModelKey {
 public:
  static constexpr size_t kBytes = 32;
  static constexpr size_t kIdBytes = 16;

  // A new key from libsodium's random source.
  static ModelKey generate();
  // A key file's contents (any of the forms above). Errors name `source` and what is wrong, never the key.
  static Expected<ModelKey> parse(const std::string& contents, const std::string& source);
  static Expected<ModelKey> read_file(const std::string& path);

  ModelKey(const ModelKey& other) = default;
  ModelKey& operator=(const ModelKey& other) = default;
  ~ModelKey();  // wipes the key bytes

  const uint8_t* data() const { return key_.data(); }
  // A keyed BLAKE2b digest naming the key without revealing it: encrypted files carry it, so a wrong key is
  // told apart from a damaged file.
  std::array<uint8_t, kIdBytes> id() const;
  std::string id_hex() const;

 private:
  ModelKey() = default;
  std::array<uint8_t, kBytes> key_{};
};

// The text of a key file (mode 0600 is the caller's job).
std::string format_model_key(const ModelKey& key);

// Where the key of an encrypted model comes from, in this order: `key_file` when not empty; the file named
// by EDGELLM_MODEL_KEY_FILE; the key text in EDGELLM_MODEL_KEY; $CREDENTIALS_DIRECTORY/edgellm-model-key
// (systemd's LoadCredential= / LoadCredentialEncrypted=, which can bind the key to the board's TPM).
// kNotFound naming every place looked at when there is none.
Expected<ModelKey> find_model_key(const std::string& key_file);
// The list of places find_model_key() looks, for messages.
extern const char* const kModelKeyPlaces;

}  // namespace edgellm
