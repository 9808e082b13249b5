// llama.cpp's Llama convention: each head's q/k rows are reordered from Hugging Face's NeoX halves
// (element i pairs with i + head_dim/2) to interleaved pairs (2i with 2i+1), so plain RoPE applies.
#pragma once

#include <cstdint>
#include <vector>

namespace edgellm {

// `rows` holds n_heads * head_dim rows of row_len floats: new row h*D + 2i + j = old row h*D + j*D/2 + i.
void permute_rows_for_interleaved_rope(std::vector<float>& rows, int64_t n_heads, int64_t head_dim, int64_t row_len);

}  // namespace edgellm
