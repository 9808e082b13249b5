#include "quant/scale_search.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/quant_blocks.h"
#include "kernels/quant_edgellm.h"
#include "kernels/quantize.h"
#include "kernels/ref/quant_ref.h"
#include "util/half.h"

namespace edgellm {
namespace {

constexpr int kMaxGroup = 256;

// One group's quantization in level space: x_hat[j] = d * L[j] + m with d, m exactly representable in fp16
// (what the block will store) and L[j] in [lmin, lmax].
struct GroupFit {
  float d = 0, m = 0;
  int levels[kMaxGroup];
  double err = INFINITY;
};

// The level grid of a type: symmetric types (m = 0) or affine ones (fp16 offset m). With a codebook
// (IQ4_NL), a level is an index into it and stands for the value codebook[level]; otherwise for itself.
struct LevelGrid {
  int lmin, lmax;
  bool has_offset;
  bool negative_scale;  // d < 0 allowed: Q4_0's asymmetric range [-8, 7] can put the largest |x| on -8
  float lo_frac;        // candidate scales span [lo_frac, hi_frac] x the scale that just reaches the extreme
  float hi_frac;
  int candidates_per_unit;  // candidates per ScaleSearchOptions::n_candidates / 32
  const int8_t* codebook = nullptr;
  int refined_per_unit = 4;  // refitted candidates per ScaleSearchOptions::n_refined / 4

  float value(int level) const { return codebook ? static_cast<float>(codebook[level]) : static_cast<float>(level); }
  // The level whose value is nearest to v (v in level units: (x - m) / d).
  int nearest(float v) const {
    if (codebook) return ref::iq4nl_nearest_index(v);
    return static_cast<int>(std::clamp(std::nearbyint(v), static_cast<float>(lmin), static_cast<float>(lmax)));
  }
  // The value the extreme element reaches at the scale that "just fits" it, for d > 0 (top) and d < 0.
  float top() const { return value(lmax); }
  float bottom() const { return value(lmin); }
};

float fp16_round(float v) { return fp16_to_f32(f32_to_fp16(v)); }

// v rounded to the nearest integer, ties to even (as nearbyint in the default rounding mode), for
// |v| < 2^22: adding and subtracting 1.5 * 2^23 leaves no fraction bits. Inline, unlike nearbyintf.
// (IEEE arithmetic without -ffast-math: the compiler may not fold the two operations away.)
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;
  return (v + kMagic) - kMagic;
}

// Nearest levels for a fixed (d, m): optimal for that (d, m) element by element, whatever the weights.
// The error is evaluated as the dequantizers compute the values: one f32 multiply and one add.
double round_and_score(const float* x, const float* w, int n, float d, float m, const LevelGrid& g, int* levels) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  double err = 0;
  if (g.codebook) {
    for (int j = 0; j < n; ++j) {
      const int l = ref::iq4nl_nearest_index((x[j] - m) * id);
      levels[j] = l;
      const float e = x[j] - (d * static_cast<float>(g.codebook[l]) + m);
      err += static_cast<double>(w[j] * e * e);
    }
    return err;
  }
  const float lo = static_cast<float>(g.lmin), hi = static_cast<float>(g.lmax);
  for (int j = 0; j < n; ++j) {
    // Clamping before rounding is the same as after (the bounds are integers) and keeps |v| small.
    const float q = round_even(std::min(hi, std::max(lo, (x[j] - m) * id)));
    levels[j] = static_cast<int>(q);
    const float e = x[j] - (d * q + m);
    err += static_cast<double>(w[j] * e * e);
  }
  return err;
}

// Weighted least squares of x ~ d * L + m (or x ~ d * L) for fixed levels. False if degenerate.
bool refit(const float* x, const float* w, int n, const int* levels, const LevelGrid& g, float& d, float& m) {
  const bool has_offset = g.has_offset;
  double sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
  for (int j = 0; j < n; ++j) {
    const double wj = w[j], l = g.value(levels[j]);
    sw += wj;
    sl += wj * l;
    sll += wj * l * l;
    sx += wj * x[j];
    slx += wj * l * x[j];
  }
  if (!has_offset) {
    if (sll <= 0) return false;
    d = static_cast<float>(slx / sll);
    m = 0;
    return true;
  }
  const double det = sw * sll - sl * sl;
  if (!(det > 1e-30 * sw * sll)) return false;
  d = static_cast<float>((sw * slx - sl * sx) / det);
  m = static_cast<float>((sll * sx - sl * slx) / det);
  return true;
}

