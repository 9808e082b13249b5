// edgellm verify MODEL.gguf: structure and stored content digest, so a corrupted download is found before
// loading rather than by a crash.
#include <cstdio>

#include "cli/commands.h"
#include "format/gguf.h"
#include "model/model.h"

namespace edgellm::cli {
namespace {

int run_verify(const std::string& path) {
  auto gguf = GgufFile::open(path);
  if (!gguf.ok()) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s\n", gguf.error().message.c_str());
    return 1;
  }
  std::printf("structure: ok (GGUF v%u, %zu tensors, %zu metadata keys)\n", gguf->version(), gguf->tensors().size(),
              gguf->metadata().size());
  int status = 0;
  if (gguf->find("edgellm.content.sha256")) {
    auto stored = gguf->get_string("edgellm.content.sha256");
    auto actual = gguf_content_digest(*gguf);
    if (!stored.ok() || !actual.ok()) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s\n",
                   (!stored.ok() ? stored.error() : actual.error()).message.c_str());
      return 1;
    }
    if (*stored != *actual) {
      std::fprintf(stderr, "edgellm verify: FAILED: %s: content digest mismatch (stored %s, actual %s): the file is "
                           "corrupted\n", path.c_str(), stored->c_str(), actual->c_str());
      return 1;
    }
    std::printf("content:   ok (sha256 %s)\n", actual->c_str());
  } else {
    std::printf("content:   no stored digest (file not written by edgellm convert); structure checked only\n");
  }
  auto model = Model::load(path);
  if (!model.ok()) {
    std::fprintf(stderr, "edgellm verify: FAILED: %s\n", model.error().message.c_str());
    status = 1;
  } else {
    std::printf("model:     ok (%s, %lld layers, all tensors present with the expected shapes)\n",
                arch_name((*model)->config().arch), static_cast<long long>((*model)->config().n_layer));
  }
  return status;
}

}  // namespace

void add_verify_command(CLI::App& app, int& exit_code) {
  auto path = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("verify", "Check a GGUF file's structure, stored content digest and tensors");
  cmd->add_option("model", *path, "GGUF file")->required();
  cmd->callback([path, &exit_code] { exit_code = run_verify(*path); });
}

}  // namespace edgellm::cli
