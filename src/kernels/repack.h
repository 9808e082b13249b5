// Load-time repacking of Q4_0, IQ4_NL and Q8_0 weight matrices for the int8-activation kernels that read
// them in panels of 16 rows (KernelTable::matmul_q8act_packed; AVX-512 VNNI). Internal to kernels/.
//
// The file layout keeps each row's blocks together (fp16 d, then the quants), so a kernel computing
// one output row per vector lane would gather bytes from 16 places and shuffle scales into lanes. The
// packed layout stores, for 16 rows at a time, the same 4-byte slice of one 32-element block of every
// row side by side: one 64-byte load is a vector whose 32-bit lane r holds four quants of row r, ready
// for a 4-byte dot product (vpdpbusd) against four activations broadcast to every lane, and the 16
// rows' scales of a block are 32 contiguous bytes (16 fp16 = one vector of 16 f32 after conversion).
//
// Matrix: ceil(n_rows / 16) panels, panel p = rows 16p .. 16p + 15 (rows past n_rows are zero: zero
// scales and zero quants, they add nothing and their outputs are not written). Panel: ceil(k / 64)
// pairs of blocks (a missing last block of an odd block count is zero, likewise). Pair, 64-byte
// aligned when the buffer is:
//   fp16 d[2][16]          block 2j's scales of rows 0..15, then block 2j + 1's
//   block 2j's quants      kBlockVectors[type] vectors of 64 bytes
//   block 2j + 1's quants
// Quant vector v of a block, byte 4 r + i (row r, i < 4):
//   Q4_0 (4 vectors): the file's qs[4 v + i] of row r: low nibble element 4 v + i, high nibble element
//        16 + 4 v + i (unsigned 0..15; the kernel subtracts 8 via the activation sums);
//   IQ4_NL (4 vectors): as Q4_0, the nibbles being codebook indices (the kernel looks them up);
//   Q8_0 (8 vectors): element 4 v + i of row r as q + 128 (an unsigned byte; the kernel subtracts 128).
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/dtype.h"

namespace edgellm::kernels {

inline constexpr int64_t kPackRows = 16;

// True for the types this layout exists for (Q4_0, IQ4_NL, Q8_0).
bool packable(DType type);
// Bytes of one panel of 16 rows of k elements; of the whole packed matrix.
size_t packed_panel_bytes(DType type, int64_t k);
size_t packed_bytes(DType type, int64_t n_rows, int64_t k);
// Writes the panels of rows [row_begin, row_end) of a matrix of n_rows rows of k elements (`w`: its
// first row, rows w_row_bytes apart, file layout) into `out`, the whole packed matrix (packed_bytes(...)
// bytes; 64-byte aligned for the kernels' aligned loads). row_begin is a multiple of kPackRows, and
// row_end too unless it is n_rows; the panels of a matrix may be written in any order, a range at a time.
void repack(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_rows, int64_t k, int64_t row_begin,
            int64_t row_end, uint8_t* out);

// Row `row` of a packed matrix of k elements per row, back in the file layout (dtype_row_bytes(type, k)
// bytes at `out`): for lookups of single rows (a tied embedding) that should not read the file again.
void unpack_row(DType type, const uint8_t* packed, int64_t k, int64_t row, uint8_t* out);

}  // namespace edgellm::kernels
