// Causal attention over the KV cache for one KV head and a block of queries, fused: scores, an online
// softmax and the weighted sum of values run over tiles of kAttnKeyTile keys, so each cached row is read
// (and converted to f32) once per query block, and no [n_tokens][n_keys] score matrix is ever built.
// Online softmax: Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"; tiling as in
// Dao et al. 2022, "FlashAttention". Decode is the case of one token and `n_group` query heads (GQA).
//
// ISA variants (attention_avx2.cpp, attention_avx512.cpp; attention_neon.cpp on aarch64) are chosen once
// from the CPU; EDGELLM_ISA=scalar|avx2|avx512|neon forces one. Every variant runs the same tile schedule,
// so they differ only by the rounding of their dot products and of e^x.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "format/dtype.h"

namespace edgellm {

inline constexpr int64_t kAttnKeyTile = 64;    // keys per tile (K and V tiles in f32 stay in L1/L2)
inline constexpr int64_t kAttnQueryTile = 16;  // tokens per prefill block
// Decode splits the keys into parts of this many positions (a multiple of kAttnKeyTile), so that long
// contexts keep every thread busy even with fewer KV heads than threads; the parts' partial softmaxes
// are merged after. Fixed, not derived from the thread count, so results do not depend on it.
inline constexpr int64_t kAttnDecodeSplit = 512;

// One block of queries that share a KV head.
struct AttentionBlock {
  DType kv_type = DType::kF16;   // kF32, kF16 or kQ8_0 (Q8_0: head_dim a multiple of 32)
  const uint8_t* k = nullptr;    // key of row 0 for this KV head; row i at k + i * kv_row_bytes
  const uint8_t* v = nullptr;    // value, same layout
  size_t kv_row_bytes = 0;
  // Which row holds position j: j itself (a contiguous cache) when block_table is nullptr, else paged
  // (engine/kv_block_pool.h): blocks of 2^block_shift rows, position j in row j mod 2^block_shift of
  // block block_table[j >> block_shift], i.e. row (block_table[j >> block_shift] << block_shift) | (j & mask).
  const int32_t* block_table = nullptr;
  int block_shift = 0;
  int64_t head_dim = 0;
  const float* q = nullptr;      // query of token t, group head g at q[t * q_token_stride + g * head_dim]
  int64_t q_token_stride = 0;
  int64_t n_tokens = 0;
  int64_t n_group = 1;           // query heads per KV head
  int64_t n_keys0 = 0;           // token t sees keys [0, n_keys0 + t) (causal); n_keys0 >= 1
  float scale = 1.0f;            // multiplies q.k
  float* out = nullptr;          // [n_tokens][n_group][head_dim] at out[t * out_token_stride + g * head_dim]
  int64_t out_token_stride = 0;
  // Only keys [key_begin, key_end) (key_begin a multiple of kAttnKeyTile); with partial_max set, out is
  // left unnormalised (sum of exp(s - max) v) and each row's max and sum of exp(s - max) are written to
  // partial_max/partial_sum [n_tokens * n_group] for merge_attention_parts().
  int64_t key_begin = 0;
  int64_t key_end = std::numeric_limits<int64_t>::max();
  float* partial_max = nullptr;
  float* partial_sum = nullptr;
};

// Combines n_parts partial results of one query row: out = sum_p e^(m_p - M) out_p / sum_p e^(m_p - M) l_p
// with M = max_p m_p. out_p at outs + p * part_stride, m_p and l_p at maxes[p * max_stride], sums[...].
void merge_attention_parts(const float* outs, int64_t part_stride, const float* maxes, const float* sums,
                           int64_t max_stride, int64_t n_parts, int64_t head_dim, float* out);

// Floats of per-thread work memory attention_block() needs for up to kAttnQueryTile tokens.
size_t attention_work_floats(int64_t head_dim, int64_t n_group);

// Computes the block with the active ISA variant. `work` holds attention_work_floats() floats (64-byte
// aligned is best) and is used only by the calling thread. Allocates nothing; n_tokens <= kAttnQueryTile.
void attention_block(const AttentionBlock& block, float* work);

// The variants, for tests: nullptr if not built in or this CPU cannot run it.
using AttentionBlockFn = void (*)(const AttentionBlock& block, float* work);
enum class AttentionIsa { kScalar, kAvx2, kAvx512, kNeon };
AttentionBlockFn attention_variant(AttentionIsa isa);
const char* attention_isa_name();  // the variant attention_block() uses

// Per-ISA entry points (their own translation units, compiled with the ISA's flags).
void attention_block_scalar(const AttentionBlock& block, float* work);
void attention_block_avx2(const AttentionBlock& block, float* work);
void attention_block_avx512(const AttentionBlock& block, float* work);
void attention_block_neon(const AttentionBlock& block, float* work);  // aarch64 only

}  // namespace edgellm
