#include "security/minisign.h"

#include <sodium.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "security/sodium_init.h"

namespace edgellm {

namespace {

constexpr char kSigAlg[2] = {'E', 'd'};
constexpr char kSigAlgHashed[2] = {'E', 'D'};
constexpr char kKdfScrypt[2] = {'S', 'c'};
constexpr char kKdfNone[2] = {'\0', '\0'};
constexpr char kChkAlg[2] = {'B', '2'};
constexpr size_t kPublicKeyBytes = 2 + 8 + 32;
constexpr size_t kSecretKeyBytes = 2 + 2 + 2 + 32 + 8 + 8 + 8 + 64 + 32;
constexpr size_t kSignatureBytes = 2 + 8 + 64;
constexpr const char* kUntrusted = "untrusted comment: ";
constexpr const char* kTrusted = "trusted comment: ";


std::string base64(const uint8_t* data, size_t n) {
  std::string out(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

bool unbase64(const std::string& text, std::vector<uint8_t>& out, size_t expected) {
  out.assign(expected + 1, 0);
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size() || n != expected) {
    return false;
  }
  out.resize(n);
  return true;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

Expected<std::string> read_text(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  std::string text(limit + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limit) return make_error(ErrorCode::kFormat, path + ": larger than " + std::to_string(limit) + " bytes: not a key or signature file");
  return text;
}

// BLAKE2b-512 of a file, read in 1 MiB pieces.
Expected<std::array<uint8_t, 64>> hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 64);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n > 0) crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(buf.data()), n);
  }
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": read error");
  std::array<uint8_t, 64> hash{};
  crypto_generichash_final(&state, hash.data(), hash.size());
  return hash;
}

std::array<uint8_t, 32> secret_key_checksum(const MinisignSecretKey& key) {
  std::vector<uint8_t> data(kSigAlg, kSigAlg + 2);
  data.insert(data.end(), key.key_id.begin(), key.key_id.end());
  data.insert(data.end(), key.key.begin(), key.key.end());
  std::array<uint8_t, 32> sum{};
  crypto_generichash(sum.data(), sum.size(), data.data(), data.size(), nullptr, 0);
  return sum;
}

}  // namespace

std::string MinisignPublicKey::key_id_hex() const {
  uint64_t id = 0;
  for (int i = 7; i >= 0; --i) id = (id << 8) | key_id[static_cast<size_t>(i)];
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIX64, id);
  return buf;
}

MinisignPublicKey MinisignSecretKey::public_key() const {
  MinisignPublicKey pk;
  pk.key_id = key_id;
  std::memcpy(pk.key.data(), key.data() + 32, 32);  // libsodium's secret key ends with the public key
  return pk;
}

MinisignSecretKey generate_minisign_key() {
  init_sodium();
  MinisignSecretKey sk;
  std::array<uint8_t, 32> pk{};
  crypto_sign_keypair(pk.data(), sk.key.data());
  randombytes_buf(sk.key_id.data(), sk.key_id.size());
  return sk;
}

std::string format_public_key(const MinisignPublicKey& key) {
  init_sodium();
  std::vector<uint8_t> bin(kSigAlg, kSigAlg + 2);
  bin.insert(bin.end(), key.key_id.begin(), key.key_id.end());
  bin.insert(bin.end(), key.key.begin(), key.key.end());
  return std::string(kUntrusted) + "minisign public key " + key.key_id_hex() + "\n" + base64(bin.data(), bin.size()) + "\n";
}

std::string format_secret_key(const MinisignSecretKey& key) {
  init_sodium();
  // sig alg, kdf (none), checksum alg, then salt / opslimit / memlimit (unused without a password, zero),
  // key id, secret key, checksum.
  std::array<uint8_t, kSecretKeyBytes> bin{};
  std::memcpy(bin.data(), kSigAlg, 2);
  std::memcpy(bin.data() + 2, kKdfNone, 2);
  std::memcpy(bin.data() + 4, kChkAlg, 2);
  uint8_t* keynum_sk = bin.data() + 2 + 2 + 2 + 32 + 8 + 8;
  std::memcpy(keynum_sk, key.key_id.data(), 8);
  std::memcpy(keynum_sk + 8, key.key.data(), 64);
  const auto sum = secret_key_checksum(key);
  std::memcpy(keynum_sk + 72, sum.data(), 32);
  std::string out = std::string(kUntrusted) + "minisign secret key (not password-protected; written by edgellm keygen)\n" +
                    base64(bin.data(), bin.size()) + "\n";
  sodium_memzero(bin.data(), bin.size());
  return out;
}

