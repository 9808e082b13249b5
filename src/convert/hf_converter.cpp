#include "convert/hf_converter.h"

#include <chrono>
#include <filesystem>
#include <set>

#include "convert/quant_recipe.h"
#include "convert/tensor_quantizer.h"
#include "format/gguf.h"
#include "kernels/quantize.h"
#include "model/config_gguf.h"
#include "model/model.h"
#include "model/qwen35_gguf_layout.h"
#include "model/rope_permute.h"
#include "tokenizer/tokenizer.h"
#include "util/log.h"
#include "util/sha256.h"
#include "util/thread_pool.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;

struct PlannedTensor {
  TensorRole role;
  int64_t layer;
  const SafetensorsTensor* source;
};

// Every tensor of the model in llama.cpp's order, with its source in the safetensors.
Expected<std::vector<PlannedTensor>> plan(const Model& model, NameScheme scheme) {
  const ModelConfig& c = model.config();
  const Safetensors& st = model.hf()->weights;
  std::vector<PlannedTensor> out;
  auto add = [&](TensorRole role, int64_t layer) {
    if (!tensor_role_in_arch(c.arch, role)) return;
    const auto name = tensor_name(scheme, role, layer);
    if (!name) return;
    if (const SafetensorsTensor* t = find_hf_tensor(st, *name)) out.push_back({role, layer, t});
  };
  add(TensorRole::kTokenEmbd, -1);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    for (int r = static_cast<int>(TensorRole::kAttnNorm); r < static_cast<int>(TensorRole::kCount); ++r) {
      add(static_cast<TensorRole>(r), il);
    }
  }
  add(TensorRole::kOutputNorm, -1);
  if (!c.tied_embeddings) add(TensorRole::kOutput, -1);

  // Anything else in the checkpoint is not part of this architecture: refuse rather than drop weights.
  std::set<std::string> used;
  for (const auto& p : out) used.insert(p.source->ref.name);
  size_t skipped_vision = 0, skipped_mtp = 0;
  for (const auto& t : st.tensors()) {
    const std::string& name = t.ref.name;
    if (used.count(name)) continue;
    if (c.tied_embeddings && name == *tensor_name(scheme, TensorRole::kOutput)) continue;
    if (c.arch == Arch::kQwen35) {
      // The text model only: the vision tower and the multi-token-prediction head are left out.
      if (name.rfind("model.visual.", 0) == 0) {
        ++skipped_vision;
        continue;
      }
      if (name.rfind("mtp.", 0) == 0) {
        ++skipped_mtp;
        continue;
      }
    }
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    return make_error(ErrorCode::kFormat, model.path() + ": unexpected tensor '" + name + "' (not part of a " +
                                              arch_name(c.arch) + " model)");
  }
  if (skipped_vision + skipped_mtp > 0) {
    log_message(LogLevel::kInfo, "%s: converting the text model; left out %zu vision-tower and %zu "
                "multi-token-prediction tensors", model.path().c_str(), skipped_vision, skipped_mtp);
  }
  return out;
}

