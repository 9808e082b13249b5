// LoRA adapters for the tiny test models, written as PEFT directories.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"

namespace edgellm::test {

// A PEFT adapter of rank 2 (lora_alpha 4) on every layer's q_proj, with weights large enough to change
// greedy answers. `n_in` is A's input size: c.n_embd fits the model, anything else makes an adapter that
// does not fit (for error tests). Different `variant`s give different weights.
std::string write_q_proj_adapter(const std::string& dir, const ModelConfig& c, int64_t n_in, uint32_t variant = 0);

}  // namespace edgellm::test