Expected<MinisignPublicKey> parse_public_key(const std::string& text) {
  init_sodium();
  const auto lines = lines_of(text);
  std::string b64;
  if (lines.size() == 1) {
    b64 = lines[0];
  } else if (lines.size() == 2 && lines[0].rfind(kUntrusted, 0) == 0) {
    b64 = lines[1];
  } else {
    return make_error(ErrorCode::kFormat, "public key: expected an 'untrusted comment:' line and a base64 line");
  }
  std::vector<uint8_t> bin;
  if (!unbase64(b64, bin, kPublicKeyBytes)) {
    return make_error(ErrorCode::kFormat, "public key: not base64 of " + std::to_string(kPublicKeyBytes) + " bytes");
  }
  if (std::memcmp(bin.data(), kSigAlg, 2) != 0) return make_error(ErrorCode::kUnsupported, "public key: not an Ed25519 (\"Ed\") key");
  MinisignPublicKey key;
  std::memcpy(key.key_id.data(), bin.data() + 2, 8);
  std::memcpy(key.key.data(), bin.data() + 10, 32);
  return key;
}

Expected<MinisignPublicKey> read_public_key(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(const std::string text, read_text(path, 4096));
  auto key = parse_public_key(text);
  if (!key.ok()) return make_error(key.error().code, path + ": " + key.error().message);
  return key;
}

Expected<MinisignSecretKey> read_secret_key(const std::string& path, const std::string& password) {
  init_sodium();
  EDGELLM_ASSIGN_OR_RETURN(const std::string text, read_text(path, 4096));
  const auto lines = lines_of(text);
  if (lines.size() != 2 || lines[0].rfind(kUntrusted, 0) != 0) {
    return make_error(ErrorCode::kFormat, path + ": expected an 'untrusted comment:' line and a base64 line");
  }
  std::vector<uint8_t> bin;
  if (!unbase64(lines[1], bin, kSecretKeyBytes)) {
    return make_error(ErrorCode::kFormat, path + ": not a minisign secret key (base64 of " +
                                              std::to_string(kSecretKeyBytes) + " bytes)");
  }
  if (std::memcmp(bin.data(), kSigAlg, 2) != 0 || std::memcmp(bin.data() + 4, kChkAlg, 2) != 0) {
    return make_error(ErrorCode::kUnsupported, path + ": not an Ed25519 key with a BLAKE2b checksum");
  }
  uint8_t* keynum_sk = bin.data() + 2 + 2 + 2 + 32 + 8 + 8;
  if (std::memcmp(bin.data() + 2, kKdfScrypt, 2) == 0) {
    if (password.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        path + ": the secret key is password-protected; give the password (EDGELLM_KEY_PASSWORD)");
    }
    uint64_t opslimit = 0, memlimit = 0;
    for (int i = 7; i >= 0; --i) {
      opslimit = (opslimit << 8) | bin[38 + static_cast<size_t>(i)];
      memlimit = (memlimit << 8) | bin[46 + static_cast<size_t>(i)];
    }
    if (memlimit > (size_t{1} << 32)) return make_error(ErrorCode::kFormat, path + ": scrypt memory limit is implausible");
    std::array<uint8_t, 104> stream{};
    if (crypto_pwhash_scryptsalsa208sha256(stream.data(), stream.size(), password.data(), password.size(),
                                           bin.data() + 6, opslimit, static_cast<size_t>(memlimit)) != 0) {
      return make_error(ErrorCode::kOutOfMemory, path + ": not enough memory to derive the key from the password");
    }
    for (size_t i = 0; i < stream.size(); ++i) keynum_sk[i] ^= stream[i];
    sodium_memzero(stream.data(), stream.size());
  } else if (std::memcmp(bin.data() + 2, kKdfNone, 2) != 0) {
    return make_error(ErrorCode::kUnsupported, path + ": unknown key derivation (expected scrypt or none)");
  }
  MinisignSecretKey key;
  std::memcpy(key.key_id.data(), keynum_sk, 8);
  std::memcpy(key.key.data(), keynum_sk + 8, 64);
  // minisign fills the checksum only when it encrypts the key (an unencrypted -W key has 32 zero bytes there);
  // edgellm writes it always, so a damaged key of either kind is found when the checksum is present.
  const auto sum = secret_key_checksum(key);
  const bool unencrypted = std::memcmp(bin.data() + 2, kKdfNone, 2) == 0;
  const bool absent = unencrypted && sodium_is_zero(keynum_sk + 72, 32) == 1;
  const bool ok = absent || sodium_memcmp(sum.data(), keynum_sk + 72, 32) == 0;
  sodium_memzero(bin.data(), bin.size());
  if (!ok) return make_error(ErrorCode::kInvalidArgument, path + ": checksum mismatch (a wrong password, or a damaged key)");
  return key;
}