// Rounds (d, m) to what the block stores (fp16), rounds the group on that grid into `scratch`, keeps it in
// `best` if it is better, and returns its error; +inf (nothing scored) for a scale the grid cannot use.
double score_start(const float* x, const float* w, int n, float& d, float& m, const LevelGrid& g, GroupFit& best,
                   int* scratch) {
  d = fp16_round(d);
  m = g.has_offset ? fp16_round(m) : 0.0f;
  if (d == 0.0f || !std::isfinite(d) || !std::isfinite(m)) return INFINITY;
  if (d < 0 && !g.negative_scale) return INFINITY;
  const double err = round_and_score(x, w, n, d, m, g, scratch);
  if (err < best.err) {
    best.err = err;
    best.d = d;
    best.m = m;
    std::memcpy(best.levels, scratch, sizeof(int) * static_cast<size_t>(n));
  }
  return err;
}

// Tries a starting (d, m): rounds, scores, refits, and keeps the best fit seen in `best`.
void try_start(const float* x, const float* w, int n, float d, float m, const LevelGrid& g, int n_refits,
               GroupFit& best, int* scratch) {
  for (int it = 0; it <= n_refits; ++it) {
    if (!std::isfinite(score_start(x, w, n, d, m, g, best, scratch))) return;
    if (it == n_refits || !refit(x, w, n, scratch, g, d, m)) return;
  }
}

// The starts with the smallest error after one rounding, best first; only they get refitted.
class TopStarts {
 public:
  explicit TopStarts(int capacity) : capacity_(std::clamp(capacity, 0, kMax)) {}
  void offer(float d, float m, double err) {
    int i = size_;
    if (i == capacity_) {
      if (capacity_ == 0 || !(err < starts_[i - 1].err)) return;
      --i;
    } else {
      ++size_;
    }
    for (; i > 0 && err < starts_[i - 1].err; --i) starts_[i] = starts_[i - 1];
    starts_[i] = {d, m, err};
  }
  int size() const { return size_; }
  float d(int i) const { return starts_[i].d; }
  float m(int i) const { return starts_[i].m; }

 private:
  static constexpr int kMax = 16;
  struct Start {
    float d, m;
    double err;
  };
  Start starts_[kMax] = {};
  int capacity_, size_ = 0;
};

void search_group(const float* x, const float* w, int n, const LevelGrid& g, const ScaleSearchOptions& opt,
                  GroupFit& best) {
  int scratch[kMaxGroup];
  const int n_cand = std::max(2, opt.n_candidates * g.candidates_per_unit / 32);
  auto frac_of = [&](int c) {
    return g.lo_frac + (g.hi_frac - g.lo_frac) * static_cast<float>(c) / static_cast<float>(n_cand - 1);
  };
  // Symmetric grids: every candidate is rounded and scored once (as stored: fp16 scale); the best few
  // are then refitted (try_start), which is where most of the time would go if every candidate were.
  TopStarts top(opt.n_refined * g.refined_per_unit / 4);
  auto consider = [&](float d, float m) {
    const double err = score_start(x, w, n, d, m, g, best, scratch);
    if (std::isfinite(err)) top.offer(d, m, err);
  };
  if (!g.has_offset) {
    float amax = 0;
    for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
    if (amax == 0) return;
    // The extreme element sits at level +reach (d > 0) or -reach (d < 0) for frac = 1; smaller scales
    // clip it, larger ones leave levels unused but move every rounding error. The error is a jagged
    // function of the scale (each element's rounding error jumps as its level changes), so a fine grid
    // finds scales on which the group's values happen to fall close to levels; the refits then move the
    // best starts to their local least-squares optimum.
    for (int sign : {+1, -1}) {
      if (sign < 0 && !g.negative_scale) continue;
      const float reach = sign > 0 ? g.top() : -g.bottom();
      for (int c = 0; c < n_cand; ++c) consider(static_cast<float>(sign) * amax * frac_of(c) / reach, 0.0f);
    }
  } else {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    if (hi == lo) return;
    // Scales around the one spanning [lo, hi] exactly (frac = 1), anchored at the minimum and at the
    // maximum in turn; the least-squares refits then place scale and offset. Every start is refitted:
    // with an offset, the refit moves a start much further than the scale alone does, and refitting only
    // the best-scored starts lost quality (tiny random qwen3, e4_g128: logits error 0.28 -> 0.41).
    const float levels = static_cast<float>(g.lmax - g.lmin);
    for (int c = 0; c < n_cand; ++c) {
      const float d = (hi - lo) * frac_of(c) / levels;
      try_start(x, w, n, d, lo, g, opt.n_refits, best, scratch);
      try_start(x, w, n, d, hi - d * levels, g, opt.n_refits, best, scratch);
    }
    return;
  }
  for (int i = 0; i < top.size(); ++i) try_start(x, w, n, top.d(i), top.m(i), g, opt.n_refits, best, scratch);
}

