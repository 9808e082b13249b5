#include "model/kv_cache.h"

#include <cstring>
#include <new>

#include "util/half.h"

namespace edgellm {

Expected<KvCache> KvCache::create(const ModelConfig& config, int64_t n_ctx, DType type) {
  if (type != DType::kF32 && type != DType::kF16) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string("KV cache type ") + dtype_name(type) + " is not supported (use f16 or f32)");
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
  auto* kd = static_cast<uint16_t*>(k_row(layer, pos));
  auto* vd = static_cast<uint16_t*>(v_row(layer, pos));
  for (int64_t i = 0; i < kv_dim_; ++i) {
    kd[i] = f32_to_fp16(k[i]);
    vd[i] = f32_to_fp16(v[i]);
  }
}

}  // namespace edgellm
