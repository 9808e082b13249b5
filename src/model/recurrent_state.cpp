#include "model/recurrent_state.h"

#include <algorithm>
#include <new>

#include "util/check.h"

namespace edgellm {
namespace {

size_t conv_floats(const ModelConfig& c) {
  return static_cast<size_t>(std::max<int64_t>(0, c.ssm_conv_kernel - 1) * c.ssm_conv_dim());
}

size_t ssm_floats(const ModelConfig& c) {
  return static_cast<size_t>(c.ssm_n_v_heads * c.ssm_v_head_dim * c.ssm_k_head_dim);
}

}  // namespace

size_t RecurrentState::bytes_needed(const ModelConfig& config) {
  return static_cast<size_t>(config.n_recurrent_layers()) * (conv_floats(config) + ssm_floats(config)) * sizeof(float);
}

Expected<RecurrentState> RecurrentState::create(const ModelConfig& config) {
  RecurrentState s;
  s.n_layer_ = config.n_recurrent_layers();
  if (s.n_layer_ == 0) return s;
  s.conv_floats_ = conv_floats(config);
  s.ssm_floats_ = ssm_floats(config);
  return s.zeroed_like();
}

Expected<RecurrentState> RecurrentState::zeroed_like() const {
  RecurrentState s;
  s.n_layer_ = n_layer_;
  s.conv_floats_ = conv_floats_;
  s.ssm_floats_ = ssm_floats_;
  if (s.n_layer_ == 0) return s;
  const size_t n = static_cast<size_t>(s.n_layer_) * s.floats_per_layer();
  s.data_.reset(new (std::nothrow) float[n]);
  if (!s.data_) {
    return make_error(ErrorCode::kOutOfMemory, "cannot allocate the linear-attention state: needs " +
                                                   std::to_string(n * sizeof(float) / (1024 * 1024)) + " MiB");
  }
  s.clear();
  return s;
}

void RecurrentState::clear() {
  if (data_) std::fill(data_.get(), data_.get() + static_cast<size_t>(n_layer_) * floats_per_layer(), 0.0f);
}

void RecurrentState::copy_from(const RecurrentState& other) {
  EDGELLM_CHECK(same_shape(other));
  if (data_) std::copy(other.data_.get(), other.data_.get() + static_cast<size_t>(n_layer_) * floats_per_layer(), data_.get());
}

}  // namespace edgellm
