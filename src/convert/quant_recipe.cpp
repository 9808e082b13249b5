#include "convert/quant_recipe.h"

namespace edgellm {
namespace {

const std::vector<QuantRecipe>& recipes() {
  static const std::vector<QuantRecipe> all = {
      {"f32", DType::kF32, DType::kF32, DType::kF32, "32-bit float, lossless"},
      {"f16", DType::kF16, DType::kF16, DType::kF16, "16-bit float"},
      {"bf16", DType::kBF16, DType::kBF16, DType::kBF16, "bfloat16"},
      {"w8a8", DType::kQ8_0, DType::kQ8_0, DType::kQ8_0, "8-bit weights in groups of 32 (Q8_0)"},
      {"q8_0", DType::kQ8_0, DType::kQ8_0, DType::kQ8_0, "GGUF Q8_0 (same as w8a8)"},
      {"w4a16_g32", DType::kQ4_0, DType::kQ4_0, DType::kQ8_0,
       "4-bit weights in groups of 32 (Q4_0 layout), output projection at 8 bits"},
      {"q4_0", DType::kQ4_0, DType::kQ4_0, DType::kQ8_0, "GGUF Q4_0 (same as w4a16_g32)"},
  };
  return all;
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
  if (is_vector) return DType::kF32;
  DType t = recipe.matrix_type;
  if (role == TensorRole::kOutput || (role == TensorRole::kTokenEmbd && tied_output)) {
    t = recipe.output_type;
  } else if (role == TensorRole::kTokenEmbd) {
    t = recipe.embedding_type;
  }
  if (row_length % dtype_traits(t).block_size != 0) {
    if (fallback) *fallback = true;
    return DType::kF16;
  }
  return t;
}

}  // namespace edgellm
