// edgellm verify MODEL.gguf [--pubkey KEY]: the signature (MODEL.minisig, when a public key is given), the
// structure and the stored content digest, so a tampered or corrupted file is found before loading rather than
// by a wrong answer or a crash.
#include <cstdio>
#include <fstream>
#include <iterator>

#include "cli/commands.h"
#include "format/gguf.h"
#include "model/model.h"
#include "security/encrypted_model.h"
#include "security/minisign.h"
#include "security/open_model_file.h"

namespace edgellm::cli {
namespace {

// Structure and stored content digest, from one opening of the file (then released).
bool check_contents(const std::string& path, const std::string& key_file) {
  auto gguf = open_model_gguf(path, key_file);
  if (!gguf.ok()) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s\n", gguf.error().message.c_str());
    return false;
  }
  std::printf("structure: ok (GGUF v%u, %zu tensors, %zu metadata keys)\n", gguf->version(), gguf->tensors().size(),
              gguf->metadata().size());
  if (!gguf->find("edgellm.content.sha256")) {
    std::printf("content:   no stored digest (file not written by edgellm convert); structure checked only\n");
    return true;
  }
  auto stored = gguf->get_string("edgellm.content.sha256");
  auto actual = gguf_content_digest(*gguf);
  if (!stored.ok() || !actual.ok()) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s\n", (!stored.ok() ? stored.error() : actual.error()).message.c_str());
    return false;
  }
  if (*stored != *actual) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s: content digest mismatch (stored %s, actual %s): the file is "
                         "corrupted\n", path.c_str(), stored->c_str(), actual->c_str());
    return false;
  }
  std::printf("content:   ok (sha256 %s)\n", actual->c_str());
  return true;
}

int run_verify(const std::string& path, const std::string& pubkey, const std::string& signature,
               const std::string& key_file) {
  if (!pubkey.empty()) {
    auto key = read_public_key(pubkey);
    if (!key.ok()) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s\n", key.error().message.c_str());
      return 1;
    }
    const std::string sig_path = signature.empty() ? path + ".minisig" : signature;
    std::ifstream in(sig_path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s: not signed (no %s)\n", path.c_str(), sig_path.c_str());
      return 1;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string comment;
    const Status st = verify_file(path, text, *key, &comment);
    if (!st.ok()) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s: %s\n", path.c_str(), st.error().message.c_str());
      return 1;
    }
    std::printf("signature: ok (key %s; trusted comment: %s)\n", key->key_id_hex().c_str(), comment.c_str());
  }
  const bool encrypted = is_encrypted_model_file(path);
  EncryptedModelInfo info;
  if (encrypted) {
    auto read = read_encrypted_model_info(path);
    if (!read.ok()) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s\n", read.error().message.c_str());
      return 1;
    }
    info = *read;
  }
  // An encrypted file's every chunk is authenticated as it is decrypted here.
  if (!check_contents(path, key_file)) return 1;
  if (encrypted) {
    std::printf("encrypted: ok (key %s; %llu chunks of %u bytes authenticated, %llu bytes of model)\n",
                info.key_id_hex().c_str(), static_cast<unsigned long long>(info.n_chunks), info.chunk_bytes,
                static_cast<unsigned long long>(info.plaintext_bytes));
  }
  ModelLoadOptions options;
  options.key_file = key_file;
  auto model = Model::load(path, options);
  if (!model.ok()) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s\n", model.error().message.c_str());
    return 1;
  }
  std::printf("model:     ok (%s, %lld layers, all tensors present with the expected shapes)\n",
              arch_name((*model)->config().arch), static_cast<long long>((*model)->config().n_layer));
  return 0;
}

}  // namespace

void add_verify_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string path, pubkey, signature, key_file;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "verify", "Check a GGUF file's signature, encryption, structure, stored content digest and tensors");
  cmd->add_option("model", a->path, "GGUF file (or an encrypted one)")->required();
  cmd->add_option("--pubkey", a->pubkey, "Check MODEL.minisig with this public key (edgellm keygen or minisign -G)")
      ->check(CLI::ExistingFile);
  cmd->add_option("-x,--signature", a->signature, "Signature file (default: MODEL.minisig)");
  cmd->add_option("--key-file", a->key_file,
                  "Key of an encrypted model (default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or the systemd "
                  "credential edgellm-model-key)")
      ->check(CLI::ExistingFile);
  cmd->callback([a, &exit_code] { exit_code = run_verify(a->path, a->pubkey, a->signature, a->key_file); });
}

}  // namespace edgellm::cli
