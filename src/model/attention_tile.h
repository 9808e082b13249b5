// The tile schedule of attention_block(), written once over an ISA's row operations (Ops):
//   Ops::load_row(type, src, n, dst)   n cached elements (f32, f16 or q8_0 blocks) -> f32
//   Ops::dot(a, b, n)                  sum a[i] b[i]
//   Ops::scale(y, a, n)                y *= a
//   Ops::axpy(a, x, y, n)              y += a x
//   Ops::weighted_sum(p, v, n, d, out) out[i] += sum_{j<n} p[j] v[j * d + i], accumulating in registers
//   Ops::scores_t(q, kt, d, s)         s[j] = sum_i q[i] kt[i * kAttnKeyTile + j] for all j < kAttnKeyTile
//   Ops::transpose(rows, m, d, kt)     kt[i * kAttnKeyTile + r] = rows[r * d + i] for r < kAttnTransposeRows,
//                                      i < d (rows r >= m as zeros)
//   Ops::exp_sum(s, n, m)              s[j] = exp(s[j] - m) for j < n (all <= 0); returns their sum
// and optionally, for several query heads at once (bit-identical to the per-head calls):
//   Ops::scores_t_group(q, G, d, kt, s)            scores_t for q + g * d -> s + g * kAttnKeyTile, g < G
//   Ops::weighted_sum_group(p, G, v, n, d, out)    weighted_sum for p + g * kAttnKeyTile -> out + g * d
// and optionally, for a lone query token (decode), straight from the cached rows, with no f32 tiles
// (head_dim a multiple of Ops::kRowVector; rows[j] the cached row of key j, j < n):
//   Ops::scores_rows_heads<T, GN>(q, d, rows, n, s, pf)   s[g * kAttnKeyTile + j] = sum_i q[g * d + i] row_j[i]
//                                                          for g < GN, asking for pf's rows a few at a time
//   Ops::weighted_sum_rows_heads<T, GN, NC>(p, rows, n, i0, d, out)
//        out[g * d + i] += sum_j p[g * kAttnKeyTile + j] row_j[i] for g < GN, i in the NC vectors from i0
// Decode reads each cached row once and spends its time in multiply-adds; converting rows into f32 tiles
// (and transposing the keys) cost more than the products.
// Included only by attention*.cpp; each includes it with its own Ops and target flags.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <type_traits>
#include <limits>

#include "format/dtype.h"
#include "model/attention.h"

