// Scalar attention variant (the reference the ISA variants are tested against) and the run-time choice.
#include "model/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <cstring>

#include "kernels/kernel_table.h"
#include "kernels/quant_blocks.h"
#include "model/attention_tile.h"
#include "util/half.h"
#include "util/log.h"

namespace edgellm {
namespace {

struct ScalarOps {
  static void load_row(DType type, const uint8_t* src, int64_t n, float* dst) {
    if (type == DType::kF32) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
    } else if (type == DType::kF16) {
      const auto* h = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_f32(h[i]);
    } else {  // kQ8_0
      const auto* blocks = reinterpret_cast<const BlockQ8_0*>(src);
      for (int64_t ib = 0; ib < n / 32; ++ib) {
        const float d = fp16_to_f32(blocks[ib].d);
        for (int i = 0; i < 32; ++i) dst[ib * 32 + i] = d * static_cast<float>(blocks[ib].qs[i]);
      }
    }
  }
  static float dot(const float* a, const float* b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }
  static void scale(float* y, float a, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] *= a;
  }
  static void axpy(float a, const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
  }
  static void weighted_sum(const float* p, const float* v, int64_t n, int64_t d, float* out) {
    for (int64_t j = 0; j < n; ++j) axpy(p[j], v + j * d, out, d);
  }
  static void scores_t(const float* q, const float* kt, int64_t d, float* s) {
    for (int64_t j = 0; j < kAttnKeyTile; ++j) s[j] = 0.0f;
    for (int64_t i = 0; i < d; ++i) {
      for (int64_t j = 0; j < kAttnKeyTile; ++j) s[j] += q[i] * kt[i * kAttnKeyTile + j];
    }
  }
  static void transpose(const float* rows, int64_t m, int64_t d, float* kt) {
    attention_detail::transpose_rows(rows, m, d, kt);
  }
  static float exp_sum(float* s, int64_t n, float m) {
    float sum = 0.0f;
    for (int64_t j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - m));
    return sum;
  }
};


struct Choice {
  AttentionBlockFn fn;
  const char* name;
};

Choice choose() {
  Choice best{attention_block_scalar, "scalar"};
  if (auto fn = attention_variant(AttentionIsa::kAvx2)) best = {fn, "avx2"};
  if (auto fn = attention_variant(AttentionIsa::kAvx512)) best = {fn, "avx512"};
  if (auto fn = attention_variant(AttentionIsa::kNeon)) best = {fn, "neon"};
  Choice chosen = best;
  const char* forced = std::getenv("EDGELLM_ISA");
  if (forced != nullptr && *forced != '\0') {
    if (std::strcmp(forced, "scalar") == 0) {
      chosen = {attention_block_scalar, "scalar"};
    } else if (std::strcmp(forced, "avx2") == 0 && attention_variant(AttentionIsa::kAvx2)) {
      chosen = {attention_variant(AttentionIsa::kAvx2), "avx2"};
    } else if (std::strcmp(forced, "avx512") == 0 && attention_variant(AttentionIsa::kAvx512)) {
      chosen = {attention_variant(AttentionIsa::kAvx512), "avx512"};
    } else if ((std::strcmp(forced, "neon") == 0 || std::strcmp(forced, "neon_dot") == 0) &&
               attention_variant(AttentionIsa::kNeon)) {
      chosen = {attention_variant(AttentionIsa::kNeon), "neon"};
    } else {
      EDGELLM_LOG_WARN("attention: EDGELLM_ISA=%s is not available here; using %s", forced, best.name);
    }
  }
  EDGELLM_LOG_INFO("attention: using the %s variant", chosen.name);
  return chosen;
}

const Choice& active() {
  static const Choice choice = choose();
  return choice;
}

}  // namespace

void attention_block_scalar(const AttentionBlock& block, float* work) {
  attention_detail::attention_block_impl<ScalarOps>(block, work);
}

size_t attention_work_floats(int64_t head_dim, int64_t n_group) {
  return attention_detail::work_floats(head_dim, n_group);
}

AttentionBlockFn attention_variant(AttentionIsa isa) {
  switch (isa) {
    case AttentionIsa::kScalar: return attention_block_scalar;
#if defined(__x86_64__)
    case AttentionIsa::kAvx2: return kernels::cpu_has_avx2() ? attention_block_avx2 : nullptr;
    case AttentionIsa::kAvx512: return kernels::cpu_has_avx512() ? attention_block_avx512 : nullptr;
#endif
#if defined(__aarch64__)
    case AttentionIsa::kNeon: return attention_block_neon;
#endif
    default: return nullptr;
  }
}

const char* attention_isa_name() { return active().name; }

void attention_block(const AttentionBlock& block, float* work) { active().fn(block, work); }

void merge_attention_parts(const float* outs, int64_t part_stride, const float* maxes, const float* sums,
                           int64_t max_stride, int64_t n_parts, int64_t head_dim, float* out) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t p = 0; p < n_parts; ++p) m = std::max(m, maxes[p * max_stride]);
  float l = 0.0f;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t p = 0; p < n_parts; ++p) {
    const float w = std::exp(maxes[p * max_stride] - m);  // 0 for a part that saw no key
    l += w * sums[p * max_stride];
    for (int64_t i = 0; i < head_dim; ++i) out[i] += w * outs[p * part_stride + i];
  }
  for (int64_t i = 0; i < head_dim; ++i) out[i] /= l;
}

}  // namespace edgellm
