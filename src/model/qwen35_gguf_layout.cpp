#include "model/qwen35_gguf_layout.h"

#include <algorithm>
#include <cmath>

namespace edgellm {
namespace {

// Grouped index g * r + m (key head g, its m-th value head) -> tiled index m * Hk + g.
int64_t tiled_index(int64_t grouped, int64_t n_k_heads, int64_t n_v_heads) {
  const int64_t r = n_v_heads / n_k_heads;
  return (grouped % r) * n_k_heads + grouped / r;
}

}  // namespace

void tile_value_head_rows(std::vector<float>& values, int64_t row_len, int64_t first_row, int64_t n_k_heads,
                          int64_t n_v_heads, int64_t rows_per_head) {
  if (n_k_heads == n_v_heads) return;
  const int64_t block = rows_per_head * row_len;
  const auto begin = values.begin() + first_row * row_len;
  const std::vector<float> old(begin, begin + n_v_heads * block);
  for (int64_t h = 0; h < n_v_heads; ++h) {
    std::copy(old.begin() + h * block, old.begin() + (h + 1) * block,
              begin + tiled_index(h, n_k_heads, n_v_heads) * block);
  }
}

void tile_value_head_columns(std::vector<float>& values, int64_t row_len, int64_t n_k_heads, int64_t n_v_heads,
                             int64_t cols_per_head) {
  if (n_k_heads == n_v_heads) return;
  std::vector<float> row(static_cast<size_t>(row_len));
  for (size_t r0 = 0; r0 + static_cast<size_t>(row_len) <= values.size(); r0 += static_cast<size_t>(row_len)) {
    std::copy(values.begin() + static_cast<std::ptrdiff_t>(r0), values.begin() + static_cast<std::ptrdiff_t>(r0) + row_len,
              row.begin());
    for (int64_t h = 0; h < n_v_heads; ++h) {
      std::copy(row.begin() + h * cols_per_head, row.begin() + (h + 1) * cols_per_head,
                values.begin() + static_cast<std::ptrdiff_t>(r0) + tiled_index(h, n_k_heads, n_v_heads) * cols_per_head);
    }
  }
}

void qwen35_values_to_gguf(const ModelConfig& c, TensorRole role, std::vector<float>& values, int64_t row_len) {
  const int64_t Hk = c.ssm_n_k_heads, Hv = c.ssm_n_v_heads, Dv = c.ssm_v_head_dim;
  switch (role) {
    case TensorRole::kAttnNorm:
    case TensorRole::kPostAttnNorm:
    case TensorRole::kOutputNorm:
    case TensorRole::kAttnQNorm:
    case TensorRole::kAttnKNorm:
      for (float& v : values) v += 1.0f;
      break;
    case TensorRole::kSsmA:
      for (float& v : values) v = static_cast<float>(-std::exp(static_cast<double>(v)));  // rounded once
      tile_value_head_rows(values, 1, 0, Hk, Hv, 1);
      break;
    case TensorRole::kSsmDtBias:
      tile_value_head_rows(values, 1, 0, Hk, Hv, 1);
      break;
    case TensorRole::kAttnQkv:  // in_proj_qkv: the value rows follow the q and k rows
    case TensorRole::kSsmConv:  // one row of K taps per channel, the same order
      tile_value_head_rows(values, row_len, 2 * c.ssm_key_dim(), Hk, Hv, Dv);
      break;
    case TensorRole::kSsmInZ:
      tile_value_head_rows(values, row_len, 0, Hk, Hv, Dv);
      break;
    case TensorRole::kSsmBeta:
    case TensorRole::kSsmAlpha:
      tile_value_head_rows(values, row_len, 0, Hk, Hv, 1);
      break;
    case TensorRole::kSsmOut:
      tile_value_head_columns(values, row_len, Hk, Hv, Dv);
      break;
    default:
      break;
  }
}

}  // namespace edgellm
