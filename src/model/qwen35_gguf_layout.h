// How llama.cpp's converter lays out a Qwen3.5 model in GGUF, from Hugging Face's tensors.
//
// Qwen3.5's linear-attention layers have Hv value heads over Hk key heads (Hv a multiple of Hk). Hugging
// Face orders the per-value-head blocks grouped by key head ([k0: v0..v(r-1)], [k1: ...], value head h
// reads key head h / r); llama.cpp's converter reorders them tiled ([v0 of k0..k(Hk-1)], [v1 of ...], value
// head h reads key head h % Hk). These reorder values that were read in Hugging Face's order.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/tensor_names.h"

namespace edgellm {

// Rows [first_row, first_row + Hv * rows_per_head) of a row-major matrix with row_len columns hold one
// block of rows_per_head rows per value head: they are put in tiled order.
void tile_value_head_rows(std::vector<float>& values, int64_t row_len, int64_t first_row, int64_t n_k_heads,
                          int64_t n_v_heads, int64_t rows_per_head);
// Every row holds Hv blocks of cols_per_head columns, one per value head: they are put in tiled order.
void tile_value_head_columns(std::vector<float>& values, int64_t row_len, int64_t n_k_heads, int64_t n_v_heads,
                             int64_t cols_per_head);

// A Qwen3.5 tensor's values as llama.cpp's converter writes them, from Hugging Face's (rows of row_len
// floats, in Hugging Face's shape): RMSNorm weights + 1 (not the linear layers' gated norm), A_log ->
// -exp(A_log), and every per-value-head block in tiled order. Other roles are left as they are.
void qwen35_values_to_gguf(const ModelConfig& c, TensorRole role, std::vector<float>& values, int64_t row_len);

}  // namespace edgellm
