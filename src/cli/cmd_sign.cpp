// edgellm keygen / sign: Ed25519 signatures of model files in minisign's formats (security/minisign.h).
// `edgellm verify MODEL --pubkey KEY` checks them (cmd_verify.cpp); `--require-signature KEY` on run, chat,
// serve and bench (and EDGELLM_REQUIRE_SIGNATURE) refuses a model whose signature does not verify.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "security/minisign.h"
#include "security/model_key.h"

namespace edgellm::cli {
namespace {

// Writes `text` to `path` with `mode`; refuses to replace an existing file unless `force`.
bool write_file(const std::string& path, const std::string& text, mode_t mode, bool force) {
  const int flags = O_WRONLY | O_CREAT | (force ? O_TRUNC : O_EXCL);
  const int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) {
    std::fprintf(stderr, "edgellm: %s: %s%s\n", path.c_str(), std::strerror(errno),
                 errno == EEXIST ? " (use --force to replace it)" : "");
    return false;
  }
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) std::fprintf(stderr, "edgellm: %s: write failed\n", path.c_str());
  return ok;
}

struct KeygenArgs {
  std::string secret_key = "edgellm.key";
  std::string public_key = "edgellm.pub";
  std::string encryption_key;
  bool force = false;
};

int run_keygen(const KeygenArgs& a) {
  if (!a.encryption_key.empty()) {
    const ModelKey key = ModelKey::generate();
    if (!write_file(a.encryption_key, format_model_key(key), 0600, a.force)) return 1;
    std::printf("model encryption key %s -> %s (mode 0600; whoever reads it can decrypt the models)\n",
                key.id_hex().c_str(), a.encryption_key.c_str());
    return 0;
  }
  const MinisignSecretKey sk = generate_minisign_key();
  if (!write_file(a.secret_key, format_secret_key(sk), 0600, a.force)) return 1;
  if (!write_file(a.public_key, format_public_key(sk.public_key()), 0644, a.force)) return 1;
  std::printf("key %s\nsecret key: %s (keep it off the board; not password-protected)\npublic key: %s\n",
              sk.public_key().key_id_hex().c_str(), a.secret_key.c_str(), a.public_key.c_str());
  return 0;
}

struct SignArgs {
  std::string model;
  std::string secret_key;
  std::string trusted_comment;
  std::string output;
};

int run_sign(const SignArgs& a) {
  const char* password = std::getenv("EDGELLM_KEY_PASSWORD");
  auto sk = read_secret_key(a.secret_key, password ? password : "");
  if (!sk.ok()) {
    std::fprintf(stderr, "edgellm sign: %s\n", sk.error().message.c_str());
    return 1;
  }
  std::string comment = a.trusted_comment;
  if (comment.empty()) {  // minisign's default: when and what was signed
    comment = "timestamp:" + std::to_string(static_cast<long long>(std::time(nullptr))) + "\tfile:" +
              std::filesystem::path(a.model).filename().string() + "\thashed";
  }
  auto sig = sign_file(a.model, *sk, comment);
  if (!sig.ok()) {
    std::fprintf(stderr, "edgellm sign: %s\n", sig.error().message.c_str());
    return 1;
  }
  const std::string out = a.output.empty() ? a.model + ".minisig" : a.output;
  if (!write_file(out, *sig, 0644, /*force=*/true)) return 1;
  std::printf("signed %s with key %s -> %s\n", a.model.c_str(), sk->public_key().key_id_hex().c_str(), out.c_str());
  return 0;
}

}  // namespace

void add_sign_commands(CLI::App& app, int& exit_code) {
  auto k = std::make_shared<KeygenArgs>();
  auto* keygen = app.add_subcommand("keygen", "Make an Ed25519 key pair for signing models (minisign's formats)");
  keygen->add_option("-s,--secret-key", k->secret_key, "Secret key file to write (mode 0600)")->capture_default_str();
  keygen->add_option("-p,--public-key", k->public_key, "Public key file to write")->capture_default_str();
  keygen->add_option("--encryption-key", k->encryption_key,
                     "Instead: write a new model encryption key to this file (mode 0600), for edgellm encrypt");
  keygen->add_flag("-f,--force", k->force, "Replace existing files");
  keygen->callback([k, &exit_code] { exit_code = run_keygen(*k); });

  auto s = std::make_shared<SignArgs>();
  auto* sign = app.add_subcommand("sign", "Sign a model file: writes MODEL.minisig (minisign -V can check it)");
  sign->add_option("model", s->model, "Model file (GGUF)")->required()->check(CLI::ExistingFile);
  sign->add_option("-s,--key", s->secret_key,
                   "Secret key file (edgellm keygen, or minisign -G; a password-protected one reads "
                   "EDGELLM_KEY_PASSWORD)")
      ->required();
  sign->add_option("-t,--trusted-comment", s->trusted_comment,
                   "One line signed along with the file (default: timestamp and file name)");
  sign->add_option("-o,--output", s->output, "Signature file (default: MODEL.minisig)");
  sign->callback([s, &exit_code] { exit_code = run_sign(*s); });
}

}  // namespace edgellm::cli