void write_generation_defaults(const HfDirectory& hf, GgufWriter& w) {
  if (!hf.generation_config || !hf.generation_config->is_object()) return;
  const auto& g = *hf.generation_config;
  auto number = [&](const char* key) -> std::optional<double> {
    if (g.contains(key) && g[key].is_number()) return g[key].get<double>();
    return std::nullopt;
  };
  // An explicit `do_sample: false` means greedy decoding in transformers, whatever temperature and the
  // truncations say (they are ignored there): temperature 0 is greedy here too. Without the key only the
  // values present are written (transformers' own default, greedy, is not forced on files that name none).
  const bool greedy = g.contains("do_sample") && g["do_sample"].is_boolean() && !g["do_sample"].get<bool>();
  if (greedy) {
    w.set_f32("general.sampling.temp", 0.0f);
  } else {
    if (auto v = number("temperature")) w.set_f32("general.sampling.temp", static_cast<float>(*v));
    if (auto v = number("top_p")) w.set_f32("general.sampling.top_p", static_cast<float>(*v));
    if (auto v = number("min_p")) w.set_f32("general.sampling.min_p", static_cast<float>(*v));
    if (auto v = number("top_k")) w.set_i32("general.sampling.top_k", static_cast<int32_t>(*v));
  }
  if (auto v = number("repetition_penalty")) w.set_f32("general.sampling.penalty_repeat", static_cast<float>(*v));
  std::vector<int32_t> eos;
  if (g.contains("eos_token_id")) {
    const auto& e = g["eos_token_id"];
    if (e.is_number_integer()) eos.push_back(e.get<int32_t>());
    if (e.is_array()) {
      for (const auto& x : e) {
        if (x.is_number_integer()) eos.push_back(x.get<int32_t>());
      }
    }
  }
  if (!eos.empty()) w.set("edgellm.generation.eos_token_ids", GgufValue::i32_array(eos));
}

Status write_provenance(const HfDirectory& hf, GgufWriter& w) {
  std::vector<std::string> files;
  std::vector<std::string> paths = hf.weights.files();
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "qwen.tiktoken", "model.safetensors.index.json"}) {
    const fs::path p = fs::path(hf.dir) / name;
    std::error_code ec;
    if (fs::exists(p, ec)) paths.push_back(p.string());
  }
  for (const auto& p : paths) {
    EDGELLM_ASSIGN_OR_RETURN(const std::string digest, sha256_file(p));
    files.push_back(fs::path(p).filename().string() + " sha256:" + digest);
  }
  w.set_string("edgellm.version", EDGELLM_VERSION);
  w.set("edgellm.source.files", GgufValue::string_array(files));
  return {};
}

}  // namespace

