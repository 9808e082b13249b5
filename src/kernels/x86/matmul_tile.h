// The x86 matmul tile kernel with f32 activations, shared by the ISA variants (matmul_avx2.cpp,
// matmul_avx512.cpp). One GEMM template over a "dequantizer" per block type (the structure of
// ikawrakow/ik_llama.cpp: ggml/src/iqk/iqk_gemm_kquants.cpp): the dequantizer turns one block of a
// weight row into vectors in registers, and the tile multiplies it with several tokens at once, so
// prefill reads and dequantizes each weight block once per tile of tokens, not once per token.
//
// Include only from ISA-flagged translation units. Everything here is a template over the ISA's
// vector traits `V`, so each translation unit instantiates its own copies (the template arguments
// differ per ISA): no code compiled for one ISA can be picked by the linker for another.
//
// V provides: `T` (the vector type), kLanes, zero(), load(const float*), fmadd(a, b, acc), add(a, b),
// hsum(v) (a fixed reduction order), and the tile shapes kDecodeRows (n_tokens == 1) and
// kPrefillRows x kPrefillTokens.
// A dequantizer D provides: `Block` (the bytes of kElems weights; kElems a multiple of 2 * kLanes),
// `load(const Block&, typename V::T* w)` writing kElems / kLanes vectors in row order, and for plain
// types (kPlain) `scalar(row, k)` for the tail when K is not a multiple of kElems.
//
// Numerics: dequantizers reproduce the scalar reference's weights bit for bit (same products, no FMA);
// only the summation order differs. Each (row, token) output comes from the same instruction sequence
// whatever tile it lands in, so results depend neither on the thread split nor on the batch size.
#pragma once

#include <cstdint>

#include "kernels/kernel_table.h"

namespace edgellm::kernels::x86 {

// Rows [row, row + NR) x tokens [token, token + NT). Two accumulators per (row, token), for even and
// odd vector groups, keep enough FMA chains in flight even for the 1-token decode tile.
template <class V, class D, int NR, int NT>
void matmul_tile(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token) {
  using Block = typename D::Block;
  using Vec = typename V::T;
  constexpr int kGroups = D::kElems / V::kLanes;
  static_assert(kGroups % 2 == 0, "blocks hold an even number of vectors");
  const int64_t n_blocks = a.k / D::kElems;

  const Block* w_rows[NR];
  for (int r = 0; r < NR; ++r) {
    w_rows[r] = reinterpret_cast<const Block*>(a.w + static_cast<size_t>(row + r) * a.w_row_bytes);
  }
  const float* x_rows[NT];
  for (int t = 0; t < NT; ++t) x_rows[t] = a.x + (token + t) * a.k;

  Vec acc_even[NR][NT];
  Vec acc_odd[NR][NT];
  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) acc_even[r][t] = acc_odd[r][t] = V::zero();
  }

  for (int64_t block_idx = 0; block_idx < n_blocks; ++block_idx) {
    for (int r = 0; r < NR; ++r) {
      Vec w[kGroups];
      D::load(w_rows[r][block_idx], w);
      for (int t = 0; t < NT; ++t) {
        const float* x = x_rows[t] + block_idx * D::kElems;
        for (int c = 0; c < kGroups; c += 2) {
          acc_even[r][t] = V::fmadd(w[c], V::load(x + c * V::kLanes), acc_even[r][t]);
          acc_odd[r][t] = V::fmadd(w[c + 1], V::load(x + (c + 1) * V::kLanes), acc_odd[r][t]);
        }
      }
    }
  }

  for (int r = 0; r < NR; ++r) {
    for (int t = 0; t < NT; ++t) {
      float sum = V::hsum(V::add(acc_even[r][t], acc_odd[r][t]));
      if constexpr (D::kPlain) {
        // K not a multiple of the block: the last few elements, in order.
        const auto* w_row = reinterpret_cast<const uint8_t*>(w_rows[r]);
        for (int64_t k = n_blocks * D::kElems; k < a.k; ++k) sum += D::scalar(w_row, k) * x_rows[t][k];
      }
      a.y[(token + t) * a.y_stride + (row + r - row_begin)] = sum;
    }
  }
}

// Token tile of any width 1..NT (the remainder of a batch), NR rows.
template <class V, class D, int NR, int NT>
void matmul_tile_tokens(const MatmulArgs& a, int64_t row_begin, int64_t row, int64_t token, int64_t n_tokens) {
  if constexpr (NT > 0) {
    if (n_tokens == NT) {
      matmul_tile<V, D, NR, NT>(a, row_begin, row, token);
    } else {
      matmul_tile_tokens<V, D, NR, NT - 1>(a, row_begin, row, token, n_tokens);
    }
  }
}

// MatmulRowsFn for weight type D. Rows are taken in panels whose weights stay in L2 while every token
// tile passes over them; within a panel, token tiles are outermost so their x rows stay in L1.
template <class V, class D>
void matmul_rows(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kRowPanel = 64;
  constexpr int kDecodeRows = V::kDecodeRows;
  constexpr int kRows = V::kPrefillRows;
  constexpr int kTokens = V::kPrefillTokens;
  for (int64_t panel = row_begin; panel < row_end; panel += kRowPanel) {
    const int64_t panel_end = panel + kRowPanel < row_end ? panel + kRowPanel : row_end;
    if (a.n_tokens == 1) {
      int64_t row = panel;
      for (; row + kDecodeRows <= panel_end; row += kDecodeRows) {
        matmul_tile<V, D, kDecodeRows, 1>(a, row_begin, row, 0);
      }
      for (; row < panel_end; ++row) matmul_tile<V, D, 1, 1>(a, row_begin, row, 0);
      continue;
    }
    for (int64_t token = 0; token < a.n_tokens; token += kTokens) {
      const int64_t n = a.n_tokens - token < kTokens ? a.n_tokens - token : kTokens;
      int64_t row = panel;
      for (; row + kRows <= panel_end; row += kRows) {
        matmul_tile_tokens<V, D, kRows, kTokens>(a, row_begin, row, token, n);
      }
      for (; row < panel_end; ++row) matmul_tile_tokens<V, D, 1, kTokens>(a, row_begin, row, token, n);
    }
  }
}

}  // namespace edgellm::kernels::x86
