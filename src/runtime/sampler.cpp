#include "runtime/sampler.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "util/check.h"

namespace edgellm {
namespace {

using Candidate = Sampler::Candidate;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Branch-free select. The loops below must vectorise, and with GCC's default -ftrapping-math a float
// comparison inside ?: (or std::min/std::max) keeps the loop scalar; a comparison used as a value does not.
inline float select(bool condition, float if_true, float if_false) {
  const uint32_t mask = 0u - static_cast<uint32_t>(condition);
  return std::bit_cast<float>((std::bit_cast<uint32_t>(if_true) & mask) |
                              (std::bit_cast<uint32_t>(if_false) & ~mask));
}

// exp(x) for the softmaxes below, written so the loops that call it vectorise (std::exp is an opaque
// library call, ~150 us over Qwen's vocabulary). Cody-Waite range reduction x = n*ln2 + r with
// |r| <= ln2/2 (ln2 split in a short high part and a correction), then the degree-6 Taylor polynomial of
// e^r: truncation error r^7/7! < 2e-7 relative, the order of float rounding. Callers pass x <= 0
// (logit minus the maximum): there is no overflow handling. Returns 0 below -87 (e^-87 ~ 1.6e-38, where
// the float normal range ends) and for NaN, which makes a NaN logit an impossible token rather than
// poisoning the sums.
inline float fast_exp(float x) {
  constexpr float kMin = -87.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;  // ln 2 rounded to 10 significant bits, so n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440e-4f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low bits
  const bool in_range = x >= kMin;  // false for NaN
  const float xc = select(in_range, x, kMin);
  const float shifted = xc * kLog2e + kRound;
  const float n = shifted - kRound;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n as an integer is the difference of the bit patterns (integer arithmetic: no float->int conversion,
  // which would also keep the loop scalar); 2^n is n + 127 in the exponent field.
  const uint32_t n_bits = std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(kRound);
  const float scale = std::bit_cast<float>((n_bits + 127u) << 23);
  return select(in_range, p * scale, 0.0f);
}

// Tokens are scanned in blocks of 16: a vectorised "does any entry pass?" test skips most blocks, and only
// blocks with a hit run the scalar code.
constexpr size_t kScanBlock = 16;

// Kept out of line on purpose: GCC 12 vectorises this 16-wide test as a function of its own but not once
// it is inlined into the scanning loops (measured: ~4x fewer instructions per block with the call).
template <class Pred>
[[gnu::noinline]] bool any_in_block(const float* x, Pred pred) {
  int32_t n_pass = 0;  // a count, not a bool |=: GCC vectorises the sum and not the or
  for (size_t i = 0; i < kScanBlock; ++i) n_pass += pred(x[i]) ? 1 : 0;
  return n_pass != 0;
}

// Index of the largest value (the first one on ties), ignoring NaN; n if every value is -inf or NaN. The
// running maximum changes rarely, so nearly every block is settled by the vectorised test.
size_t argmax(const float* x, size_t n) {
  float m = -kInf;
  size_t best = n;
  size_t i = 0;
  for (; i + kScanBlock <= n; i += kScanBlock) {
    if (!any_in_block(x + i, [m](float v) { return v > m; })) continue;
    for (size_t j = i; j < i + kScanBlock; ++j) {
      if (x[j] > m) {
        m = x[j];
        best = j;
      }
    }
  }
  for (; i < n; ++i) {
    if (x[i] > m) {
      m = x[i];
      best = i;
    }
  }
  return best;
}

// Sum of n floats in double precision, eight lanes (the order is fixed, so the result is deterministic).
double sum_double(const float* x, size_t n) {
  constexpr size_t kLanes = 8;
  double lane_sum[kLanes] = {};
  const size_t n_main = n - n % kLanes;
  for (size_t i = 0; i < n_main; i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) lane_sum[lane] += x[i + lane];
  }
  double s = 0.0;
  for (size_t i = n_main; i < n; ++i) s += x[i];
  for (double v : lane_sum) s += v;
  return s;
}

// Sum over i of w[i] * (x[i] - m), skipping w == 0 (where x may be -inf and the product NaN).
double weighted_offset_sum(const float* w, const float* x, float m, size_t n) {
  constexpr size_t kLanes = 8;
  double lane_sum[kLanes] = {};
  const size_t n_main = n - n % kLanes;
  for (size_t i = 0; i < n_main; i += kLanes) {
    for (size_t lane = 0; lane < kLanes; ++lane) {
      const float wi = w[i + lane];
      lane_sum[lane] += select(wi > 0.0f, wi * (x[i + lane] - m), 0.0f);
    }
  }
  double s = 0.0;
  for (size_t i = n_main; i < n; ++i) s += select(w[i] > 0.0f, w[i] * (x[i] - m), 0.0f);
  for (double v : lane_sum) s += v;
  return s;
}

// Orders: descending logit for top-k / top-p / min-p; ascending distance from a centre logit for typical-p.
// Ties go to the lower id, so every ordering is total and results do not depend on the algorithm.
struct ByLogitDesc {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

struct ByDistanceFrom {
  float centre;
  bool operator()(const Candidate& a, const Candidate& b) const {
    const float da = std::fabs(a.logit - centre);
    const float db = std::fabs(b.logit - centre);
    return da < db || (da == db && a.id < b.id);
  }
};

// Reorders c[0, n) so that the shortest prefix in `less` order whose weight reaches `target` comes first
// and returns its length (at least 1 when n > 0; n if rounding keeps the sum short of the target).
// The prefix is not sorted. A weighted quickselect: partition around a median-of-three pivot, keep the
// side that holds the cut, so a nucleus of 100k tokens costs a few linear passes instead of a sort.
// Small ranges (and, as a guard against bad pivots, anything left after 64 rounds) are sorted and walked.
template <class Less, class Weight>
size_t select_by_mass(Candidate* c, size_t n, Less less, Weight weight, double target) {
  constexpr size_t kSortBelow = 64;
  size_t lo = 0;       // c[0, lo) precede everything after and are kept
  size_t hi = n;       // c[hi, n) follow everything before and are dropped
  double kept = 0.0;   // weight of c[0, lo), always < target
  for (int round = 0; hi - lo > kSortBelow && round < 64; ++round) {
    Candidate* a = c + lo;
    Candidate* b = c + lo + (hi - lo) / 2;
    Candidate* z = c + hi - 1;
    if (less(*b, *a)) std::swap(*a, *b);
    if (less(*z, *b)) std::swap(*b, *z);
    if (less(*b, *a)) std::swap(*a, *b);
    std::swap(*b, *z);  // the median is now the pivot, at hi - 1
    const Candidate pivot = *z;
    Candidate* mid = std::partition(c + lo, z, [&](const Candidate& x) { return less(x, pivot); });
    std::swap(*mid, *z);  // [lo, mid) precede the pivot, now at mid, and (mid, hi) follow it
    const auto m = static_cast<size_t>(mid - c);
    double before = 0.0;
    for (size_t i = lo; i < m; ++i) before += weight(c[i]);
    if (kept + before >= target) {
      hi = m;
    } else if (kept + before + weight(c[m]) >= target) {
      return m + 1;
    } else {
      kept += before + weight(c[m]);
      lo = m + 1;
    }
  }
  std::sort(c + lo, c + hi, less);
  for (size_t i = lo; i < hi; ++i) {
    kept += weight(c[i]);
    if (kept >= target) return i + 1;
  }
  return hi;
}

// Copies the tokens whose logit passes `keep` into out (ascending id) and returns how many. NaN and -inf
// never pass the predicates used here.
template <class Keep>
size_t gather(const float* logits, size_t n_vocab, Candidate* out, Keep keep) {
  size_t n = 0;
  for (size_t block = 0; block < n_vocab; block += kScanBlock) {
    const size_t block_end = std::min(block + kScanBlock, n_vocab);
    if (block_end - block == kScanBlock && !any_in_block(logits + block, keep)) continue;
    for (size_t i = block; i < block_end; ++i) {
      if (keep(logits[i])) out[n++] = Candidate{static_cast<int32_t>(i), logits[i]};
    }
  }
  return n;
}

// 1 / T, capped so that a denormal temperature gives a huge finite factor rather than inf (0 * inf would
// turn the most likely token's weight into NaN); T <= 1e-30 is greedy in all but name.
float inverse_temperature(float temperature) {
  const float inv = 1.0f / temperature;
  return inv < 1e30f ? inv : 1e30f;
}

float max_logit(const Candidate* c, size_t n) {
  float m = -kInf;
  for (size_t i = 0; i < n; ++i) m = std::max(m, c[i].logit);
  return m;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed), mirostat_mu_(2.0f * params.mirostat_tau) {
  EDGELLM_CHECK(params.validate(n_vocab).ok());
  cand_.resize(static_cast<size_t>(n_vocab));
  weight_.resize(static_cast<size_t>(n_vocab));
  penalties_on_ = params.penalty_last_n != 0 &&
                  (params.repetition_penalty != 1.0f || params.frequency_penalty != 0.0f ||
                   params.presence_penalty != 0.0f);
  if (penalties_on_) {
    counts_.assign(static_cast<size_t>(n_vocab), 0);
    window_.resize(params.penalty_last_n > 0 ? static_cast<size_t>(params.penalty_last_n)
                                             : static_cast<size_t>(n_vocab));
  }
}

Expected<Sampler> Sampler::create(const SamplingParams& params, int32_t n_vocab) {
  EDGELLM_TRY(params.validate(n_vocab));
  return Sampler(params, n_vocab);
}

void Sampler::accept(int32_t token) {
  EDGELLM_CHECK(token >= 0 && token < n_vocab_);
  if (!penalties_on_) return;
  if (params_.penalty_last_n < 0) {
    // Whole context: list each distinct token once; there are at most n_vocab of them.
    if (counts_[static_cast<size_t>(token)]++ == 0) window_[window_size_++] = token;
    return;
  }
  if (window_size_ == window_.size()) {
    --counts_[static_cast<size_t>(window_[ring_next_])];  // the oldest token leaves the window
  } else {
    ++window_size_;
  }
  window_[ring_next_] = token;
  ++counts_[static_cast<size_t>(token)];
  ring_next_ = ring_next_ + 1 == window_.size() ? 0 : ring_next_ + 1;
}

void Sampler::reset() {
  for (size_t i = 0; i < window_size_; ++i) counts_[static_cast<size_t>(window_[i])] = 0;
  window_size_ = 0;
  ring_next_ = 0;
  rng_.seed(params_.seed);
  mirostat_mu_ = 2.0f * params_.mirostat_tau;
}

void Sampler::apply_logit_bias(float* logits) const {
  for (const auto& [id, bias] : params_.logit_bias) logits[id] += bias;
}

// Repetition penalty as in CTRL (Keskar et al. 2019, arXiv:1909.05858, sec. 4.1), made sign-aware as in
// llama.cpp so a penalised token always becomes less likely: positive logits are divided by the penalty,
// negative ones multiplied. Frequency and presence penalties as in the OpenAI API reference
// ("parameter details"): logit -= count * frequency_penalty + (count > 0) * presence_penalty.
// Each distinct token of the window is penalised once, with its count in the window.
void Sampler::apply_penalties(float* logits) {
  const float rep = params_.repetition_penalty;
  const float freq = params_.frequency_penalty;
  const float pres = params_.presence_penalty;
  // The window may list a token several times; negating its count marks it done, the second loop restores.
  for (size_t i = 0; i < window_size_; ++i) {
    const auto id = static_cast<size_t>(window_[i]);
    const int32_t count = counts_[id];
    if (count <= 0) continue;
    counts_[id] = -count;
    float l = logits[id];
    l = l > 0.0f ? l / rep : l * rep;
    logits[id] = l - (static_cast<float>(count) * freq + pres);
  }
  for (size_t i = 0; i < window_size_; ++i) {
    const auto id = static_cast<size_t>(window_[i]);
    counts_[id] = counts_[id] < 0 ? -counts_[id] : counts_[id];
  }
}

int32_t Sampler::sample(float* logits) { return sample(logits, kNoToken); }

int32_t Sampler::sample(float* logits, int32_t draft) {
  draft_ = draft >= 0 && draft < n_vocab_ ? draft : kNoToken;
  apply_logit_bias(logits);
  if (penalties_on_) apply_penalties(logits);

  const auto n_vocab = static_cast<size_t>(n_vocab_);
  if (params_.greedy()) {
    const size_t best = argmax(logits, n_vocab);
    return best == n_vocab ? kNoToken : static_cast<int32_t>(best);
  }
  if (params_.mirostat != 0) return sample_mirostat(logits);

  Candidate* cand = cand_.data();
  size_t n_cand = 0;  // size of the explicit set in cand_, when !full
  bool full = true;   // the set is still implicit: every token of the vocabulary with a finite logit

  // Whole-vocabulary statistics, computed when a step below needs them.
  float full_max = -kInf;
  size_t n_finite = 0;  // tokens with a finite logit, counted on demand (0: not yet)
  double full_z = 0.0;  // sum of weight_[id] = exp(logit - full_max)
  auto compute_full_softmax = [&] {
    float* w = weight_.data();
    for (size_t i = 0; i < n_vocab; ++i) w[i] = fast_exp(logits[i] - full_max);
    full_z = sum_double(w, n_vocab);
  };
  auto weight_by_id = [this](const Candidate& c) { return weight_[static_cast<size_t>(c.id)]; };
  // Gathers into cand_ the tokens whose key is within a band that doubles until it holds `target` mass
  // (or every finite token). For a peaked distribution the first band holds a few tokens and the scan is
  // almost entirely vectorised block tests.
  auto gather_band = [&](auto key, float band, double target) {
    for (;;) {
      const size_t n = gather(logits, n_vocab, cand, [key, band](float l) { return key(l) <= band; });
      double mass = 0.0;
      for (size_t j = 0; j < n; ++j) mass += weight_by_id(cand[j]);
      if (mass >= target) return n;
      if (n_finite == 0) {  // counted only when a band falls short, which is rare
        for (size_t i = 0; i < n_vocab; ++i) n_finite += logits[i] > -kInf ? 1 : 0;
      }
      if (n == n_finite) return n;  // everything is in; rounding kept the mass a hair short
      band *= 2.0f;
    }
  };

  // Top-k (Fan et al. 2018, "Hierarchical Neural Story Generation", arXiv:1805.04833): the k largest
  // logits. One scan keeps a buffer of up to 2k entries above a threshold and halves it with nth_element
  // when it fills, so once the threshold has risen nearly every block is rejected by a vectorised test.
  const auto top_k = static_cast<size_t>(std::max(params_.top_k, 0));
  if (top_k > 0 && top_k < n_vocab) {
    const size_t capacity = std::min(2 * top_k, n_vocab);
    float threshold = -kInf;
    size_t n = 0;
    for (size_t block = 0; block < n_vocab; block += kScanBlock) {
      const size_t block_end = std::min(block + kScanBlock, n_vocab);
      if (block_end - block == kScanBlock &&
          !any_in_block(logits + block, [threshold](float l) { return l > threshold; })) {
        continue;
      }
      for (size_t i = block; i < block_end; ++i) {
        // Strictly greater: a later token equal to the threshold has a higher id than every kept tie.
        if (!(logits[i] > threshold)) continue;
        cand[n++] = Candidate{static_cast<int32_t>(i), logits[i]};
        if (n == capacity) {
          std::nth_element(cand, cand + top_k - 1, cand + n, ByLogitDesc{});
          n = top_k;
          threshold = cand[top_k - 1].logit;
        }
      }
    }
    if (n > top_k) {
      std::nth_element(cand, cand + top_k - 1, cand + n, ByLogitDesc{});
      n = top_k;
    }
    std::sort(cand, cand + n, ByLogitDesc{});
    if (n == 0) return kNoToken;
    if (cand[0].logit == kInf) return cand[0].id;
    n_cand = n;
    full = false;
  } else {
    const size_t best = argmax(logits, n_vocab);
    if (best == n_vocab) return kNoToken;
    if (logits[best] == kInf) return static_cast<int32_t>(best);
    full_max = logits[best];
  }

  // Locally typical sampling (Meister et al. 2023, "Locally Typical Sampling", TACL, arXiv:2202.00666):
  // keep the tokens whose surprisal -log p is closest to the entropy H, in that order, until their mass
  // reaches typical_p. With p = exp(l - m) / Z: -log p - H = E_p[l] - l, so the order is simply the
  // distance of each logit from the mean logit under p.
  if (params_.typical_p < 1.0f) {
    if (full) {
      compute_full_softmax();
      const auto centre =
          static_cast<float>(full_max + weighted_offset_sum(weight_.data(), logits, full_max, n_vocab) / full_z);
      const double target = params_.typical_p * full_z;
      n_cand = gather_band([centre](float l) { return std::fabs(l - centre); }, 1.0f, target);
      n_cand = select_by_mass(cand, n_cand, ByDistanceFrom{centre}, weight_by_id, target);
      full = false;
    } else {
      const float m = max_logit(cand, n_cand);
      double z = 0.0;
      double weighted = 0.0;
      for (size_t i = 0; i < n_cand; ++i) {
        const float w = fast_exp(cand[i].logit - m);
        z += w;
        weighted += static_cast<double>(select(w > 0.0f, w * (cand[i].logit - m), 0.0f));
      }
      const auto centre = static_cast<float>(m + weighted / z);
      n_cand = select_by_mass(cand, n_cand, ByDistanceFrom{centre},
                              [m](const Candidate& c) { return fast_exp(c.logit - m); }, params_.typical_p * z);
    }
  }

  // Top-p, nucleus sampling (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration",
  // arXiv:1904.09751): the most likely tokens until their mass reaches top_p.
  if (params_.top_p < 1.0f) {
    if (full) {
      compute_full_softmax();
      const double target = params_.top_p * full_z;
      const float m = full_max;
      n_cand = gather_band([m](float l) { return m - l; }, 4.0f, target);
      n_cand = select_by_mass(cand, n_cand, ByLogitDesc{}, weight_by_id, target);
      full = false;
    } else {
      const float m = max_logit(cand, n_cand);
      double z = 0.0;
      for (size_t i = 0; i < n_cand; ++i) z += fast_exp(cand[i].logit - m);
      n_cand = select_by_mass(cand, n_cand, ByLogitDesc{}, [m](const Candidate& c) { return fast_exp(c.logit - m); },
                              params_.top_p * z);
    }
  }

  // Min-p (Nguyen et al. 2024, "Turning Up the Heat: Min-p Sampling", arXiv:2407.01082): keep tokens with
  // p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
  if (params_.min_p > 0.0f) {
    const float log_min_p = std::log(params_.min_p);
    if (full) {
      const float m = full_max;
      n_cand = gather(logits, n_vocab, cand, [m, log_min_p](float l) { return l - m >= log_min_p; });
      full = false;
    } else {
      const float m = max_logit(cand, n_cand);
      size_t n = 0;
      for (size_t i = 0; i < n_cand; ++i) {
        if (cand[i].logit - m >= log_min_p) cand[n++] = cand[i];
      }
      n_cand = n;
    }
  }

  // Temperature (Ackley et al. 1985; softmax(l / T)) shapes the final draw over whatever is left.
  if (full) return draw_full(logits, full_max);
  return draw(n_cand);
}

// Mirostat (Basu, Ramakrishnan, Lee, Varshney 2021, "Mirostat: A Neural Text Decoding Algorithm that
// Directly Controls Perplexity", arXiv:2007.14966), on softmax(logit / T):
//  - version 2 (Alg. 2 simplified, as the paper's sec. 4 and common runtimes do): keep the tokens whose
//    surprise -log2 p is at most mu, i.e. p >= 2^-mu; this needs no sort: logit >= max + T (ln Z - mu ln 2);
//  - version 1 (Alg. 1): estimate the Zipf exponent s from the 100 most likely tokens by least squares on
//    log(p_i / p_{i+1}) against log((i + 2) / (i + 1)), then keep the top k = ((eps 2^mu) / (1 - N^-eps))^(1/s)
//    tokens with eps = s - 1.
// The draw is over the kept tokens renormalised, the observed surprise is -log2 of the drawn token's
// renormalised probability, and mu -= eta (surprise - tau). mu starts at 2 tau.
int32_t Sampler::sample_mirostat(const float* logits) {
  const auto n_vocab = static_cast<size_t>(n_vocab_);
  const size_t best = argmax(logits, n_vocab);
  if (best == n_vocab) return kNoToken;
  if (logits[best] == kInf) return static_cast<int32_t>(best);
  const float max_l = logits[best];
  const float inv_temp = inverse_temperature(params_.temperature);
  Candidate* cand = cand_.data();
  float* w = weight_.data();

  size_t n_cand = 0;
  if (params_.mirostat == 2) {
    for (size_t i = 0; i < n_vocab; ++i) w[i] = fast_exp((logits[i] - max_l) * inv_temp);
    const double z = sum_double(w, n_vocab);
    // p_i >= 2^-mu  <=>  w_i >= z 2^-mu (w_i = exp((l_i - max) / T)); the argmax is always kept.
    const double min_w = z * std::exp2(-static_cast<double>(mirostat_mu_));
    for (size_t i = 0; i < n_vocab; ++i) {
      if (static_cast<double>(w[i]) >= min_w || i == best) cand[n_cand++] = Candidate{static_cast<int32_t>(i), logits[i]};
    }
  } else {
    // Finite candidates, then the top 100 in order for the Zipf estimate.
    for (size_t i = 0; i < n_vocab; ++i) {
      if (logits[i] > -kInf) cand[n_cand++] = Candidate{static_cast<int32_t>(i), logits[i]};
    }
    constexpr size_t kZipfTokens = 100;
    const size_t m = std::min(kZipfTokens, n_cand);
    std::partial_sort(cand, cand + m, cand + n_cand, ByLogitDesc{});
    double sum_tb = 0.0;
    double sum_tt = 0.0;
    for (size_t i = 0; i + 1 < m; ++i) {
      const double t = std::log(static_cast<double>(i + 2) / static_cast<double>(i + 1));
      const double b = static_cast<double>(cand[i].logit - cand[i + 1].logit) * inv_temp;  // log(p_i / p_{i+1})
      sum_tb += t * b;
      sum_tt += t * t;
    }
    const double s_hat = sum_tt > 0.0 ? sum_tb / sum_tt : 1.0;
    const double eps = s_hat - 1.0;
    double k = static_cast<double>(n_cand);
    if (s_hat > 0.0 && std::fabs(eps) > 1e-9) {
      k = std::pow(eps * std::exp2(static_cast<double>(mirostat_mu_)) /
                       (1.0 - std::pow(static_cast<double>(n_vocab), -eps)),
                   1.0 / s_hat);
    }
    const size_t keep = !(k >= 1.0) ? 1 : k >= static_cast<double>(n_cand) ? n_cand : static_cast<size_t>(k);
    if (keep > m) std::nth_element(cand + m, cand + keep - 1, cand + n_cand, ByLogitDesc{});
    n_cand = keep;
  }

  double z = 0.0;
  for (size_t i = 0; i < n_cand; ++i) {
    w[i] = fast_exp((cand[i].logit - max_l) * inv_temp);
    z += w[i];
  }
  const size_t pick = draw_index_given_draft(w, n_cand, draft_position(n_cand));
  const double p = static_cast<double>(w[pick]) / z;
  const double surprise = p > 0.0 ? -std::log2(p) : 0.0;
  mirostat_mu_ -= static_cast<float>(params_.mirostat_eta * (surprise - params_.mirostat_tau));
  return cand[pick].id;
}

// Draws from softmax(logit / T) over cand_[0, n_cand). The logits are copied into weight_ first so the
// exponentials run as one vectorised loop.
int32_t Sampler::draw(size_t n_cand) {
  const Candidate* cand = cand_.data();
  float* w = weight_.data();
  for (size_t i = 0; i < n_cand; ++i) w[i] = cand[i].logit;
  const float m = w[argmax(w, n_cand)];
  const float inv_temp = inverse_temperature(params_.temperature);
  for (size_t i = 0; i < n_cand; ++i) w[i] = fast_exp((w[i] - m) * inv_temp);
  return cand[draw_index_given_draft(w, n_cand, draft_position(n_cand))].id;
}

// Same over the whole vocabulary (no truncation active): weights by token id.
int32_t Sampler::draw_full(const float* logits, float max_logit_value) {
  const auto n_vocab = static_cast<size_t>(n_vocab_);
  float* w = weight_.data();
  const float inv_temp = inverse_temperature(params_.temperature);
  for (size_t i = 0; i < n_vocab; ++i) w[i] = fast_exp((logits[i] - max_logit_value) * inv_temp);
  const size_t draft_index = draft_ == kNoToken ? n_vocab : static_cast<size_t>(draft_);
  return static_cast<int32_t>(draw_index_given_draft(w, n_vocab, draft_index));
}

size_t Sampler::draft_position(size_t n_cand) const {
  if (draft_ == kNoToken) return n_cand;
  for (size_t i = 0; i < n_cand; ++i) {
    if (cand_[i].id == draft_) return i;
  }
  return n_cand;
}

// Accepts the draft with probability w[draft] / sum(w); otherwise draws among the others, in proportion to
// their weights: over both branches each index comes out with probability w[i] / sum(w).
size_t Sampler::draw_index_given_draft(float* w, size_t n, size_t draft_index) {
  if (draft_index >= n || !(w[draft_index] > 0.0f)) return draw_index(w, n);
  const double total = sum_double(w, n);
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  if (u * total < static_cast<double>(w[draft_index]) || total <= static_cast<double>(w[draft_index])) {
    return draft_index;
  }
  w[draft_index] = 0.0f;
  return draw_index(w, n);
}

// Inverse-CDF draw: u in [0, 1) from the top 53 bits of the RNG, then the first index whose cumulative
// weight exceeds u * total. Block sums let the walk skip 256 entries at a time instead of adding every
// weight in one dependent chain. w[0, n) has at least one positive entry (the maximum has weight 1).
size_t Sampler::draw_index(const float* w, size_t n) {
  const double target = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * sum_double(w, n);
  constexpr size_t kBlock = 256;
  double cum = 0.0;
  size_t block = 0;
  for (; block + kBlock < n; block += kBlock) {
    const double block_sum = sum_double(w + block, kBlock);
    if (cum + block_sum > target) break;
    cum += block_sum;
  }
  for (size_t i = block; i < n; ++i) {
    cum += w[i];
    if (w[i] > 0.0f && cum > target) return i;
  }
  // Rounding left the target at or past the sum: the last token that has any weight.
  size_t last = n;
  while (last > 0 && !(w[last - 1] > 0.0f)) --last;
  return last > 0 ? last - 1 : 0;
}

}  // namespace edgellm
