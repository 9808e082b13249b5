#include "kernels/repack.h"

#include <cstring>

#include "kernels/quant_blocks.h"

namespace edgellm::kernels {
namespace {

int block_vectors(DType type) { return type == DType::kQ8_0 ? 8 : 4; }
size_t block_bytes_of(DType type) { return type == DType::kQ8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0); }
size_t pair_bytes(DType type) { return 64 + 2 * 64 * static_cast<size_t>(block_vectors(type)); }
int64_t n_pairs(int64_t k) { return (k + 63) / 64; }

}  // namespace

bool packable(DType type) { return type == DType::kQ4_0 || type == DType::kIQ4_NL || type == DType::kQ8_0; }

size_t packed_panel_bytes(DType type, int64_t k) { return static_cast<size_t>(n_pairs(k)) * pair_bytes(type); }

size_t packed_bytes(DType type, int64_t n_rows, int64_t k) {
  return static_cast<size_t>((n_rows + kPackRows - 1) / kPackRows) * packed_panel_bytes(type, k);
}

void repack(DType type, const uint8_t* w, size_t w_row_bytes, int64_t n_rows, int64_t k, int64_t row_begin,
            int64_t row_end, uint8_t* out) {
  const int64_t n_blocks = k / 32;
  const int vectors = block_vectors(type);
  const size_t block_bytes = block_bytes_of(type);
  const size_t panel_bytes = packed_panel_bytes(type, k);
  const int64_t first_panel = row_begin / kPackRows, end_panel = (row_end + kPackRows - 1) / kPackRows;
  std::memset(out + static_cast<size_t>(first_panel) * panel_bytes, 0,
              static_cast<size_t>(end_panel - first_panel) * panel_bytes);
  for (int64_t p = first_panel; p < end_panel; ++p) {
    uint8_t* panel = out + static_cast<size_t>(p) * panel_bytes;
    for (int64_t r = 0; r < kPackRows && p * kPackRows + r < n_rows; ++r) {
      const uint8_t* row = w + static_cast<size_t>(p * kPackRows + r) * w_row_bytes;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const uint8_t* block = row + static_cast<size_t>(b) * block_bytes;
        uint8_t* pair = panel + static_cast<size_t>(b / 2) * pair_bytes(type);
        std::memcpy(pair + 32 * (b % 2) + 2 * r, block, 2);  // fp16 d
        uint8_t* quants = pair + 64 + static_cast<size_t>(b % 2) * 64 * static_cast<size_t>(vectors);
        for (int v = 0; v < vectors; ++v) {
          uint8_t* dst = quants + 64 * v + 4 * r;
          std::memcpy(dst, block + 2 + 4 * v, 4);
          if (type == DType::kQ8_0) {
            for (int i = 0; i < 4; ++i) dst[i] ^= 0x80;  // int8 q -> unsigned q + 128
          }
        }
      }
    }
  }
}

void unpack_row(DType type, const uint8_t* packed, int64_t k, int64_t row, uint8_t* out) {
  const int vectors = block_vectors(type);
  const size_t block_bytes = block_bytes_of(type);
  const uint8_t* panel = packed + static_cast<size_t>(row / kPackRows) * packed_panel_bytes(type, k);
  const int64_t r = row % kPackRows;
  for (int64_t b = 0; b < k / 32; ++b) {
    const uint8_t* pair = panel + static_cast<size_t>(b / 2) * pair_bytes(type);
    uint8_t* block = out + static_cast<size_t>(b) * block_bytes;
    std::memcpy(block, pair + 32 * (b % 2) + 2 * r, 2);
    const uint8_t* quants = pair + 64 + static_cast<size_t>(b % 2) * 64 * static_cast<size_t>(vectors);
    for (int v = 0; v < vectors; ++v) {
      std::memcpy(block + 2 + 4 * v, quants + 64 * v + 4 * r, 4);
      if (type == DType::kQ8_0) {
        for (int i = 0; i < 4; ++i) block[2 + 4 * v + i] ^= 0x80;
      }
    }
  }
}

}  // namespace edgellm::kernels
