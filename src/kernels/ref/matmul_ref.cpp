#include "kernels/ref/matmul_ref.h"

#include <algorithm>

#include "kernels/quant_blocks.h"
#include "kernels/ref/quant_ref.h"
#include "util/check.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace edgellm::ref {

void matmul_rows(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end) {
  const DTypeTraits& traits = dtype_traits(args.type);
  // Dequantize one block (or 256 elements of a plain type) at a time, reuse it for a chunk of tokens.
  const int64_t chunk_elems = traits.quantized ? traits.block_size : 256;
  EDGELLM_CHECK(chunk_elems <= kQK_K && args.k % traits.block_size == 0);
  const size_t chunk_bytes = dtype_row_bytes(args.type, chunk_elems);
  constexpr int64_t kTokenChunk = 16;
  float w_chunk[kQK_K];
  float acc[kTokenChunk];

  for (int64_t token_begin = 0; token_begin < args.n_tokens; token_begin += kTokenChunk) {
    const int64_t n_chunk_tokens = std::min(kTokenChunk, args.n_tokens - token_begin);
    for (int64_t row = row_begin; row < row_end; ++row) {
      const uint8_t* w_row = args.w + static_cast<size_t>(row) * args.w_row_bytes;
      std::fill(acc, acc + n_chunk_tokens, 0.0f);
      for (int64_t k_begin = 0; k_begin < args.k; k_begin += chunk_elems) {
        const int64_t len = std::min(chunk_elems, args.k - k_begin);
        const uint8_t* w_chunk_bytes = w_row + static_cast<size_t>(k_begin / chunk_elems) * chunk_bytes;
        const bool ok = dequantize_row(args.type, w_chunk_bytes, w_chunk, len);
        EDGELLM_CHECK(ok);
        for (int64_t token = 0; token < n_chunk_tokens; ++token) {
          const float* x = args.x + (token_begin + token) * args.k + k_begin;
          float sum = acc[token];
          for (int64_t j = 0; j < len; ++j) sum += w_chunk[j] * x[j];
          acc[token] = sum;
        }
      }
      for (int64_t token = 0; token < n_chunk_tokens; ++token) {
        args.y[(token_begin + token) * args.y_stride + (row - row_begin)] = acc[token];
      }
    }
  }
}

}  // namespace edgellm::ref