// Stores a fit in the type's block layout (one block = one group).
void pack(DType type, const GroupFit& f, void* block) { pack_group(type, GroupGrid{f.d, f.m, 0, 0}, f.levels, block); }

LevelGrid grid_of(DType type);

}  // namespace

void pack_group(DType type, const GroupGrid& grid, const int* levels, void* block) {
  const uint16_t d_bits = f32_to_fp16(grid.d), m_bits = f32_to_fp16(grid.m);
  switch (type) {
    case DType::kIQ4_NL: {
      auto& b = *static_cast<BlockIQ4_NL*>(block);
      b.d = d_bits;
      for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + 16] << 4));
      return;
    }
    case DType::kQ4_0: {
      auto& b = *static_cast<BlockQ4_0*>(block);
      b.d = d_bits;
      for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((levels[j] + 8) | ((levels[j + 16] + 8) << 4));
      return;
    }
    case DType::kQ4_1: {
      auto& b = *static_cast<BlockQ4_1*>(block);
      b.d = d_bits;
      b.m = m_bits;
      for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(levels[j] | (levels[j + 16] << 4));
      return;
    }
    case DType::kQ8_0: {
      auto& b = *static_cast<BlockQ8_0*>(block);
      b.d = d_bits;
      for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(levels[j]);
      return;
    }
    default: {
      uint8_t lv[kMaxGroup];
      const int group = e4_group_size(type);
      for (int j = 0; j < group; ++j) lv[j] = static_cast<uint8_t>(levels[j]);
      switch (group) {
        case 64: e4_pack(lv, d_bits, m_bits, *static_cast<BlockE4G64*>(block)); return;
        case 128: e4_pack(lv, d_bits, m_bits, *static_cast<BlockE4G128*>(block)); return;
        default: e4_pack(lv, d_bits, m_bits, *static_cast<BlockE4G256*>(block)); return;
      }
    }
  }
}

namespace {

LevelGrid grid_of(DType type) {
  switch (type) {
    // Ranges found on Gaussian and outlier-heavy test rows (tests/quant_search_test.cpp prints the
    // gains); 8-bit gains most from many candidates near frac = 1 and from refitting more of them (KL of
    // stories260K's w8a8 to f16: 0.00070 with 4 refitted of 96, 0.00069 with 8, 0.00071 with 4 of 48).
    // Candidate counts are the smallest that keep the gains of tests/quant_search_test.cpp unchanged:
    // bench/quant_search_bench measures what each costs.
    case DType::kQ4_0: return {-8, 7, false, true, 0.6f, 1.1f, 16};
    // Codebook -127 .. 113: either end can take the extreme element (d < 0 puts it on +113 or -127).
    case DType::kIQ4_NL: return {0, 15, false, true, 0.6f, 1.15f, 16, kIQ4NLValues};
    case DType::kQ8_0: return {-127, 127, false, false, 0.9f, 1.15f, 96, nullptr, 8};  // ggml never stores -128: neither do we
    default: return {0, 15, true, false, 0.6f, 1.1f, 32};                  // Q4_1 and the e4 types
  }
}

double block_error(DType type, const float* x, const float* w, const void* block, int n) {
  float y[kMaxGroup];
  if (!dequantize_row(type, block, y, n).ok()) return INFINITY;
  double err = 0;
  for (int j = 0; j < n; ++j) {
    const double e = static_cast<double>(x[j]) - y[j];
    err += static_cast<double>(w[j]) * e * e;
  }
  return err;
}

}  // namespace

