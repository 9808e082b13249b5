// edgellm inspect FILE: architecture, dimensions, tensor table, metadata.
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "format/gguf.h"
#include "model/model.h"
#include "security/encrypted_model.h"
#include "security/open_model_file.h"

namespace edgellm::cli {
namespace {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

void print_config(const ModelConfig& c, size_t weight_bytes) {
  std::printf("architecture   %s\n", arch_name(c.arch));
  std::printf("vocab          %lld\n", static_cast<long long>(c.n_vocab));
  std::printf("hidden         %lld\n", static_cast<long long>(c.n_embd));
  std::printf("layers         %lld\n", static_cast<long long>(c.n_layer));
  std::printf("heads          %lld (kv %lld, head_dim %lld, rope dims %lld)\n", static_cast<long long>(c.n_head),
              static_cast<long long>(c.n_head_kv), static_cast<long long>(c.head_dim), static_cast<long long>(c.n_rot));
  std::printf("ffn            %lld\n", static_cast<long long>(c.n_ff));
  std::printf("context        %lld (training)\n", static_cast<long long>(c.n_ctx_train));
  std::printf("rope           theta %g, %s pairs%s\n", c.rope_theta,
              c.rope_style == RopeStyle::kNeox ? "neox" : "interleaved",
              c.rope_scaling.type == RopeScalingType::kLinear   ? ", linear scaling"
              : c.rope_scaling.type == RopeScalingType::kLlama3 ? ", llama3 scaling"
                                                                 : "");
  std::printf("rms eps        %g\n", c.rms_eps);
  std::printf("features       %s%s%s%s%s%s\n", c.qkv_bias ? "qkv-bias " : "", c.qk_norm ? "qk-norm " : "",
              c.fused_qkv ? "fused-qkv " : "", c.tied_embeddings ? "tied-embeddings " : "",
              c.dynamic_ntk ? "dynamic-ntk " : "", c.logn_attn ? "logn-attn" : "");
  std::printf("weights        %s\n", human_bytes(static_cast<double>(weight_bytes)).c_str());
}

struct Row {
  std::string name, type, shape;
  size_t bytes;
};

void print_tensors(const std::vector<Row>& rows) {
  size_t width = 6;
  for (const auto& r : rows) width = std::max(width, r.name.size());
  std::map<std::string, size_t> by_type;
  std::printf("\n%-*s  %-6s  %-22s  %s\n", static_cast<int>(width), "tensor", "type", "shape", "bytes");
  for (const auto& r : rows) {
    std::printf("%-*s  %-6s  %-22s  %zu\n", static_cast<int>(width), r.name.c_str(), r.type.c_str(), r.shape.c_str(),
                r.bytes);
    by_type[r.type] += r.bytes;
  }
  std::printf("\n%zu tensors:", rows.size());
  for (const auto& [type, bytes] : by_type) std::printf("  %s %s", type.c_str(), human_bytes(static_cast<double>(bytes)).c_str());
  std::printf("\n");
}

int run_inspect(const std::string& path, bool show_tensors, bool show_metadata, const std::string& key_file) {
  if (is_encrypted_model_file(path)) {
    auto info = read_encrypted_model_info(path);
    if (!info.ok()) {
      std::fprintf(stderr, "edgellm inspect: %s\n", info.error().message.c_str());
      return 1;
    }
    std::printf("encrypted      key %s, %llu chunks of %u bytes, %s of model\n", info->key_id_hex().c_str(),
                static_cast<unsigned long long>(info->n_chunks), info->chunk_bytes,
                human_bytes(static_cast<double>(info->plaintext_bytes)).c_str());
  }
  ModelLoadOptions options;
  options.key_file = key_file;
  auto model = Model::load(path, options);
  if (!model.ok()) {
    std::fprintf(stderr, "edgellm inspect: %s\n", model.error().message.c_str());
    // Still show the raw structure of a GGUF that parses but is not a runnable model.
    if (model.error().code == ErrorCode::kIo || model.error().code == ErrorCode::kFormat ||
        model.error().code == ErrorCode::kInvalidArgument) {
      return 1;
    }
  } else {
    std::printf("file           %s\n", path.c_str());
    print_config((*model)->config(), (*model)->weight_bytes());
  }
  std::vector<Row> rows;
  if (model.ok() && (*model)->hf()) {
    const HfDirectory& hf = *(*model)->hf();
    for (const auto& t : hf.weights.tensors()) {
      rows.push_back({t.ref.name, t.dtype, shape_string(t.shape), t.ref.size_bytes});
    }
    if (show_tensors) print_tensors(rows);
    if (show_metadata) std::printf("\nconfig.json\n%s\n", hf.config.dump(2).c_str());
    return 0;
  }
  // The model's own parse when it loaded; else the file's raw structure.
  Expected<GgufFile> opened = make_error(ErrorCode::kInternal, "");
  const GgufFile* gguf = model.ok() ? (*model)->gguf() : nullptr;
  if (gguf == nullptr) {
    opened = open_model_gguf(path, key_file);
    if (!opened.ok()) {
      std::fprintf(stderr, "edgellm inspect: %s\n", opened.error().message.c_str());
      return 1;
    }
    gguf = &*opened;
  }
  for (const auto& t : gguf->tensors()) rows.push_back({t.name, dtype_name(t.type), shape_string(t.ne), t.size_bytes});
  if (show_tensors) print_tensors(rows);
  if (show_metadata) {
    std::printf("\nGGUF v%u, alignment %zu, %zu metadata keys\n", gguf->version(), gguf->alignment(),
                gguf->metadata().size());
    for (const auto& [key, value] : gguf->metadata()) {
      std::printf("  %-44s %s\n", key.c_str(), value.to_display_string().c_str());
    }
  }
  return model.ok() ? 0 : 1;
}

}  // namespace

void add_inspect_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's architecture, dimensions, tensors and metadata");
  auto path = std::make_shared<std::string>();
  auto no_tensors = std::make_shared<bool>(false);
  auto no_metadata = std::make_shared<bool>(false);
  cmd->add_option("model", *path, "GGUF file or Hugging Face model directory")->required();
  cmd->add_flag("--no-tensors", *no_tensors, "Do not list the tensors");
  cmd->add_flag("--no-metadata", *no_metadata, "Do not list the metadata");
  auto key_file = std::make_shared<std::string>();
  cmd->add_option("--key-file", *key_file,
                  "Key of an encrypted model (default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or the systemd "
                  "credential edgellm-model-key)")
      ->check(CLI::ExistingFile);
  cmd->callback([=, &exit_code] { exit_code = run_inspect(*path, !*no_tensors, !*no_metadata, *key_file); });
}

}  // namespace edgellm::cli
