#include "model/kv_cache.h"

#include <cstring>
#include <new>

#include "kernels/quantize.h"
#include "util/half.h"

namespace edgellm {

size_t KvCache::bytes_needed(const ModelConfig& config, int64_t n_ctx, DType type) {
  if (n_ctx <= 0 || (type != DType::kF32 && type != DType::kF16 && type != DType::kQ8_0)) return 0;
  if (type == DType::kQ8_0 && config.head_dim % 32 != 0) return 0;
  return 2 * static_cast<size_t>(config.n_layer) * static_cast<size_t>(n_ctx) * dtype_row_bytes(type, config.kv_dim());
}

Expected<KvCache> KvCache::create(const ModelConfig& config, int64_t n_ctx, DType type) {
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
  kv.n_layer_ = config.n_layer;
  kv.kv_dim_ = config.kv_dim();
  kv.type_ = type;
  const size_t bytes = static_cast<size_t>(kv.n_layer_) * kv.layer_bytes();
  kv.k_.reset(new (std::nothrow) uint8_t[bytes]);
  kv.v_.reset(new (std::nothrow) uint8_t[bytes]);
  if (!kv.k_ || !kv.v_) {
    return make_error(ErrorCode::kOutOfMemory, "cannot allocate the KV cache: needs " +
                                                   std::to_string(2 * bytes / (1024 * 1024)) + " MiB for " +
                                                   std::to_string(n_ctx) + " positions");
  }
  return kv;
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (type_ == DType::kF32) {
    std::memcpy(k_row(layer, pos), k, row_bytes());
    std::memcpy(v_row(layer, pos), v, row_bytes());
    return;
  }
  if (type_ == DType::kQ8_0) {
    // kv_dim is a multiple of head_dim, hence of 32 (checked in create), so these cannot fail.
    (void)quantize_row(DType::kQ8_0, k, k_row(layer, pos), kv_dim_);
    (void)quantize_row(DType::kQ8_0, v, v_row(layer, pos), kv_dim_);
    return;
  }
  auto* kd = static_cast<uint16_t*>(k_row(layer, pos));
  auto* vd = static_cast<uint16_t*>(v_row(layer, pos));
  for (int64_t i = 0; i < kv_dim_; ++i) {
    kd[i] = f32_to_fp16(k[i]);
    vd[i] = f32_to_fp16(v[i]);
  }
}

}  // namespace edgellm
