// Per-session key/value cache: for each layer and KV head, n_ctx rows of head_dim values in f32, f16 or q8_0.
// Layout, head-major: k(layer) is [n_head_kv][n_ctx][head_dim]; head h's row `pos` holds its rotated key at
// that position. Attention for one KV head then streams one contiguous run of memory (decode at 4096
// positions read the cache about twice as fast as with the heads of a position side by side, which left
// every head's reader skipping over the others' rows). A position's whole row (kv_dim values, the heads in
// order) is what prompt cache files hold: read_row()/write_row() gather and scatter it.
// q8_0 rows are ggml Q8_0 blocks (32 values, one f16 scale each; 34 bytes per 32 values, 47% of f16);
// head_dim must be a multiple of 32 so that no block straddles two heads.
// Hybrid models (Qwen3.5) keep keys and values only for their full-attention layers (layer index = the
// how-many-th full-attention layer it is) and hold the sequence's linear-attention state beside them, with
// a few snapshots of it so that the cache can go back to where a snapshot was taken.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "format/dtype.h"
#include "model/config.h"
#include "model/recurrent_state.h"
#include "util/expected.h"

namespace edgellm {

class KvCache {
 public:
  // type: kF32, kF16 or kQ8_0. Errors: bad n_ctx or type, q8_0 with head_dim not a multiple of 32
  // (kInvalidArgument), allocation failure (kOutOfMemory, with the size that was needed).
  // with_state: for a hybrid model, hold one sequence's linear-attention state (a paged cache shared by
  // many sequences leaves it out: each sequence brings its own, BatchSequence::state).
  static Expected<KvCache> create(const ModelConfig& config, int64_t n_ctx, DType type, bool with_state = true);

  // Bytes of keys and values create() would allocate (0 if the arguments are invalid), to check memory
  // before allocating; state_bytes_needed(): a hybrid model's state with room for every snapshot.
  static size_t bytes_needed(const ModelConfig& config, int64_t n_ctx, DType type);
  static size_t state_bytes_needed(const ModelConfig& config);

  KvCache() = default;
  KvCache(KvCache&&) noexcept = default;
  KvCache& operator=(KvCache&&) noexcept = default;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_layer() const { return n_layer_; }
  int64_t kv_dim() const { return kv_dim_; }
  DType type() const { return type_; }
  size_t size_bytes() const { return 2 * static_cast<size_t>(n_layer_) * layer_bytes(); }
  int64_t n_head_kv() const { return n_head_kv_; }
  int64_t head_dim() const { return kv_dim_ / n_head_kv_; }
  // Bytes of one position's key (or value) over all heads, and of one head's row.
  size_t row_bytes() const { return dtype_row_bytes(type_, kv_dim_); }
  size_t head_row_bytes() const { return dtype_row_bytes(type_, head_dim()); }
  size_t layer_bytes() const { return static_cast<size_t>(n_ctx_) * row_bytes(); }

  // Positions [0, n_past) hold valid entries; the session advances it after each forward.
  int64_t n_past() const { return n_past_; }
  // Going forward (n >= n_past) only records that the positions are filled (by a forward pass, or a
  // prompt cache that wrote rows and state). Going back keeps the first n entries; a hybrid model's state
  // is restored from the snapshot at n (or cleared for 0), so n must be rewind_point(n) (checked).
  void set_n_past(int64_t n);

  // ---- hybrid models ----
  bool hybrid() const { return !recurrent_.empty(); }
  // The linear-attention state after the first n_past() positions.
  RecurrentState& recurrent() { return recurrent_; }
  const RecurrentState& recurrent() const { return recurrent_; }
  // The furthest position <= n (and <= n_past) that set_n_past() can go back to: n itself for a plain
  // model; for a hybrid one, the latest snapshot at or before n, or 0.
  int64_t rewind_point(int64_t n) const;
  // Keeps a copy of the state at n_past() (at most kMaxSnapshots; the oldest taken is replaced). A failed
  // allocation only means no snapshot.
  void save_snapshot();
  static constexpr int kMaxSnapshots = 4;
  size_t n_snapshots() const { return snapshots_.size(); }
  // The positions of the snapshots, ascending, and the state at each (prompt cache files keep them).
  std::vector<int64_t> snapshot_positions() const;
  const RecurrentState* snapshot_at(int64_t pos) const;
  // Keeps `state` (recurrent().size_bytes() of values, as RecurrentState::data()) as the snapshot at pos, as
  // save_snapshot() does for the current state; pos in [1, n_past()].
  void add_snapshot(int64_t pos, const float* state);

  // Qwen 1 dynamic NTK: the rotary base multiplier the cached keys were rotated with.
  float ntk_alpha() const { return ntk_alpha_; }
  void set_ntk_alpha(float alpha) { ntk_alpha_ = alpha; }

  // Head `head`'s rows of a layer: position p's at k_head(layer, head) + p * head_row_bytes().
  uint8_t* k_head(int64_t layer, int64_t head) { return head_rows(k_, layer, head); }
  uint8_t* v_head(int64_t layer, int64_t head) { return head_rows(v_, layer, head); }
  const uint8_t* k_head(int64_t layer, int64_t head) const { return const_cast<KvCache*>(this)->k_head(layer, head); }
  const uint8_t* v_head(int64_t layer, int64_t head) const { return const_cast<KvCache*>(this)->v_head(layer, head); }
  // All of a layer's keys (values): layer_bytes() bytes.
  uint8_t* k_layer(int64_t layer) { return k_.get() + static_cast<size_t>(layer) * layer_bytes(); }
  uint8_t* v_layer(int64_t layer) { return v_.get() + static_cast<size_t>(layer) * layer_bytes(); }

  // Converts (rounds, or quantizes per 32-value block) and stores kv_dim floats of k and v at (layer, pos).
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  // A position's whole key (is_value: value) row in the cache's type, row_bytes() bytes, heads in order.
  void read_row(bool is_value, int64_t layer, int64_t pos, uint8_t* dst) const;
  void write_row(bool is_value, int64_t layer, int64_t pos, const uint8_t* src);

 private:
  uint8_t* head_rows(std::unique_ptr<uint8_t[]>& buf, int64_t layer, int64_t head) {
    return buf.get() + static_cast<size_t>(layer) * layer_bytes() +
           static_cast<size_t>(head) * static_cast<size_t>(n_ctx_) * head_row_bytes();
  }

  int64_t n_ctx_ = 0;
  int64_t n_layer_ = 0;
  int64_t kv_dim_ = 0;
  int64_t n_head_kv_ = 1;
  DType type_ = DType::kF16;
  int64_t n_past_ = 0;
  float ntk_alpha_ = 1.0f;
  std::unique_ptr<uint8_t[]> k_;
  std::unique_ptr<uint8_t[]> v_;
  RecurrentState recurrent_;
  struct Snapshot {
    int64_t pos = 0;
    uint64_t taken = 0;  // order of saving, to replace the oldest
    RecurrentState state;
  };
  // The slot for a snapshot at pos (the one already there, a new one, or the oldest), nullptr if none could
  // be allocated; marked as the latest taken.
  Snapshot* snapshot_slot(int64_t pos);
  std::vector<Snapshot> snapshots_;
  uint64_t snapshots_taken_ = 0;
};

}  // namespace edgellm
