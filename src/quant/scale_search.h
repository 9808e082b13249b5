// Error-minimising quantization: for each group of a row, search the scale (and the offset, for types
// that store one) that minimises the importance-weighted squared error
//     E = sum_j w[j] * (x[j] - dequant(q)[j])^2,
// instead of taking the scale from the group's extreme value (round-to-nearest, RTN). The output is the
// standard block layout of the type, so a Q4_0 row written here is plain Q4_0 for every reader.
//
// Why it helps: RTN maps the largest |x| exactly and spends levels on the tails; a slightly smaller scale
// (clipping the extreme, which the least-squares refit then places) lowers the error of the other
// elements. With calibration statistics (quant/calibration.h), w[j] = E[a_j^2], the mean square of the
// matmul input a on channel j, so E is the expected squared error of the matmul output a . (x - x_q)
// when channels are uncorrelated: the importance-weighted objective of AWQ/GPTQ-style methods (the
// diagonal of the Hessian), applied here to the choice of scales only.
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "util/expected.h"

namespace edgellm {

struct ScaleSearchOptions {
  // Candidate scales tried per group before the least-squares refits; more is slower and rarely better.
  int n_candidates = 32;
  // Candidates of the symmetric types (the best after one rounding) that get least-squares refits, at
  // most 16; the types with an offset refit every candidate.
  int n_refined = 4;  // twice as many for Q8_0, whose fine grid gains more from refits
  // Least-squares refits of (scale, offset) after re-rounding, per refined candidate.
  int n_refits = 2;
};

// Types with a search: Q4_0, IQ4_NL, Q4_1, Q8_0, e4_g64, e4_g128, e4_g256.
bool has_scale_search(DType type);

// Quantizes one row of n floats to `type` (dtype_row_bytes(type, n) bytes at dst). `importance` is n
// non-negative weights (one per input channel) or nullptr for uniform weights. For every group the
// result's weighted error is <= that of RTN (quantize_row) on the same group: RTN is always a
// candidate. Types without a search fall back to quantize_row. Thread-safe; allocates nothing.
// Errors: as quantize_row (n not a multiple of the block size, unknown type).
Status quantize_row_searched(DType type, const float* x, const float* importance, void* dst, int64_t n,
                             const ScaleSearchOptions& options = {});

// One group's grid, x_hat = d * level + m (m = 0 for symmetric types), or x_hat = d * codebook[level]
// for a codebook type (IQ4_NL); d and m exactly representable in fp16 as the block stores them; levels
// in [lmin, lmax]. Used by quant/gptq.h, which fixes a group's grid when it reaches the group and then
// rounds error-updated weights onto it one column at a time.
struct GroupGrid {
  float d = 0, m = 0;
  int lmin = 0, lmax = 0;
  const int8_t* codebook = nullptr;  // IQ4_NL's kIQ4NLValues, or nullptr for integer levels
  // The level whose value is nearest to x on this grid (level 0, or the codebook's entry nearest to 0,
  // when d is 0).
  int level(float x) const;
  // The dequantized value of a level, computed as the block's dequantizer computes it.
  float value(int level) const;
};

// The searched grid of one group of dtype_traits(type).block_size values (same search as
// quantize_row_searched; importance nullptr = uniform). type must satisfy has_scale_search.
GroupGrid search_group_grid(DType type, const float* x, const float* importance, const ScaleSearchOptions& options);

// Stores one group's grid and levels (block_size of them, each in [lmin, lmax]) as one block of `type`.
void pack_group(DType type, const GroupGrid& grid, const int* levels, void* block);

// sum_j w[j] * (x[j] - dequant[j])^2 over a row quantized as `type` (w = 1 when importance is nullptr),
// for tests and reports. Errors: as dequantize_row.
Expected<double> weighted_squared_error(DType type, const float* x, const void* quantized, const float* importance,
                                        int64_t n);

}  // namespace edgellm
