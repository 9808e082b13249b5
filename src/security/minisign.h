// Ed25519 signatures of model files in minisign's formats (https://jedisct1.github.io/minisign/), so that
// Debian's `minisign` verifies what `edgellm sign` wrote and edgellm verifies what `minisign -S` wrote.
//
//   public key   "untrusted comment: ...\n" base64("Ed" || key id[8] || public key[32]) "\n"
//   secret key   "untrusted comment: ...\n" base64("Ed" || kdf "Sc" or "\0\0" || "B2" || salt[32] ||
//                opslimit[8 LE] || memlimit[8 LE] || (key id[8] || secret key[64] || checksum[32]), the
//                last 104 bytes XORed with scrypt(password) when the kdf is "Sc") "\n"
//   signature    "untrusted comment: ...\n" base64("ED" || key id[8] || Ed25519(BLAKE2b-512(file))[64]) "\n"
//                "trusted comment: ...\n" base64(Ed25519(signature[64] || trusted comment)[64]) "\n"
// The checksum is BLAKE2b-256("Ed" || key id || secret key); minisign leaves it zero in unencrypted keys.
// Legacy "Ed" signatures (of the file itself) are verified too. A model's signature sits beside it as MODEL.minisig.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "util/expected.h"

namespace edgellm {

struct MinisignPublicKey {
  std::array<uint8_t, 8> key_id{};
  std::array<uint8_t, 32> key{};
  std::string key_id_hex() const;  // as minisign prints it (the id as a little-endian integer, in hex)
};

struct MinisignSecretKey {
  std::array<uint8_t, 8> key_id{};
  std::array<uint8_t, 64> key{};  // libsodium's Ed25519 secret key (seed and public key)
  MinisignPublicKey public_key() const;
};

// A new key pair (libsodium's random source).
MinisignSecretKey generate_minisign_key();

// File texts. The secret key is written unencrypted (as `minisign -G -W`): keep it with mode 0600, or on
// another machine.
std::string format_public_key(const MinisignPublicKey& key);
std::string format_secret_key(const MinisignSecretKey& key);

// A public key file's text, or the bare base64 line (minisign -P). Errors say what is wrong.
Expected<MinisignPublicKey> parse_public_key(const std::string& text);
Expected<MinisignPublicKey> read_public_key(const std::string& path);
// A secret key file; a password-protected one (kdf "Sc") needs `password` (else kInvalidArgument saying so).
// A wrong password shows as a checksum mismatch.
Expected<MinisignSecretKey> read_secret_key(const std::string& path, const std::string& password = "");

// The .minisig text for the file at `path` (prehashed "ED" form, as minisign signs by default).
Expected<std::string> sign_file(const std::string& path, const MinisignSecretKey& key,
                                const std::string& trusted_comment);

// Checks `signature_text` for the file at `path` against `key`. Errors (kFormat for a malformed signature,
// kInvalidArgument for a failed check) name what failed: another key, the file's contents, the trusted
// comment. On success `*trusted_comment` (if given) is the verified trusted comment.
Status verify_file(const std::string& path, const std::string& signature_text, const MinisignPublicKey& key,
                   std::string* trusted_comment = nullptr);

// The runtime's check before loading a model: PATH.minisig must exist and verify with the public key file.
// Errors start with the model's path.
Status verify_model_signature(const std::string& model_path, const std::string& public_key_path);

}  // namespace edgellm
