// Scalar reference matmul: dequantize a block of a weight row into a float scratch on the stack and
// dot it with each token in f32, summing k in order. Slow and obviously correct; every ISA variant is
// tested against it.
#pragma once

#include "kernels/kernel_table.h"

namespace edgellm::ref {

// Any type with a reference dequantizer (kernels/quantize.h: can_dequantize). See MatmulRowsFn.
void matmul_rows(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end);

}  // namespace edgellm::ref
