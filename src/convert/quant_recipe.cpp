#include "convert/quant_recipe.h"

namespace edgellm {
namespace {

const std::vector<QuantRecipe>& recipes() {
  // 4-bit recipes keep the output projection (and a tied embedding) at 8 bits: it is one matrix, read
  // once per token, and the logits are most sensitive to it (llama.cpp does the same: Q6_K or Q8_0).
  static const std::vector<QuantRecipe> all = {
      {"f32", DType::kF32, DType::kF32, DType::kF32, "32-bit float, lossless"},
      {"f16", DType::kF16, DType::kF16, DType::kF16, "16-bit float"},
      {"bf16", DType::kBF16, DType::kBF16, DType::kBF16, "bfloat16"},
      {"w8a8", DType::kQ8_0, DType::kQ8_0, DType::kQ8_0, "8-bit weights in groups of 32 (Q8_0)"},
      {"q8_0", DType::kQ8_0, DType::kQ8_0, DType::kQ8_0, "GGUF Q8_0 (same as w8a8)"},
      {"w4a16_g32", DType::kIQ4_NL, DType::kIQ4_NL, DType::kQ8_0,
       "4-bit weights in groups of 32 (IQ4_NL: fp16 scale, 16-value non-uniform codebook), output projection at 8 bits"},
      {"iq4_nl", DType::kIQ4_NL, DType::kIQ4_NL, DType::kQ8_0, "GGUF IQ4_NL (same as w4a16_g32)"},
      {"q4_0", DType::kQ4_0, DType::kQ4_0, DType::kQ8_0,
       "GGUF Q4_0: 4-bit uniform levels in groups of 32 (same size as w4a16_g32), output at 8 bits"},
      {"q4_1", DType::kQ4_1, DType::kQ4_1, DType::kQ8_0, "GGUF Q4_1: 4-bit with offset, groups of 32, output at 8 bits"},
      {"w4a16_g64", DType::kE4G64, DType::kE4G64, DType::kQ8_0,
       "4-bit weights with offset in groups of 64 (edgellm-only e4_g64), output at 8 bits"},
      {"w4a16_g128", DType::kE4G128, DType::kE4G128, DType::kQ8_0,
       "4-bit weights with offset in groups of 128 (edgellm-only e4_g128), output at 8 bits"},
      {"w4a16", DType::kE4G256, DType::kE4G256, DType::kQ8_0,
       "4-bit weights with offset, largest group (256, else 128/64, else IQ4_NL; edgellm-only e4_g*), output at 8 bits"},
  };
  return all;
}

// The next smaller group of the same 4-bit family, or f16 at the end of the chain.
DType smaller_group(DType t) {
  switch (t) {
    case DType::kE4G256: return DType::kE4G128;
    case DType::kE4G128: return DType::kE4G64;
    case DType::kE4G64: return DType::kIQ4_NL;
    default: return DType::kF16;
  }
}

}  // namespace

Expected<QuantRecipe> quant_recipe_from_name(const std::string& name) {
  for (const auto& r : recipes()) {
    if (r.name == name) return r;
  }
  std::string known;
  for (const auto& n : quant_recipe_names()) known += (known.empty() ? "" : ", ") + n;
  return make_error(ErrorCode::kInvalidArgument, "unknown quantization '" + name + "' (known: " + known + ")");
}

std::vector<std::string> quant_recipe_names() {
  std::vector<std::string> names;
  for (const auto& r : recipes()) names.push_back(r.name);
  return names;
}

DType tensor_type_for(const QuantRecipe& recipe, TensorRole role, int64_t row_length, bool is_vector,
                      bool tied_output, bool* fallback) {
  if (fallback) *fallback = false;
  // Qwen3.5's convolution taps stay f32, as llama.cpp requires (rows of K = 4 values, a few KiB per layer).
  if (is_vector || role == TensorRole::kSsmConv) return DType::kF32;
  DType t = recipe.matrix_type;
  if (role == TensorRole::kOutput || (role == TensorRole::kTokenEmbd && tied_output)) {
    t = recipe.output_type;
  } else if (role == TensorRole::kTokenEmbd) {
    t = recipe.embedding_type;
  }
  while (row_length % dtype_traits(t).block_size != 0) {
    if (fallback) *fallback = true;
    t = smaller_group(t);
  }
  return t;
}

bool tensor_role_from_gguf_name(const std::string& name, TensorRole* role, int64_t* layer) {
  int64_t il = -1;
  if (name.rfind("blk.", 0) == 0) {
    const size_t dot = name.find('.', 4);
    if (dot == std::string::npos) return false;
    try {
      il = std::stoll(name.substr(4, dot - 4));
    } catch (...) {
      return false;
    }
  }
  for (int r = 0; r < static_cast<int>(TensorRole::kCount); ++r) {
    const auto candidate = static_cast<TensorRole>(r);
    if (tensor_role_is_per_layer(candidate) != (il >= 0)) continue;
    const auto n = tensor_name(NameScheme::kGguf, candidate, il);
    if (n && *n == name) {
      *role = candidate;
      *layer = il;
      return true;
    }
  }
  return false;
}

}  // namespace edgellm
