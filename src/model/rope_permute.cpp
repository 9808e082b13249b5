#include "model/rope_permute.h"

#include <algorithm>

namespace edgellm {

void permute_rows_for_interleaved_rope(std::vector<float>& rows, int64_t n_heads, int64_t head_dim, int64_t row_len) {
  std::vector<float> out(rows.size());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < head_dim / 2; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t dst = h * head_dim + 2 * i + j;
        const int64_t src = h * head_dim + j * head_dim / 2 + i;
        std::copy_n(&rows[static_cast<size_t>(src * row_len)], row_len, &out[static_cast<size_t>(dst * row_len)]);
      }
    }
  }
  rows.swap(out);
}

}  // namespace edgellm
