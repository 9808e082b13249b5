#include "convert/gguf_requantizer.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "convert/quant_recipe.h"
#include "convert/tensor_quantizer.h"
#include "format/gguf.h"
#include "kernels/quantize.h"
#include "model/config_gguf.h"
#include "model/model.h"
#include "util/log.h"

namespace edgellm {
namespace {

// Keys this step rewrites; everything else is copied in file order.
bool is_rewritten_key(const std::string& key) {
  return key == "general.file_type" || key == "general.quantization_version" || key == "edgellm.content.sha256" ||
         key == "edgellm.version" || key.rfind("edgellm.quant.", 0) == 0;
}

bool is_float_type(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

}  // namespace

Status requantize_gguf(const std::string& in_path, const std::string& out_path, const ConvertOptions& options) {
  EDGELLM_ASSIGN_OR_RETURN(const QuantRecipe recipe, quant_recipe_from_name(options.quant));
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(in_path));
  const GgufFile* in = model->gguf();
  if (!in) return make_error(ErrorCode::kInvalidArgument, in_path + ": not a GGUF file (use `edgellm convert`)");
  const ModelConfig& c = model->config();

  auto pool = std::make_shared<ThreadPool>(options.n_threads);
  auto settings = std::make_shared<QuantizeSettings>();
  settings->search = options.search;
  settings->gptq = options.gptq;
  // Calibration only pays where something is quantized with the search.
  if (!options.calib_path.empty() && options.calib_path != "none" && options.search &&
      dtype_traits(recipe.matrix_type).quantized) {
    EDGELLM_ASSIGN_OR_RETURN(*settings, calibrate(in_path, options.calib_path, options.calib_tokens,
                                                  options.calib_window, *settings, *pool));
  }

  // Plan: the target type of every tensor, checked before anything is written.
  struct Planned {
    const GgufTensorInfo* info;
    DType type;
  };
  std::vector<Planned> plan;
  std::set<DType> types_used;
  for (const GgufTensorInfo& t : in->tensors()) {
    TensorRole role;
    int64_t layer;
    DType type = t.type;
    if (t.ne.size() >= 2 && tensor_role_from_gguf_name(t.name, &role, &layer)) {
      bool fallback = false;
      type = tensor_type_for(recipe, role, t.ne[0], false, c.tied_embeddings, &fallback);
      if (fallback) {
        log_message(type == DType::kF16 ? LogLevel::kWarn : LogLevel::kInfo,
                    "%s: rows of %lld elements are not whole %s blocks: stored as %s", t.name.c_str(),
                    static_cast<long long>(t.ne[0]), dtype_name(recipe.matrix_type), dtype_name(type));
      }
      if (type != t.type && !is_float_type(t.type)) {
        return make_error(ErrorCode::kUnsupported, in_path + ": tensor '" + t.name + "' is stored as " +
                                                       dtype_name(t.type) + "; re-quantize from an f32, f16 or bf16 file");
      }
    }
    plan.push_back({&t, type});
    types_used.insert(type);
  }

  GgufWriter w(in->alignment());
  for (const auto& [key, value] : in->metadata()) {
    if (!is_rewritten_key(key)) w.set(key, value);
  }
  w.set_u32("general.file_type", gguf_file_type(recipe.matrix_type));
  if (dtype_traits(recipe.matrix_type).quantized) w.set_u32("general.quantization_version", 2);
  w.set_string("edgellm.version", EDGELLM_VERSION);
  write_quant_metadata(w, recipe, *settings, types_used);
  std::string source = std::filesystem::path(in_path).filename().string();
  if (auto digest = in->get_string("edgellm.content.sha256"); digest.ok()) source += " content-sha256:" + *digest;
  w.set_string("edgellm.quant.source", source);
  w.set_content_digest_key("edgellm.content.sha256");

  for (const Planned& p : plan) {
    const TensorRef src = in->tensor_ref(*p.info);
    if (p.type == p.info->type) {
      EDGELLM_TRY(w.add_tensor(p.info->name, p.type, p.info->ne, [src](std::vector<uint8_t>& out) -> Status {
        const auto* bytes = static_cast<const uint8_t*>(src.data);
        out.assign(bytes, bytes + src.size_bytes);
        return {};
      }));
      continue;
    }
    std::vector<float> importance = tensor_importance(settings->stats.get(), p.info->name, p.info->ne[0]);
    const DType type = p.type;
    EDGELLM_TRY(w.add_tensor(p.info->name, type, p.info->ne,
                             [src, type, pool, settings, name = p.info->name, importance = std::move(importance)](
                                 std::vector<uint8_t>& out) -> Status {
      const int64_t n = src.n_elements();
      std::vector<float> values(static_cast<size_t>(n));
      EDGELLM_TRY(dequantize_row(src.type, src.data, values.data(), n));
      return quantize_tensor_rows(type, values.data(), src.ne[0], n / src.ne[0], importance, *settings, *pool, out,
                                  name);
    }));
  }

  const auto start = std::chrono::steady_clock::now();
  return w.write(out_path, [&](size_t done, size_t total, uint64_t bytes) {
    if (!options.progress) return;
    ConvertProgress p;
    p.tensors_done = done;
    p.tensors_total = total;
    p.bytes_written = bytes;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    options.progress(p);
  });
}

}  // namespace edgellm
