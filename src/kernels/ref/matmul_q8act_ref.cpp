// Scalar reference of the int8-activation matmul (kernels/act_quant.h) and of the activation
// quantizer that defines the format. Plain loops over 32-element blocks, in k order; every SIMD
// variant is tested against these.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/act_quant.h"
#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/ref/matmul_ref.h"
#include "util/check.h"
#include "util/half.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

namespace edgellm::ref {

void quantize_act(const float* x, int64_t k, uint8_t* out) {
  using kernels::kActGroup;
  const int64_t n_groups = kernels::act_groups(k);
  for (int64_t g = 0; g < n_groups; ++g) {
    uint8_t* group = out + static_cast<size_t>(g) * kernels::kActGroupBytes;
    int8_t* qs = reinterpret_cast<int8_t*>(group);
    float d_lanes[16];
    int32_t s_lanes[16] = {};
    for (int b = 0; b < 4; ++b) {
      const int64_t first = g * kActGroup + 32 * b;
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, first + j < k ? std::fabs(x[first + j]) : 0.0f);
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      for (int j = 0; j < 32; ++j) {
        const float v = first + j < k ? x[first + j] : 0.0f;
        const int q = static_cast<int>(std::nearbyint(v * id));
        const int pos = j < 16 ? 16 * b + j : 64 + 16 * b + (j - 16);
        qs[pos] = static_cast<int8_t>(q);
      }
      for (int lane = 4 * b; lane < 4 * b + 4; ++lane) d_lanes[lane] = d;
    }
    for (int lane = 0; lane < 16; ++lane) {
      for (int byte = 4 * lane; byte < 4 * lane + 4; ++byte) s_lanes[lane] += qs[byte] + qs[64 + byte];
    }
    std::memcpy(group + kernels::kActScalesOffset, d_lanes, sizeof(d_lanes));
    std::memcpy(group + kernels::kActSumsOffset, s_lanes, sizeof(s_lanes));
  }
}

float act_scale(const uint8_t* row, int64_t j) {
  const uint8_t* group = row + static_cast<size_t>(j / kernels::kActGroup) * kernels::kActGroupBytes;
  float d;
  std::memcpy(&d, group + kernels::kActScalesOffset + 4 * ((j % kernels::kActGroup) / 32 * 4), sizeof(d));
  return d;
}

namespace {

// One 32-element block of a weight row as integers: x_w[j] = d * w[j] + m.
struct IntBlock {
  float d = 0.0f;
  float m = 0.0f;
  int w[32];
};

// Block `b` (elements 32 b .. 32 b + 31) of a weight row.
void weight_block(DType type, const uint8_t* row, int64_t b, IntBlock& out) {
  switch (type) {
    case DType::kQ4_0: {
      BlockQ4_0 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ4_0), sizeof(blk));
      out.d = fp16_to_f32(blk.d);
      for (int j = 0; j < 16; ++j) {
        out.w[j] = (blk.qs[j] & 0xF) - 8;
        out.w[j + 16] = (blk.qs[j] >> 4) - 8;
      }
      return;
    }
    case DType::kIQ4_NL: {
      BlockIQ4_NL blk;
      std::memcpy(&blk, row + b * sizeof(BlockIQ4_NL), sizeof(blk));
      out.d = fp16_to_f32(blk.d);
      for (int j = 0; j < 16; ++j) {
        out.w[j] = kIQ4NLValues[blk.qs[j] & 0xF];
        out.w[j + 16] = kIQ4NLValues[blk.qs[j] >> 4];
      }
      return;
    }
    case DType::kQ4_1: {
      BlockQ4_1 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ4_1), sizeof(blk));
      out.d = fp16_to_f32(blk.d);
      out.m = fp16_to_f32(blk.m);
      for (int j = 0; j < 16; ++j) {
        out.w[j] = blk.qs[j] & 0xF;
        out.w[j + 16] = blk.qs[j] >> 4;
      }
      return;
    }
    case DType::kQ8_0: {
      BlockQ8_0 blk;
      std::memcpy(&blk, row + b * sizeof(BlockQ8_0), sizeof(blk));
      out.d = fp16_to_f32(blk.d);
      for (int j = 0; j < 32; ++j) out.w[j] = blk.qs[j];
      return;
    }
    case DType::kE4G64:
    case DType::kE4G128:
    case DType::kE4G256: {
      const int group = e4_group_size(type);
      const int per_block = group / 32;
      const uint8_t* blk = row + (b / per_block) * (4 + group / 2);
      uint16_t d_bits, m_bits;
      std::memcpy(&d_bits, blk, 2);
      std::memcpy(&m_bits, blk + 2, 2);
      out.d = fp16_to_f32(d_bits);
      out.m = fp16_to_f32(m_bits);
      const uint8_t* qs = blk + 4;
      for (int j = 0; j < 32; ++j) {
        const int e = static_cast<int>(b % per_block) * 32 + j;  // element within the e4 block
        out.w[j] = e < group / 2 ? (qs[e] & 0xF) : (qs[e - group / 2] >> 4);
      }
      return;
    }
    default: EDGELLM_CHECK(false && "matmul_rows_q8act: type without an int8-activation kernel");
  }
}

}  // namespace

bool q8act_supported(DType type) {
  switch (type) {
    case DType::kQ4_0:
    case DType::kIQ4_NL:
    case DType::kQ4_1:
    case DType::kQ8_0:
    case DType::kE4G64:
    case DType::kE4G128:
    case DType::kE4G256: return true;
    default: return false;
  }
}

// y = sum over blocks b of (d_w d_x) * sum_j w_j q_j + (m_w d_x) * sum_j q_j, in block order.
void matmul_rows_q8act(const kernels::MatmulArgs& args, int64_t row_begin, int64_t row_end) {
  const int64_t n_blocks = args.k / 32;
  IntBlock blk;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const uint8_t* w_row = args.w + static_cast<size_t>(row) * args.w_row_bytes;
    for (int64_t token = 0; token < args.n_tokens; ++token) {
      const uint8_t* xq = args.xq + static_cast<size_t>(token) * args.xq_row_bytes;
      float acc = 0.0f;
      for (int64_t b = 0; b < n_blocks; ++b) {
        weight_block(args.type, w_row, b, blk);
        int32_t dot = 0, sum = 0;
        for (int j = 0; j < 32; ++j) {
          const int q = act_q(xq, 32 * b + j);
          dot += blk.w[j] * q;
          sum += q;
        }
        const float dx = act_scale(xq, 32 * b);
        acc += (blk.d * dx) * static_cast<float>(dot);
        if (blk.m != 0.0f) acc += (blk.m * dx) * static_cast<float>(sum);
      }
      args.y[token * args.y_stride + (row - row_begin)] = acc;
    }
  }
}

}  // namespace edgellm::ref