int GroupGrid::level(float x) const {
  if (codebook) return d == 0.0f ? ref::iq4nl_nearest_index(0.0f) : ref::iq4nl_nearest_index((x - m) / d);
  if (d == 0.0f) return std::clamp(0, lmin, lmax);
  const float q = std::nearbyint((x - m) / d);
  return static_cast<int>(std::clamp(q, static_cast<float>(lmin), static_cast<float>(lmax)));
}

float GroupGrid::value(int level) const {
  return d * (codebook ? static_cast<float>(codebook[level]) : static_cast<float>(level)) + m;
}

GroupGrid search_group_grid(DType type, const float* x, const float* importance, const ScaleSearchOptions& options) {
  const LevelGrid g = grid_of(type);
  const int group = static_cast<int>(dtype_traits(type).block_size);
  float ones[kMaxGroup];
  std::fill(ones, ones + group, 1.0f);
  GroupFit best;
  search_group(x, importance ? importance : ones, group, g, options, best);
  if (!std::isfinite(best.err)) return GroupGrid{0.0f, 0.0f, g.lmin, g.lmax, g.codebook};  // all equal (zero) values
  return GroupGrid{best.d, best.m, g.lmin, g.lmax, g.codebook};
}

bool has_scale_search(DType type) {
  return type == DType::kQ4_0 || type == DType::kIQ4_NL || type == DType::kQ4_1 || type == DType::kQ8_0 ||
         dtype_is_edgellm_only(type);
}

Status quantize_row_searched(DType type, const float* x, const float* importance, void* dst, int64_t n,
                             const ScaleSearchOptions& options) {
  if (!has_scale_search(type)) return quantize_row(type, x, dst, n);
  const DTypeTraits& traits = dtype_traits(type);
  const int group = static_cast<int>(traits.block_size);
  if (n < 0 || n % group != 0) return quantize_row(type, x, dst, n);  // the same error message
  float ones[kMaxGroup];
  std::fill(ones, ones + group, 1.0f);
  const LevelGrid g = grid_of(type);
  alignas(8) uint8_t candidate[4 + kMaxGroup];
  for (int64_t b = 0; b < n / group; ++b) {
    const float* xg = x + b * group;
    const float* wg = importance ? importance + b * group : ones;
    auto* out = static_cast<uint8_t*>(dst) + static_cast<size_t>(b) * traits.block_bytes;
    // RTN first, so the search can only improve on it (both scored on the stored, dequantized values).
    EDGELLM_TRY(quantize_row(type, xg, out, group));
    const double rtn_err = block_error(type, xg, wg, out, group);
    GroupFit best;
    search_group(xg, wg, group, g, options, best);
    if (!std::isfinite(best.err)) continue;
    pack(type, best, candidate);
    if (block_error(type, xg, wg, candidate, group) < rtn_err) std::memcpy(out, candidate, traits.block_bytes);
  }
  return {};
}

Expected<double> weighted_squared_error(DType type, const float* x, const void* quantized, const float* importance,
                                        int64_t n) {
  double err = 0;
  float y[kMaxGroup];
  const int64_t chunk = dtype_traits(type).quantized ? dtype_traits(type).block_size : 1;
  const size_t chunk_bytes = dtype_row_bytes(type, chunk);
  if (n % chunk != 0) return make_error(ErrorCode::kInvalidArgument, "weighted_squared_error: partial block");
  for (int64_t b = 0; b < n / chunk; ++b) {
    EDGELLM_TRY(dequantize_row(type, static_cast<const uint8_t*>(quantized) + b * chunk_bytes, y, chunk));
    for (int64_t j = 0; j < chunk; ++j) {
      const double e = static_cast<double>(x[b * chunk + j]) - y[j];
      err += (importance ? static_cast<double>(importance[b * chunk + j]) : 1.0) * e * e;
    }
  }
  return err;
}

}  // namespace edgellm