namespace edgellm::attention_detail {

// Keys converted and transposed together into the K tile (one 16x16 register transpose on AVX-512).
inline constexpr int64_t kAttnTransposeRows = 16;

inline size_t work_floats(int64_t head_dim, int64_t n_group) {
  const int64_t rows = kAttnQueryTile * n_group;
  // K tile, V tile, scores [rows][tile], running max and sum per row, kAttnTransposeRows converted rows.
  return static_cast<size_t>(2 * kAttnKeyTile * head_dim + rows * kAttnKeyTile + 2 * rows +
                             kAttnTransposeRows * head_dim);
}

// The portable Ops::transpose: kt[i * kAttnKeyTile + r] = rows[r * d + i], zeros for rows r >= m.
inline void transpose_rows(const float* rows, int64_t m, int64_t d, float* kt) {
  for (int64_t r = 0; r < kAttnTransposeRows; ++r) {
    for (int64_t i = 0; i < d; ++i) kt[i * kAttnKeyTile + r] = r < m ? rows[r * d + i] : 0.0f;
  }
}

// Byte offset of position j's row from the block's k (or v): contiguous, or through the block table.
inline size_t row_offset(const AttentionBlock& b, int64_t j) {
  if (b.block_table == nullptr) return static_cast<size_t>(j) * b.kv_row_bytes;
  const int64_t mask = (int64_t{1} << b.block_shift) - 1;
  const int64_t row = (static_cast<int64_t>(b.block_table[j >> b.block_shift]) << b.block_shift) | (j & mask);
  return static_cast<size_t>(row) * b.kv_row_bytes;
}

// Asks for the cache lines of the K and V rows of positions [first, first + n), `bytes` each (one head's
// part of a row): later tiles' keys and values are read from memory while this tile is computed (a decode
// step streams the weights through the caches, so the KV cache is rarely still cached).
inline void prefetch_rows(const AttentionBlock& b, int64_t first, int64_t n, size_t bytes) {
  for (int64_t j = first; j < first + n; ++j) {
    const size_t offset = row_offset(b, j);
    for (size_t off = 0; off < bytes; off += 64) {
      __builtin_prefetch(b.k + offset + off);
      __builtin_prefetch(b.v + offset + off);
    }
  }
}

// The G heads' scores s[g * kAttnKeyTile + j] = sum_i q[g * d + i] kt[i * kAttnKeyTile + j]: the ISA's
// several-head version when it has one (the same sums in the same order as scores_t per head).
template <class Ops>
void scores_group(const float* q, int64_t G, int64_t d, const float* kt, float* s) {
  if constexpr (requires { Ops::scores_t_group(q, G, d, kt, s); }) {
    Ops::scores_t_group(q, G, d, kt, s);
  } else {
    for (int64_t g = 0; g < G; ++g) Ops::scores_t(q + g * d, kt, d, s + g * kAttnKeyTile);
  }
}

// out[g * d + i] += sum_{j<n} p[g * kAttnKeyTile + j] v[j * d + i] for the G heads (as weighted_sum per head).
template <class Ops>
void weighted_sum_group(const float* p, int64_t G, const float* v, int64_t n, int64_t d, float* out) {
  if constexpr (requires { Ops::weighted_sum_group(p, G, v, n, d, out); }) {
    Ops::weighted_sum_group(p, G, v, n, d, out);
  } else {
    for (int64_t g = 0; g < G; ++g) Ops::weighted_sum(p + g * kAttnKeyTile, v, n, d, out + g * d);
  }
}

// Cached rows to request while the current tile is computed: K and V of keys [0, n), `bytes` each.
struct RowPrefetch {
  const uint8_t* const* k = nullptr;
  const uint8_t* const* v = nullptr;
  int64_t n = 0;
  size_t bytes = 0;
};

// f(std::integral_constant<int, GN>{}, g) over heads [0, G) in groups of GN = 4, then the last 1 to 3: the
// ISAs' several-head kernels keep GN heads' accumulators in registers.
template <class F>
void in_groups_of_4(int64_t G, F&& f) {
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) f(std::integral_constant<int, 4>{}, g);
  switch (G - g) {
    case 3: f(std::integral_constant<int, 3>{}, g); break;
    case 2: f(std::integral_constant<int, 2>{}, g); break;
    case 1: f(std::integral_constant<int, 1>{}, g); break;
    default: break;
  }
}

// f(std::integral_constant<DType, T>{}) for the cache's row type: kF16, kQ8_0 or kF32.
template <class F>
void for_row_type(DType type, F&& f) {
  if (type == DType::kF16) return f(std::integral_constant<DType, DType::kF16>{});
  if (type == DType::kQ8_0) return f(std::integral_constant<DType, DType::kQ8_0>{});
  f(std::integral_constant<DType, DType::kF32>{});
}

template <class Ops>
concept DecodesFromRows = requires(const float* q, const uint8_t* const* rows, float* s, RowPrefetch pf) {
  { Ops::kRowVector } -> std::convertible_to<int64_t>;
  { Ops::kRowVectors } -> std::convertible_to<int>;
  Ops::template scores_rows_heads<DType::kF16, 4>(q, int64_t{}, rows, int64_t{}, s, pf);
  Ops::template weighted_sum_rows_heads<DType::kF16, 4, 1>(q, rows, int64_t{}, int64_t{}, int64_t{}, s);
};

// Decode from rows, written once over an ISA's two kernels:
//   Ops::scores_rows_heads<T, GN>(q, d, rows, n, s, pf)              GN heads' scores of keys rows[0, n)
//   Ops::weighted_sum_rows_heads<T, GN, NC>(p, rows, n, i0, d, out)  GN heads' sums of NC vectors from i0
template <class Ops>
bool decodes_from_rows(DType type, int64_t d) {
  return d % Ops::kRowVector == 0 && (type == DType::kF32 || type == DType::kF16 || type == DType::kQ8_0);
}

template <class Ops>
void scores_from_rows(DType type, const float* q, int64_t G, int64_t d, const uint8_t* const* rows, int64_t n,
                      float* s, const RowPrefetch& pf) {
  for_row_type(type, [&](auto t) {
    in_groups_of_4(G, [&](auto gn, int64_t g) {
      // The first pass over the keys asks for the rows ahead.
      Ops::template scores_rows_heads<t.value, gn.value>(q + g * d, d, rows, n, s + g * kAttnKeyTile,
                                                         g == 0 ? pf : RowPrefetch{});
    });
  });
}

