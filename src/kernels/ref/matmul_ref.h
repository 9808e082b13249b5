// Scalar reference matmul: dequantize a block of a weight row into a float scratch on the stack and
// dot it with each token in f32, summing k in order. Slow and obviously correct; every ISA variant is
// tested against it.
#pragma once

#include "kernels/kernel_table.h"

namespace edgellm::ref {

// Any type with a reference dequantizer (kernels/quantize.h: can_dequantize). See MatmulRowsFn.
void matmul_rows(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end);

// Types with an int8-activation kernel: Q4_0, IQ4_NL, Q4_1, Q8_0 and the edgellm-only e4_g64/g128/g256.
bool q8act_supported(DType type);

// Int8-activation matmul (reads args.xq, kernels/act_quant.h) for a type with q8act_supported:
// per 32-element block, exact integer dot products scaled by (d_w d_x), plus (m_w d_x) * sum(q_x) for
// the affine types; f32 sum over blocks in k order.
void matmul_rows_q8act(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end);

}  // namespace edgellm::ref
