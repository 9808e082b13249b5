// edgellm encrypt / decrypt: model files encrypted at rest (security/encrypted_model.h). The runtime reads
// encrypted files directly (run, chat, serve, bench, the C API, rkllm_init); decrypt is for moving a model
// off the board's format, e.g. to inspect it with other tools.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "security/encrypted_model.h"
#include "security/model_key.h"
#include "util/elapsed.h"

namespace edgellm::cli {
namespace {

struct CryptArgs {
  std::string input, output, key_file;
  uint32_t chunk_bytes = kDefaultEncryptedChunkBytes;
  bool force = false;
};

// Output checks shared by both directions; false (after a message) when the output may not be written.
bool output_allowed(const char* command, const CryptArgs& a, const std::string& out) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && std::filesystem::equivalent(a.input, out, ec)) {
    std::fprintf(stderr, "edgellm %s: the output %s is the input file\n", command, out.c_str());
    return false;
  }
  if (!a.force && std::filesystem::exists(out, ec)) {
    std::fprintf(stderr, "edgellm %s: %s exists (use --force to replace it)\n", command, out.c_str());
    return false;
  }
  return true;
}

int run_encrypt(const CryptArgs& a) {
  std::error_code ec;
  if (std::filesystem::is_directory(a.input, ec)) {
    std::fprintf(stderr, "edgellm encrypt: %s is a directory: convert it to one GGUF file first (edgellm convert)\n",
                 a.input.c_str());
    return 1;
  }
  char magic[4] = {};
  std::ifstream(a.input, std::ios::binary).read(magic, sizeof(magic));
  if (is_encrypted_model_file(a.input)) {
    std::fprintf(stderr, "edgellm encrypt: %s is already encrypted\n", a.input.c_str());
    return 1;
  }
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    std::fprintf(stderr, "edgellm encrypt: %s is not a GGUF file (edgellm encrypts models as GGUF files)\n",
                 a.input.c_str());
    return 1;
  }
  const std::string out = a.output.empty() ? a.input + ".enc" : a.output;
  if (!output_allowed("encrypt", a, out)) return 1;
  auto key = find_model_key(a.key_file);
  if (!key.ok()) {
    std::fprintf(stderr, "edgellm encrypt: %s\n", key.error().message.c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  if (const Status st = encrypt_model_file(a.input, out, *key, a.chunk_bytes); !st.ok()) {
    std::fprintf(stderr, "edgellm encrypt: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("encrypted %s -> %s with key %s (%.2f s)\n", a.input.c_str(), out.c_str(), key->id_hex().c_str(),
              seconds_since(start));
  return 0;
}

int run_decrypt(const CryptArgs& a) {
  if (!is_encrypted_model_file(a.input)) {
    std::fprintf(stderr, "edgellm decrypt: %s is not an encrypted model file\n", a.input.c_str());
    return 1;
  }
  std::string out = a.output;
  if (out.empty()) {
    if (!a.input.ends_with(".enc") || a.input.size() == 4) {
      std::fprintf(stderr, "edgellm decrypt: give the output file with -o (the input's name does not end in .enc)\n");
      return 1;
    }
    out = a.input.substr(0, a.input.size() - 4);
  }
  if (!output_allowed("decrypt", a, out)) return 1;
  auto key = find_model_key(a.key_file);
  if (!key.ok()) {
    std::fprintf(stderr, "edgellm decrypt: %s\n", key.error().message.c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  if (const Status st = decrypt_model_file(a.input, out, *key); !st.ok()) {
    std::fprintf(stderr, "edgellm decrypt: %s\n", st.error().message.c_str());
    return 1;
  }
  std::printf("decrypted %s -> %s (every chunk authenticated; %.2f s)\n", a.input.c_str(), out.c_str(),
              seconds_since(start));
  return 0;
}

void add_key_option(CLI::App* cmd, CryptArgs& a) {
  cmd->add_option("-k,--key-file", a.key_file,
                  "Model key (edgellm keygen --encryption-key); default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or "
                  "the systemd credential edgellm-model-key")
      ->check(CLI::ExistingFile);
  cmd->add_flag("-f,--force", a.force, "Replace an existing output file");
}

}  // namespace

void add_encrypt_commands(CLI::App& app, int& exit_code) {
  auto e = std::make_shared<CryptArgs>();
  auto* encrypt = app.add_subcommand(
      "encrypt", "Encrypt a GGUF model at rest (XChaCha20-Poly1305, authenticated chunks); run, chat and serve read it");
  encrypt->add_option("model", e->input, "GGUF file")->required()->check(CLI::ExistingFile);
  encrypt->add_option("-o,--output", e->output, "Encrypted file (default: MODEL.enc)");
  encrypt->add_option("--chunk-size", e->chunk_bytes, "Bytes per authenticated chunk (4096 .. 67108864)")
      ->check(CLI::Range(uint32_t{4096}, uint32_t{64} << 20))
      ->capture_default_str();
  add_key_option(encrypt, *e);
  encrypt->callback([e, &exit_code] { exit_code = run_encrypt(*e); });

  auto d = std::make_shared<CryptArgs>();
  auto* decrypt = app.add_subcommand("decrypt", "Decrypt an encrypted model back to its GGUF file");
  decrypt->add_option("model", d->input, "Encrypted model file")->required()->check(CLI::ExistingFile);
  decrypt->add_option("-o,--output", d->output, "GGUF file to write (default: MODEL without .enc)");
  add_key_option(decrypt, *d);
  decrypt->callback([d, &exit_code] { exit_code = run_decrypt(*d); });
}

}  // namespace edgellm::cli