Expected<std::string> sign_file(const std::string& path, const MinisignSecretKey& key, const std::string& trusted_comment) {
  init_sodium();
  if (trusted_comment.find('\n') != std::string::npos || trusted_comment.find('\r') != std::string::npos) {
    return make_error(ErrorCode::kInvalidArgument, "the trusted comment must be one line");
  }
  EDGELLM_ASSIGN_OR_RETURN(const auto hash, hash_file(path));
  std::vector<uint8_t> sig(kSigAlgHashed, kSigAlgHashed + 2);
  sig.insert(sig.end(), key.key_id.begin(), key.key_id.end());
  sig.resize(kSignatureBytes);
  crypto_sign_detached(sig.data() + 10, nullptr, hash.data(), hash.size(), key.key.data());
  std::vector<uint8_t> global_message(sig.begin() + 10, sig.end());
  global_message.insert(global_message.end(), trusted_comment.begin(), trusted_comment.end());
  std::array<uint8_t, 64> global{};
  crypto_sign_detached(global.data(), nullptr, global_message.data(), global_message.size(), key.key.data());
  return std::string(kUntrusted) + "signature from edgellm secret key " + key.public_key().key_id_hex() + "\n" +
         base64(sig.data(), sig.size()) + "\n" + kTrusted + trusted_comment + "\n" + base64(global.data(), global.size()) + "\n";
}

Status verify_file(const std::string& path, const std::string& signature_text, const MinisignPublicKey& key,
                   std::string* trusted_comment) {
  init_sodium();
  const auto lines = lines_of(signature_text);
  if (lines.size() != 4 || lines[0].rfind(kUntrusted, 0) != 0 || lines[2].rfind(kTrusted, 0) != 0) {
    return make_error(ErrorCode::kFormat, "signature: expected 4 lines (untrusted comment, signature, trusted comment, "
                                          "global signature)");
  }
  std::vector<uint8_t> sig, global;
  if (!unbase64(lines[1], sig, kSignatureBytes) || !unbase64(lines[3], global, 64)) {
    return make_error(ErrorCode::kFormat, "signature: a base64 line is damaged");
  }
  const bool hashed = std::memcmp(sig.data(), kSigAlgHashed, 2) == 0;
  if (!hashed && std::memcmp(sig.data(), kSigAlg, 2) != 0) {
    return make_error(ErrorCode::kUnsupported, "signature: unknown algorithm (expected Ed25519, \"ED\" or \"Ed\")");
  }
  if (std::memcmp(sig.data() + 2, key.key_id.data(), 8) != 0) {
    MinisignPublicKey other;
    std::memcpy(other.key_id.data(), sig.data() + 2, 8);
    return make_error(ErrorCode::kInvalidArgument, "signed with key " + other.key_id_hex() + ", not with the trusted key " +
                                                       key.key_id_hex());
  }
  bool file_ok = false;
  if (hashed) {
    EDGELLM_ASSIGN_OR_RETURN(const auto hash, hash_file(path));
    file_ok = crypto_sign_verify_detached(sig.data() + 10, hash.data(), hash.size(), key.key.data()) == 0;
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
    const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    file_ok = crypto_sign_verify_detached(sig.data() + 10, reinterpret_cast<const uint8_t*>(data.data()), data.size(),
                                          key.key.data()) == 0;
  }
  if (!file_ok) {
    return make_error(ErrorCode::kInvalidArgument,
                      "the signature does not match the file's contents (the file was modified, truncated or replaced)");
  }
  const std::string comment = lines[2].substr(std::strlen(kTrusted));
  std::vector<uint8_t> message(sig.begin() + 10, sig.end());
  message.insert(message.end(), comment.begin(), comment.end());
  if (crypto_sign_verify_detached(global.data(), message.data(), message.size(), key.key.data()) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "the trusted comment does not match its signature (it was edited)");
  }
  if (trusted_comment) *trusted_comment = comment;
  return {};
}

Status verify_model_signature(const std::string& model_path, const std::string& public_key_path) {
  std::error_code ec;
  if (std::filesystem::is_directory(model_path, ec)) {
    return make_error(ErrorCode::kInvalidArgument, model_path +
                                                       ": a signature covers one model file; convert the directory to "
                                                       "GGUF (edgellm convert) and sign that");
  }
  auto key = read_public_key(public_key_path);
  if (!key.ok()) return make_error(key.error().code, "signature check: " + key.error().message);
  const std::string sig_path = model_path + ".minisig";
  if (!std::filesystem::exists(sig_path, ec)) {
    return make_error(ErrorCode::kInvalidArgument, model_path + ": not signed (no " + sig_path +
                                                       "); a signature is required (edgellm sign)");
  }
  auto text = read_text(sig_path, 16384);
  if (!text.ok()) return text.take_error();
  const Status st = verify_file(model_path, *text, *key);
  if (!st.ok()) return make_error(st.error().code, model_path + ": signature check failed: " + st.error().message);
  return {};
}

}  // namespace edgellm
