// Quantization recipes, named as users know them (w4a16, w8a8, ...), and the per-tensor type rules.
#pragma once

#include <string>
#include <vector>

#include "format/dtype.h"
#include "model/tensor_names.h"
#include "util/expected.h"

namespace edgellm {

struct QuantRecipe {
  std::string name;         // as given: "w8a8", "w4a16_g32", "f16", "q4_0", ...
  DType matrix_type;        // attention and MLP matrices
  DType embedding_type;     // token embedding (row lookups only)
  DType output_type;        // the output projection (or the tied embedding): kept at 8 bits for 4-bit recipes
  std::string description;  // for --help and metadata
};

// Known recipes: f32, f16, bf16, q8_0 / w8a8, q4_0 / w4a16_g32, q4_1, w4a16_g64, w4a16_g128, w4a16.
// Unknown names list the known ones.
Expected<QuantRecipe> quant_recipe_from_name(const std::string& name);
std::vector<std::string> quant_recipe_names();

// The type of one tensor under a recipe. 1-D tensors (norms, biases) stay f32. A matrix whose rows are
// not a whole number of blocks of the wanted type takes the next smaller group of the same family
// (e4_g256 -> e4_g128 -> e4_g64 -> q4_0), and f16 when none fits; `*fallback` is set for a log line.
DType tensor_type_for(const QuantRecipe& recipe, TensorRole role, int64_t row_length, bool is_vector,
                      bool tied_output, bool* fallback);

// GGUF tensor name -> role and layer (-1 for global tensors), for re-quantizing a GGUF file.
// False for names that are not part of any architecture's table.
bool tensor_role_from_gguf_name(const std::string& name, TensorRole* role, int64_t* layer);

}  // namespace edgellm
