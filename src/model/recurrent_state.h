// The fixed-size state of one sequence in a hybrid model's linear-attention (Gated DeltaNet) layers: per
// layer the last K - 1 inputs of the causal convolution and the delta rule's matrix per value head. Unlike
// the KV cache it does not grow with the context, and it cannot be cut back to an earlier position: going
// back needs a copy taken there (KvCache keeps a few) or a prefill from the start.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "model/config.h"
#include "util/expected.h"

namespace edgellm {

class RecurrentState {
 public:
  // Zeroed state for the linear layers of `config` (empty for a model without any).
  static Expected<RecurrentState> create(const ModelConfig& config);
  static size_t bytes_needed(const ModelConfig& config);
  // A zeroed state of the same shape as this one (e.g. a snapshot's).
  Expected<RecurrentState> zeroed_like() const;

  RecurrentState() = default;
  RecurrentState(RecurrentState&&) noexcept = default;
  RecurrentState& operator=(RecurrentState&&) noexcept = default;
  RecurrentState(const RecurrentState&) = delete;
  RecurrentState& operator=(const RecurrentState&) = delete;

  bool empty() const { return n_layer_ == 0; }
  int64_t n_layer() const { return n_layer_; }  // linear-attention layers
  size_t floats_per_layer() const { return conv_floats_ + ssm_floats_; }
  size_t size_bytes() const { return static_cast<size_t>(n_layer_) * floats_per_layer() * sizeof(float); }
  // Whether `other` was made for the same layer shapes.
  bool same_shape(const RecurrentState& other) const {
    return n_layer_ == other.n_layer_ && conv_floats_ == other.conv_floats_ && ssm_floats_ == other.ssm_floats_;
  }

  // Linear layer `index` (0 for the model's first linear layer, and so on):
  // conv: [K - 1][conv_dim] the previous inputs of the convolution, oldest first;
  // ssm: [Hv][Dk][Dv] the delta rule's state per value head (as transformers keeps it).
  float* conv(int64_t index) { return data_.get() + static_cast<size_t>(index) * floats_per_layer(); }
  float* ssm(int64_t index) { return conv(index) + conv_floats_; }
  const float* conv(int64_t index) const { return const_cast<RecurrentState*>(this)->conv(index); }
  const float* ssm(int64_t index) const { return const_cast<RecurrentState*>(this)->ssm(index); }

  // All layers' floats, for saving and loading.
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }

  void clear();                                // the state before any token
  void copy_from(const RecurrentState& other);  // same shape (checked)

 private:
  int64_t n_layer_ = 0;
  size_t conv_floats_ = 0;
  size_t ssm_floats_ = 0;
  std::unique_ptr<float[]> data_;
};

}  // namespace edgellm