Status convert_hf_to_gguf(const std::string& hf_dir, const std::string& out_path, const ConvertOptions& options) {
  EDGELLM_ASSIGN_OR_RETURN(const QuantRecipe recipe, quant_recipe_from_name(options.quant));
  if (!is_hf_directory(hf_dir)) {
    return make_error(ErrorCode::kNotFound, hf_dir + ": not a Hugging Face model directory (no config.json)");
  }
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(hf_dir));
  const HfDirectory& hf = *model->hf();
  if (hf.tokenizer_json_path.empty() && hf.tiktoken_path.empty()) {
    return make_error(ErrorCode::kNotFound, hf_dir + ": no tokenizer (tokenizer.json or qwen.tiktoken) to convert");
  }
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::from_path(hf_dir));
  const ModelConfig& c = model->config();
  if (tokenizer->n_vocab() > c.n_vocab) {
    return make_error(ErrorCode::kFormat, hf_dir + ": the tokenizer has " + std::to_string(tokenizer->n_vocab()) +
                                              " tokens but the model only " + std::to_string(c.n_vocab) +
                                              " embedding rows");
  }
  const ArchSpec* spec = find_arch_by_hf_model_type(hf.config["model_type"].get<std::string>());
  EDGELLM_ASSIGN_OR_RETURN(std::vector<PlannedTensor> tensors, plan(*model, spec->hf_scheme));

  auto pool = std::make_shared<ThreadPool>(options.n_threads);
  auto settings = std::make_shared<QuantizeSettings>();
  settings->search = options.search;
  settings->gptq = options.gptq;
  // Calibration only pays where something is quantized with the search.
  if (!options.calib_path.empty() && options.calib_path != "none" && options.search &&
      dtype_traits(recipe.matrix_type).quantized) {
    EDGELLM_ASSIGN_OR_RETURN(*settings, calibrate(hf_dir, options.calib_path, options.calib_tokens,
                                                  options.calib_window, *settings, *pool));
  }
  std::set<DType> types_used;
  for (const PlannedTensor& p : tensors) {
    types_used.insert(tensor_type_for(recipe, p.role, p.source->ref.ne[0], p.source->ref.ne.size() == 1,
                                      c.tied_embeddings, nullptr));
  }

  GgufWriter w;
  write_config_metadata(c, w);
  w.set_string("general.name", fs::path(hf_dir).filename().string());
  w.set_u32("general.file_type", gguf_file_type(recipe.matrix_type));
  if (dtype_traits(recipe.matrix_type).quantized) w.set_u32("general.quantization_version", 2);
  tokenizer->write_gguf_metadata(w, static_cast<int32_t>(c.n_vocab));
  write_generation_defaults(hf, w);
  EDGELLM_TRY(write_provenance(hf, w));
  write_quant_metadata(w, recipe, *settings, types_used);
  w.set_content_digest_key("edgellm.content.sha256");

  for (const PlannedTensor& p : tensors) {
    const TensorRef& src = p.source->ref;
    const bool is_vector = src.ne.size() == 1;
    bool fallback = false;
    const DType type = tensor_type_for(recipe, p.role, src.ne[0], is_vector, c.tied_embeddings, &fallback);
    const std::string name = *tensor_name(NameScheme::kGguf, p.role, p.layer);
    if (fallback) {
      // A smaller group of the same 4-bit family is what `w4a16` means; only f16 deserves a warning.
      log_message(type == DType::kF16 ? LogLevel::kWarn : LogLevel::kInfo,
                  "%s: rows of %lld elements are not whole %s blocks: stored as %s", name.c_str(),
                  static_cast<long long>(src.ne[0]), dtype_name(recipe.matrix_type), dtype_name(type));
    }
    if (!can_dequantize(src.type) || !(src.type == DType::kF32 || src.type == DType::kF16 || src.type == DType::kBF16)) {
      return make_error(ErrorCode::kUnsupported, hf_dir + ": tensor '" + src.name + "': dtype " + p.source->dtype +
                                                     " (expected F32, F16 or BF16)");
    }
    const bool permute = c.arch == Arch::kLlama && (p.role == TensorRole::kAttnQ || p.role == TensorRole::kAttnK ||
                                                    p.role == TensorRole::kAttnQBias || p.role == TensorRole::kAttnKBias);
    const int64_t heads = (p.role == TensorRole::kAttnQ || p.role == TensorRole::kAttnQBias) ? c.n_head : c.n_head_kv;
    std::vector<float> importance = tensor_importance(settings->stats.get(), name, src.ne[0]);
    std::vector<int64_t> ne = src.ne;
    if (p.role == TensorRole::kSsmConv && ne.size() == 3 && ne[1] == 1) ne.erase(ne.begin() + 1);  // Conv1d's [C, 1, K]
    const TensorRole role = p.role;
    EDGELLM_TRY(w.add_tensor(name, type, ne,
                             [src, role, type, permute, heads, c, pool, settings, name, importance = std::move(importance)](
                                 std::vector<uint8_t>& out) -> Status {
      const int64_t n = src.n_elements();
      std::vector<float> values(static_cast<size_t>(n));
      EDGELLM_TRY(dequantize_row(src.type, src.data, values.data(), n));
      const int64_t row_len = src.ne.size() == 1 ? 1 : src.ne[0];
      if (permute) permute_rows_for_interleaved_rope(values, heads, c.head_dim, row_len);
      if (c.arch == Arch::kQwen35) qwen35_values_to_gguf(c, role, values, row_len);
      return quantize_tensor_rows(type, values.data(), src.ne[0], n / src.ne[0], importance, *settings, *pool, out,
                                  name);
    }));
  }
  if (c.rope_scaling.type == RopeScalingType::kLlama3) {
    const std::vector<float> factors = llama3_rope_factors(c);
    EDGELLM_TRY(w.add_tensor(*tensor_name(NameScheme::kGguf, TensorRole::kRopeFreqs), DType::kF32,
                             {static_cast<int64_t>(factors.size())}, factors.data(), factors.size() * sizeof(float)));
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
