#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "kernels/quantize.h"
#include "util/check.h"
#include "util/half.h"

namespace edgellm {

size_t KvCache::bytes_needed(const ModelConfig& config, int64_t n_ctx, DType type) {
  if (n_ctx <= 0 || (type != DType::kF32 && type != DType::kF16 && type != DType::kQ8_0)) return 0;
  if (type == DType::kQ8_0 && config.head_dim % 32 != 0) return 0;
  return 2 * static_cast<size_t>(config.n_attention_layers()) * static_cast<size_t>(n_ctx) *
         dtype_row_bytes(type, config.kv_dim());
}

size_t KvCache::state_bytes_needed(const ModelConfig& config) {
  return (1 + kMaxSnapshots) * RecurrentState::bytes_needed(config);
}

Expected<KvCache> KvCache::create(const ModelConfig& config, int64_t n_ctx, DType type, bool with_state) {
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kQ8_0) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("KV cache type ") + dtype_name(type) + " is not supported (use f16, f32 or q8_0)");
  }
  if (type == DType::kQ8_0 && config.head_dim % 32 != 0) {
    return make_error(ErrorCode::kInvalidArgument, "KV cache type q8_0 needs head_dim to be a multiple of 32, got " +
                                                       std::to_string(config.head_dim) + " (use f16)");
  }
  if (n_ctx <= 0 || n_ctx > (int64_t{1} << 22)) {
    return make_error(ErrorCode::kInvalidArgument, "context length " + std::to_string(n_ctx) + " is out of range");
  }
  KvCache kv;
  kv.n_ctx_ = n_ctx;
  kv.n_layer_ = config.n_attention_layers();
  kv.kv_dim_ = config.kv_dim();
  kv.n_head_kv_ = config.n_head_kv;
  kv.type_ = type;
  const size_t bytes = static_cast<size_t>(kv.n_layer_) * kv.layer_bytes();
  kv.k_.reset(new (std::nothrow) uint8_t[bytes]);
  kv.v_.reset(new (std::nothrow) uint8_t[bytes]);
  if (!kv.k_ || !kv.v_) {
    return make_error(ErrorCode::kOutOfMemory, "cannot allocate the KV cache: needs " +
                                                   std::to_string(2 * bytes / (1024 * 1024)) + " MiB for " +
                                                   std::to_string(n_ctx) + " positions");
  }
  if (config.hybrid() && with_state) {
    EDGELLM_ASSIGN_OR_RETURN(kv.recurrent_, RecurrentState::create(config));
  }
  return kv;
}

void KvCache::set_n_past(int64_t n) {
  if (hybrid() && n < n_past_) {
    EDGELLM_CHECK(rewind_point(n) == n);
    if (n == 0) {
      recurrent_.clear();
    } else {
      for (const Snapshot& s : snapshots_) {
        if (s.pos == n) recurrent_.copy_from(s.state);
      }
    }
    // Snapshots beyond n belong to a continuation that is gone.
    std::erase_if(snapshots_, [n](const Snapshot& s) { return s.pos > n; });
  }
  n_past_ = n;
}

int64_t KvCache::rewind_point(int64_t n) const {
  n = std::min(n, n_past_);
  if (!hybrid() || n == n_past_) return n;
  int64_t best = 0;
  for (const Snapshot& s : snapshots_) {
    if (s.pos <= n && s.pos > best) best = s.pos;
  }
  return best;
}

KvCache::Snapshot* KvCache::snapshot_slot(int64_t pos) {
  Snapshot* slot = nullptr;
  for (Snapshot& s : snapshots_) {
    if (s.pos == pos) slot = &s;
  }
  if (slot == nullptr && snapshots_.size() < static_cast<size_t>(kMaxSnapshots)) {
    auto state = recurrent_.zeroed_like();
    if (!state) return nullptr;
    snapshots_.push_back({0, 0, std::move(*state)});
    slot = &snapshots_.back();
  }
  if (slot == nullptr) {
    slot = &*std::min_element(snapshots_.begin(), snapshots_.end(),
                              [](const Snapshot& a, const Snapshot& b) { return a.taken < b.taken; });
  }
  slot->pos = pos;
  slot->taken = ++snapshots_taken_;
  return slot;
}

void KvCache::save_snapshot() {
  if (!hybrid() || n_past_ == 0) return;
  if (Snapshot* slot = snapshot_slot(n_past_)) slot->state.copy_from(recurrent_);
}

void KvCache::add_snapshot(int64_t pos, const float* state) {
  EDGELLM_CHECK(hybrid() && pos >= 1 && pos <= n_past_);
  if (Snapshot* slot = snapshot_slot(pos)) {
    std::copy(state, state + recurrent_.size_bytes() / sizeof(float), slot->state.data());
  }
}

std::vector<int64_t> KvCache::snapshot_positions() const {
  std::vector<int64_t> out;
  for (const Snapshot& s : snapshots_) out.push_back(s.pos);
  std::sort(out.begin(), out.end());
  return out;
}

const RecurrentState* KvCache::snapshot_at(int64_t pos) const {
  for (const Snapshot& s : snapshots_) {
    if (s.pos == pos) return &s.state;
  }
  return nullptr;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  const int64_t d = head_dim();
  const size_t row_offset = static_cast<size_t>(pos) * head_row_bytes();
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    uint8_t* kd = k_head(layer, h) + row_offset;
    uint8_t* vd = v_head(layer, h) + row_offset;
    const float* ks = k + h * d;
    const float* vs = v + h * d;
    switch (type_) {
      case DType::kF32:
        std::memcpy(kd, ks, static_cast<size_t>(d) * sizeof(float));
        std::memcpy(vd, vs, static_cast<size_t>(d) * sizeof(float));
        break;
      case DType::kQ8_0:
        // head_dim is a multiple of 32 (checked in create), so these cannot fail.
        (void)quantize_row(DType::kQ8_0, ks, kd, d);
        (void)quantize_row(DType::kQ8_0, vs, vd, d);
        break;
      default: {
        auto* k16 = reinterpret_cast<uint16_t*>(kd);
        auto* v16 = reinterpret_cast<uint16_t*>(vd);
        for (int64_t i = 0; i < d; ++i) {
          k16[i] = f32_to_fp16(ks[i]);
          v16[i] = f32_to_fp16(vs[i]);
        }
      }
    }
  }
}

void KvCache::read_row(bool is_value, int64_t layer, int64_t pos, uint8_t* dst) const {
  const size_t head = head_row_bytes();
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    const uint8_t* rows = is_value ? v_head(layer, h) : k_head(layer, h);
    std::memcpy(dst + static_cast<size_t>(h) * head, rows + static_cast<size_t>(pos) * head, head);
  }
}

void KvCache::write_row(bool is_value, int64_t layer, int64_t pos, const uint8_t* src) {
  const size_t head = head_row_bytes();
  for (int64_t h = 0; h < n_head_kv_; ++h) {
    uint8_t* rows = is_value ? v_head(layer, h) : k_head(layer, h);
    std::memcpy(rows + static_cast<size_t>(pos) * head, src + static_cast<size_t>(h) * head, head);
  }
}

}  // namespace edgellm
