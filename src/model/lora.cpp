#include "model/lora.h"

#include <cmath>
#include <filesystem>

#include "format/gguf.h"
#include "format/hf_dir.h"
#include "format/safetensors.h"
#include "kernels/quantize.h"
#include "model/qwen35_gguf_layout.h"
#include "model/rope_permute.h"

namespace edgellm {
namespace {

namespace fs = std::filesystem;

// The roles a LoRA may target, and the PEFT module path of each in the Hugging Face names. Qwen3.5's
// linear-attention layers: in_proj_qkv (kAttnQkv), in_proj_z, in_proj_b, in_proj_a and out_proj.
constexpr TensorRole kAdaptable[] = {TensorRole::kAttnQ,   TensorRole::kAttnK,    TensorRole::kAttnV,
                                     TensorRole::kAttnQkv, TensorRole::kAttnOut,  TensorRole::kFfnGate,
                                     TensorRole::kFfnUp,   TensorRole::kFfnDown,  TensorRole::kOutput,
                                     TensorRole::kSsmInZ,  TensorRole::kSsmBeta,  TensorRole::kSsmAlpha,
                                     TensorRole::kSsmOut};

Expected<std::vector<float>> to_f32(const TensorRef& t, const std::string& where) {
  if (!can_dequantize(t.type)) {
    return make_error(ErrorCode::kUnsupported, where + ": tensor '" + t.name + "': type " + dtype_name(t.type) +
                                                   " is not supported for LoRA");
  }
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  EDGELLM_TRY(dequantize_row(t.type, t.data, out.data(), t.n_elements()));
  return out;
}

const TensorRef* base_weight(const Model& model, TensorRole role, int64_t layer) {
  const ModelWeights& w = model.weights();
  if (role == TensorRole::kOutput) return &w.output;
  if (layer < 0 || layer >= static_cast<int64_t>(w.layers.size())) return nullptr;
  const LayerWeights& L = w.layers[static_cast<size_t>(layer)];
  switch (role) {
    case TensorRole::kAttnQ: return &L.wq;
    case TensorRole::kAttnK: return &L.wk;
    case TensorRole::kAttnV: return &L.wv;
    case TensorRole::kAttnQkv: return model.config().is_recurrent(layer) ? &L.ssm_in_qkv : &L.wqkv;
    case TensorRole::kAttnOut: return &L.wo;
    case TensorRole::kFfnGate: return &L.w_gate;
    case TensorRole::kFfnUp: return &L.w_up;
    case TensorRole::kFfnDown: return &L.w_down;
    case TensorRole::kSsmInZ: return &L.ssm_in_z;
    case TensorRole::kSsmBeta: return &L.ssm_beta;
    case TensorRole::kSsmAlpha: return &L.ssm_alpha;
    case TensorRole::kSsmOut: return &L.ssm_out;
    default: return nullptr;
  }
}

}  // namespace

const LoraPair* LoraAdapter::find(TensorRole role, int64_t layer) const {
  auto it = pairs_.find({static_cast<int>(role), role == TensorRole::kOutput ? -1 : layer});
  return it == pairs_.end() ? nullptr : &it->second;
}

Expected<std::shared_ptr<LoraAdapter>> LoraAdapter::load(const std::string& path, const Model& model) {
  auto adapter = std::make_shared<LoraAdapter>();
  adapter->path_ = path;
  const ModelConfig& c = model.config();
  const bool peft = fs::is_directory(path);

  struct Found {
    TensorRole role;
    int64_t layer;
    TensorRef a, b;
  };
  std::vector<Found> found;
  float alpha = 0;
  bool rslora = false;
  std::optional<GgufFile> gguf;
  std::optional<Safetensors> st;

  if (peft) {
    const std::string config_path = (fs::path(path) / "adapter_config.json").string();
    EDGELLM_ASSIGN_OR_RETURN(nlohmann::json cfg, read_json_file(config_path));
    if (!cfg.is_object() || !cfg.contains("r") || !cfg["r"].is_number_integer()) {
      return make_error(ErrorCode::kFormat, config_path + ": missing integer key 'r'");
    }
    alpha = cfg.value("lora_alpha", static_cast<float>(cfg["r"].get<int64_t>()));
    if (!std::isfinite(alpha)) return make_error(ErrorCode::kFormat, config_path + ": key 'lora_alpha' is not finite");
    rslora = cfg.value("use_rslora", false);
    if (cfg.value("fan_in_fan_out", false)) {
      return make_error(ErrorCode::kUnsupported, config_path + ": fan_in_fan_out adapters are not supported");
    }
    const fs::path weights = fs::path(path) / "adapter_model.safetensors";
    EDGELLM_ASSIGN_OR_RETURN(Safetensors opened, Safetensors::open(weights.string()));
    st = std::move(opened);
    const NameScheme scheme = c.arch == Arch::kQwen ? NameScheme::kHfQwen1 : NameScheme::kHfLlama;
    for (TensorRole role : kAdaptable) {
      const int64_t n_layers = role == TensorRole::kOutput ? 1 : c.n_layer;
      for (int64_t il = 0; il < n_layers; ++il) {
        const int64_t layer = role == TensorRole::kOutput ? -1 : il;
        const auto hf = tensor_name(scheme, role, layer);
        if (!hf) continue;
        const std::string module = "base_model.model." + hf->substr(0, hf->size() - 7);  // drop ".weight"
        const SafetensorsTensor* a = st->find(module + ".lora_A.weight");
        const SafetensorsTensor* b = st->find(module + ".lora_B.weight");
        if (!a && !b) continue;
        if (!a || !b) {
          return make_error(ErrorCode::kFormat, weights.string() + ": '" + module + "' has only one of lora_A/lora_B");
        }
        found.push_back({role, layer, a->ref, b->ref});
      }
    }
    if (found.empty()) {
      return make_error(ErrorCode::kFormat, weights.string() + ": no LoRA weights for a " + arch_name(c.arch) +
                                                " model's modules");
    }
    if (st->tensors().size() != found.size() * 2) {
      for (const auto& t : st->tensors()) {
        bool used = false;
        for (const auto& f : found) used = used || f.a.name == t.ref.name || f.b.name == t.ref.name;
        if (!used) {
          return make_error(ErrorCode::kFormat, weights.string() + ": tensor '" + t.ref.name +
                                                    "' does not match any weight of this " + arch_name(c.arch) + " model");
        }
      }
    }
  } else {
    EDGELLM_ASSIGN_OR_RETURN(GgufFile opened, GgufFile::open(path));
    gguf = std::move(opened);
    EDGELLM_ASSIGN_OR_RETURN(const std::string type, gguf->get_string("general.type"));
    EDGELLM_ASSIGN_OR_RETURN(const std::string adapter_type, gguf->get_string_or("adapter.type", ""));
    if (type != "adapter" || adapter_type != "lora") {
      return make_error(ErrorCode::kFormat, path + ": not a LoRA adapter (general.type '" + type + "', adapter.type '" +
                                                adapter_type + "')");
    }
    EDGELLM_ASSIGN_OR_RETURN(const double a, gguf->get_float("adapter.lora.alpha"));
    alpha = static_cast<float>(a);
    for (TensorRole role : kAdaptable) {
      const int64_t n_layers = role == TensorRole::kOutput ? 1 : c.n_layer;
      for (int64_t il = 0; il < n_layers; ++il) {
        const int64_t layer = role == TensorRole::kOutput ? -1 : il;
        const std::string base = *tensor_name(NameScheme::kGguf, role, layer);
        const GgufTensorInfo* ta = gguf->find_tensor(base + ".lora_a");
        const GgufTensorInfo* tb = gguf->find_tensor(base + ".lora_b");
        if (!ta && !tb) continue;
        if (!ta || !tb) return make_error(ErrorCode::kFormat, path + ": '" + base + "' has only one of lora_a/lora_b");
        found.push_back({role, layer, gguf->tensor_ref(*ta), gguf->tensor_ref(*tb)});
      }
    }
    if (found.size() * 2 != gguf->tensors().size()) {
      for (const auto& t : gguf->tensors()) {
        bool used = false;
        for (const auto& f : found) used = used || f.a.name == t.name || f.b.name == t.name;
        if (!used) {
          return make_error(ErrorCode::kFormat, path + ": tensor '" + t.name + "' does not match any weight of this " +
                                                    arch_name(c.arch) + " model");
        }
      }
    }
  }

  for (const Found& f : found) {
    const TensorRef* w = base_weight(model, f.role, f.layer);
    if (!w || w->data == nullptr) {
      return make_error(ErrorCode::kFormat, path + ": adapter for '" + f.a.name + "' but the model has no such weight");
    }
    const int64_t n_in = w->ne[0], n_out = w->ne[1];
    // A: ne = {n_in, r} (PyTorch [r, n_in]); B: ne = {r, n_out} (PyTorch [n_out, r]).
    if (f.a.ne.size() != 2 || f.b.ne.size() != 2 || f.a.ne[0] != n_in || f.b.ne[1] != n_out || f.a.ne[1] != f.b.ne[0]) {
      return make_error(ErrorCode::kFormat, path + ": tensors '" + f.a.name + "' " + shape_string(f.a.ne) + " and '" +
                                                f.b.name + "' " + shape_string(f.b.ne) + " do not fit weight '" +
                                                w->name + "' " + shape_string(w->ne) + " (expected A [" +
                                                std::to_string(n_in) + ", r] and B [r, " + std::to_string(n_out) + "])");
    }
    LoraPair pair;
    pair.rank = f.a.ne[1];
    pair.n_in = n_in;
    pair.n_out = n_out;
    if (pair.rank <= 0 || pair.rank > 4096) return make_error(ErrorCode::kFormat, path + ": bad LoRA rank");
    EDGELLM_ASSIGN_OR_RETURN(pair.a, to_f32(f.a, path));
    EDGELLM_ASSIGN_OR_RETURN(pair.b, to_f32(f.b, path));
    pair.scale = rslora ? alpha / std::sqrt(static_cast<float>(pair.rank)) : alpha / static_cast<float>(pair.rank);
    if (peft && model.gguf() && c.arch == Arch::kLlama && (f.role == TensorRole::kAttnQ || f.role == TensorRole::kAttnK)) {
      permute_rows_for_interleaved_rope(pair.b, f.role == TensorRole::kAttnQ ? c.n_head : c.n_head_kv, c.head_dim, pair.rank);
    }
    // A Qwen3.5 GGUF holds the linear layers' value heads in llama.cpp's tiled order; a PEFT adapter was
    // trained on Hugging Face's grouped order: B's rows (outputs) or, for out_proj, A's columns (inputs)
    // are reordered as the converter reorders the weight.
    if (peft && c.arch == Arch::kQwen35 && c.ssm_v_heads_tiled && f.layer >= 0 && c.is_recurrent(f.layer)) {
      if (f.role == TensorRole::kSsmOut) {
        qwen35_values_to_gguf(c, f.role, pair.a, pair.n_in);
      } else {
        qwen35_values_to_gguf(c, f.role, pair.b, pair.rank);
      }
    }
    adapter->max_rank_ = std::max(adapter->max_rank_, pair.rank);
    adapter->pairs_.emplace(std::make_pair(static_cast<int>(f.role), f.layer), std::move(pair));
  }
  return adapter;
}

void lora_merge_into(const LoraPair& p, float lora_scale, std::vector<float>& weight) {
  const float s = p.scale * lora_scale;
  for (int64_t o = 0; o < p.n_out; ++o) {
    for (int64_t r = 0; r < p.rank; ++r) {
      const float bs = p.b[static_cast<size_t>(o * p.rank + r)] * s;
      if (bs == 0.0f) continue;
      float* row = &weight[static_cast<size_t>(o * p.n_in)];
      const float* a = &p.a[static_cast<size_t>(r * p.n_in)];
      for (int64_t i = 0; i < p.n_in; ++i) row[i] += bs * a[i];
    }
  }
}

}  // namespace edgellm
