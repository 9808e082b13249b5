// Reference (de)quantization and matmul of the edgellm-only 4-bit types (kernels/quant_edgellm.h).
#include "kernels/quant_edgellm.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "util/check.h"
#include "util/half.h"

namespace edgellm {

int e4_group_size(DType type) {
  switch (type) {
    case DType::kE4G64: return 64;
    case DType::kE4G128: return 128;
    case DType::kE4G256: return 256;
    default: return 0;
  }
}

namespace ref {
namespace {

template <int G>
void quantize_block_rtn(const float* x, BlockE4<G>& y) {
  float min = FLT_MAX, max = -FLT_MAX;
  for (int j = 0; j < G; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
  const uint16_t d_bits = f32_to_fp16((max - min) / 15.0f);
  const uint16_t m_bits = f32_to_fp16(min);
  const float d = fp16_to_f32(d_bits), m = fp16_to_f32(m_bits);
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  uint8_t levels[G];
  for (int j = 0; j < G; ++j) {
    const float q = std::nearbyint((x[j] - m) * id);
    levels[j] = static_cast<uint8_t>(std::clamp(q, 0.0f, 15.0f));
  }
  e4_pack(levels, d_bits, m_bits, y);
}

template <int G>
void dequantize_block(const BlockE4<G>& x, float* y) {
  const float d = fp16_to_f32(x.d), m = fp16_to_f32(x.m);
  for (int j = 0; j < G / 2; ++j) {
    y[j] = d * static_cast<float>(x.qs[j] & 0xF) + m;
    y[j + G / 2] = d * static_cast<float>(x.qs[j] >> 4) + m;
  }
}

template <int G>
void quantize_rows(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockE4<G>*>(dst);
  for (int64_t b = 0; b < n / G; ++b) quantize_block_rtn<G>(src + b * G, blocks[b]);
}

template <int G>
void dequantize_rows(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockE4<G>*>(src);
  for (int64_t b = 0; b < n / G; ++b) dequantize_block<G>(blocks[b], dst + b * G);
}

template <int G>
void matmul_rows(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end) {
  const int64_t n_blocks = args.k / G;
  for (int64_t token = 0; token < args.n_tokens; ++token) {
    const float* x = args.x + token * args.k;
    for (int64_t row = row_begin; row < row_end; ++row) {
      const auto* blocks = reinterpret_cast<const BlockE4<G>*>(args.w + static_cast<size_t>(row) * args.w_row_bytes);
      float acc = 0.0f;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const BlockE4<G>& blk = blocks[b];
        const float* xb = x + b * G;
        float sum_qx = 0.0f, sum_x = 0.0f;
        for (int j = 0; j < G / 2; ++j) {
          sum_qx += static_cast<float>(blk.qs[j] & 0xF) * xb[j] + static_cast<float>(blk.qs[j] >> 4) * xb[j + G / 2];
          sum_x += xb[j] + xb[j + G / 2];
        }
        acc += fp16_to_f32(blk.d) * sum_qx + fp16_to_f32(blk.m) * sum_x;
      }
      args.y[token * args.y_stride + (row - row_begin)] = acc;
    }
  }
}

}  // namespace

bool quantize_row_e4(DType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case DType::kE4G64: quantize_rows<64>(src, dst, n); return true;
    case DType::kE4G128: quantize_rows<128>(src, dst, n); return true;
    case DType::kE4G256: quantize_rows<256>(src, dst, n); return true;
    default: return false;
  }
}

bool dequantize_row_e4(DType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kE4G64: dequantize_rows<64>(src, dst, n); return true;
    case DType::kE4G128: dequantize_rows<128>(src, dst, n); return true;
    case DType::kE4G256: dequantize_rows<256>(src, dst, n); return true;
    default: return false;
  }
}

void matmul_rows_e4(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end) {
  switch (args.type) {
    case DType::kE4G64: matmul_rows<64>(args, row_begin, row_end); return;
    case DType::kE4G128: matmul_rows<128>(args, row_begin, row_end); return;
    case DType::kE4G256: matmul_rows<256>(args, row_begin, row_end); return;
    default: EDGELLM_CHECK(false && "matmul_rows_e4: not an edgellm-only type");
  }
}

}  // namespace ref
}  // namespace edgellm