template <class Ops>
void weighted_sum_from_rows(DType type, const float* p, int64_t G, const uint8_t* const* rows, int64_t n, int64_t d,
                            float* out) {
  constexpr int64_t C = Ops::kRowVector;
  for_row_type(type, [&](auto t) {
    in_groups_of_4(G, [&](auto gn, int64_t g) {
      const float* pg = p + g * kAttnKeyTile;
      float* og = out + g * d;
      int64_t i = 0;
      const auto pass = [&](auto nc) {  // nc vectors of C values from i on
        Ops::template weighted_sum_rows_heads<t.value, gn.value, nc.value>(pg, rows, n, i, d, og);
        i += nc.value * C;
      };
      if constexpr (Ops::kRowVectors >= 4) {
        while (i + 4 * C <= d) pass(std::integral_constant<int, 4>{});
      }
      while (i + 2 * C <= d) pass(std::integral_constant<int, 2>{});
      while (i < d) pass(std::integral_constant<int, 1>{});
    });
  });
}

template <class Ops>
void attention_block_impl(const AttentionBlock& b, float* work) {
  const int64_t D = b.head_dim, G = b.n_group, T = b.n_tokens;
  float* k_tile = work;                            // [kAttnKeyTile][D]
  float* v_tile = k_tile + kAttnKeyTile * D;       // [kAttnKeyTile][D]
  float* scores = v_tile + kAttnKeyTile * D;       // [T * G][kAttnKeyTile]
  float* row_max = scores + T * G * kAttnKeyTile;  // [T * G]
  float* row_sum = row_max + T * G;                // [T * G]
  float* k_rows = row_sum + T * G;                 // [kAttnTransposeRows][D] keys before they are transposed
  // With several query rows the K tile is stored transposed ([D][kAttnKeyTile]) so that a row's scores
  // are D axpys over contiguous keys (no horizontal sums); the transpose is paid once per tile and
  // shared by all rows. A lone query row (decode without GQA) keeps [key][D] and takes dot products.
  bool from_rows = false;
  if constexpr (DecodesFromRows<Ops>) from_rows = T == 1 && decodes_from_rows<Ops>(b.kv_type, D);
  const bool k_transposed = !from_rows && T * G >= 4;
  const uint8_t* k_ptrs[kAttnKeyTile];  // the tile's cached rows, when decoding from rows
  const uint8_t* v_ptrs[kAttnKeyTile];
  const uint8_t* k_ahead[kAttnKeyTile];  // and the rows of the tile kDecodeAheadTiles further on
  const uint8_t* v_ahead[kAttnKeyTile];
  for (int64_t r = 0; r < T * G; ++r) {
    row_max[r] = -std::numeric_limits<float>::infinity();
    row_sum[r] = 0.0f;
  }
  for (int64_t t = 0; t < T; ++t) std::fill(b.out + t * b.out_token_stride, b.out + t * b.out_token_stride + G * D, 0.0f);

  const int64_t n_keys_all = std::min(b.n_keys0 + T - 1, b.key_end);  // the last token sees the most keys
  const size_t head_bytes = dtype_row_bytes(b.kv_type, D);
  // Rows are requested kPrefetchTiles tiles ahead (the first ones all at once), so that many cache
  // misses are in flight together instead of one row's at a time. Decoding from rows spreads the requests
  // over the computation instead (scores_rows asks for a few rows per few keys): a burst of a whole tile's
  // requests fills the core's miss buffers and stalls it until they drain, which nearly doubled the time of
  // a decode block reading its cache from memory (kernels_bench attention_decode).
  constexpr int64_t kPrefetchTiles = 4;
  constexpr int64_t kDecodeAheadTiles = 1;
  const auto prefetch_tile = [&](int64_t first) {
    if (first >= n_keys_all) return;
    const int64_t n_rows = std::min(kAttnKeyTile, n_keys_all - first);
    prefetch_rows(b, first, n_rows, head_bytes);
  };
  const int64_t burst_tiles = from_rows ? kDecodeAheadTiles : kPrefetchTiles - 1;
  for (int64_t i = 0; i < burst_tiles; ++i) prefetch_tile(b.key_begin + i * kAttnKeyTile);
  for (int64_t j0 = b.key_begin; j0 < n_keys_all; j0 += kAttnKeyTile) {
    const int64_t n_tile = std::min(kAttnKeyTile, n_keys_all - j0);
    RowPrefetch ahead;
    if (from_rows) {
      const int64_t first = j0 + kDecodeAheadTiles * kAttnKeyTile;
      // Past key_end too: the rows of the next part of a split decode, which this thread most likely
      // computes next (parallel_for hands out consecutive parts).
      ahead = {k_ahead, v_ahead, std::clamp<int64_t>(b.n_keys0 + T - 1 - first, 0, kAttnKeyTile), head_bytes};
      for (int64_t j = 0; j < ahead.n; ++j) {
        const size_t offset = row_offset(b, first + j);
        k_ahead[j] = b.k + offset;
        v_ahead[j] = b.v + offset;
      }
    } else {
      prefetch_tile(j0 + (kPrefetchTiles - 1) * kAttnKeyTile);
    }
    if (k_transposed) {
      for (int64_t j = 0; j < n_tile; j += kAttnTransposeRows) {
        const int64_t m = std::min(kAttnTransposeRows, n_tile - j);
        for (int64_t r = 0; r < m; ++r) {
          Ops::load_row(b.kv_type, b.k + row_offset(b, j0 + j + r), D, k_rows + r * D);
        }
        Ops::transpose(k_rows, m, D, k_tile + j);
      }
    }
    for (int64_t j = 0; j < n_tile; ++j) {
      const size_t offset = row_offset(b, j0 + j);
      if (from_rows) {
        k_ptrs[j] = b.k + offset;
        v_ptrs[j] = b.v + offset;
        continue;
      }
      if (!k_transposed) Ops::load_row(b.kv_type, b.k + offset, D, k_tile + j * D);
      Ops::load_row(b.kv_type, b.v + offset, D, v_tile + j * D);
    }
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n_visible = std::min(n_tile, b.n_keys0 + t - j0);  // causal mask within the tile
      if (n_visible <= 0) continue;
      const float* q_t = b.q + t * b.q_token_stride;  // the G heads' queries, D apart
      float* out_t = b.out + t * b.out_token_stride;  // and outputs
      float* s_t = scores + t * G * kAttnKeyTile;     // and scores, kAttnKeyTile apart
      if (k_transposed) {
        // All kAttnKeyTile columns are computed (those past n_tile hold stale finite keys); only
        // n_visible are used. The G heads together: each K tile row is loaded once for all of them.
        scores_group<Ops>(q_t, G, D, k_tile, s_t);
      }
      if constexpr (DecodesFromRows<Ops>) {
        if (from_rows) scores_from_rows<Ops>(b.kv_type, q_t, G, D, k_ptrs, n_visible, s_t, ahead);
      }
      for (int64_t g = 0; g < G; ++g) {
        const int64_t r = t * G + g;
        float* s = s_t + g * kAttnKeyTile;
        if (k_transposed || from_rows) {
          Ops::scale(s, b.scale, n_visible);
        } else {
          for (int64_t j = 0; j < n_visible; ++j) s[j] = Ops::dot(q_t + g * D, k_tile + j * D, D) * b.scale;
        }
        float tile_max = row_max[r];
        for (int64_t j = 0; j < n_visible; ++j) tile_max = std::max(tile_max, s[j]);
        // Rescale what was accumulated under the old maximum (exp(-inf) = 0 on the first tile).
        const float correction = std::exp(row_max[r] - tile_max);
        if (correction != 1.0f) {
          row_sum[r] *= correction;
          Ops::scale(out_t + g * D, correction, D);
        }
        row_sum[r] += Ops::exp_sum(s, n_visible, tile_max);
        row_max[r] = tile_max;
      }
      // out_g += p_g V for all heads: each V tile row loaded once for all of them.
      if constexpr (DecodesFromRows<Ops>) {
        if (from_rows) {
          weighted_sum_from_rows<Ops>(b.kv_type, s_t, G, v_ptrs, n_visible, D, out_t);
          continue;
        }
      }
      weighted_sum_group<Ops>(s_t, G, v_tile, n_visible, D, out_t);
    }
  }
  if (b.partial_max != nullptr) {
    std::copy(row_max, row_max + T * G, b.partial_max);
    std::copy(row_sum, row_sum + T * G, b.partial_sum);
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g = 0; g < G; ++g) {
      Ops::scale(b.out + t * b.out_token_stride + g * D, 1.0f / row_sum[t * G + g], D);
    }
  }
}

}  // namespace edgellm::attention_detail
