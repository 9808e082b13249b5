// Sampler and sampling parameters: greedy exactly, every truncation's distribution statistically against an
// independent double-precision reference, penalties over the window, determinism, presets, validation,
// GGUF defaults, and no allocation in sample()/accept() after construction.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "runtime/sampler.h"
#include "runtime/sampling_params.h"
#include "support/test_env.h"

// Counts every allocation of the test binary, so a test can check that a region allocates nothing.
// GCC pairs the malloc/free below with new/delete and warns; they are the replacement functions themselves.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
// The nothrow forms too (std::stable_sort's buffer uses them), so every allocation pairs with the free below.
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept { return operator new(size, tag); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace edgellm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Parameters with every truncation off and no penalties: each test turns on what it checks.
SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  return p;
}

// ---- Reference: the documented chain, written directly from the definitions in double precision, with
// full sorts and the entropy computed as -sum p log p (the sampler uses shortcuts; this does not). ----

struct Reference {
  std::vector<double> probs;  // final distribution over the vocabulary
  // Smallest distance between a cumulative mass (or min-p ratio) and its threshold at a cut: the test
  // data must keep it clear of float rounding, or the sampler may legitimately cut one token differently.
  double min_margin = std::numeric_limits<double>::infinity();
};

std::vector<double> softmax_over(const std::vector<float>& logits, const std::vector<int>& ids, double temp = 1.0) {
  double m = -std::numeric_limits<double>::infinity();
  for (int id : ids) m = std::max(m, static_cast<double>(logits[id]));
  std::vector<double> p(ids.size());
  double z = 0;
  for (size_t i = 0; i < ids.size(); ++i) z += p[i] = std::exp((logits[ids[i]] - m) / temp);
  for (double& v : p) v /= z;
  return p;
}

// Keeps the shortest prefix of `ids` (already ordered) whose probability reaches `mass`.
std::vector<int> keep_mass(const std::vector<int>& ids, const std::vector<double>& p, double mass, double* margin) {
  double cum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const double before = cum;
    cum += p[i];
    if (cum >= mass) {
      // The first token is kept whatever the mass, so only later cuts can be close calls.
      *margin = std::min(*margin, i == 0 ? cum - mass : std::min(cum - mass, mass - before));
      return std::vector<int>(ids.begin(), ids.begin() + static_cast<long>(i) + 1);
    }
  }
  return ids;
}

Reference reference_distribution(const std::vector<float>& logits, const SamplingParams& params) {
  Reference ref;
  const int n = static_cast<int>(logits.size());
  std::vector<int> ids;
  for (int i = 0; i < n; ++i) {
    if (logits[i] > -kInf) ids.push_back(i);
  }
  auto by_logit_desc = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  if (params.top_k > 0 && params.top_k < n) {
    std::sort(ids.begin(), ids.end(), by_logit_desc);
    if (static_cast<int>(ids.size()) > params.top_k) ids.resize(static_cast<size_t>(params.top_k));
  }
  if (params.typical_p < 1.0f) {
    const std::vector<double> p = softmax_over(logits, ids);
    double entropy = 0;
    for (double v : p) entropy -= v > 0 ? v * std::log(v) : 0.0;
    std::vector<size_t> order(ids.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const double da = std::fabs(-std::log(p[a]) - entropy);
      const double db = std::fabs(-std::log(p[b]) - entropy);
      return da < db || (da == db && ids[a] < ids[b]);
    });
    std::vector<int> sorted_ids;
    std::vector<double> sorted_p;
    for (size_t i : order) {
      sorted_ids.push_back(ids[i]);
      sorted_p.push_back(p[i]);
    }
    ids = keep_mass(sorted_ids, sorted_p, params.typical_p, &ref.min_margin);
  }
  if (params.top_p < 1.0f) {
    std::sort(ids.begin(), ids.end(), by_logit_desc);
    ids = keep_mass(ids, softmax_over(logits, ids), params.top_p, &ref.min_margin);
  }
  if (params.min_p > 0.0f) {
    const std::vector<double> p = softmax_over(logits, ids);
    const double p_max = *std::max_element(p.begin(), p.end());
    std::vector<int> kept;
    for (size_t i = 0; i < ids.size(); ++i) {
      const double ratio = p[i] / p_max;
      ref.min_margin = std::min(ref.min_margin, std::fabs(ratio - params.min_p));
      if (ratio >= params.min_p) kept.push_back(ids[i]);
    }
    ids = kept;
  }
  ref.probs.assign(logits.size(), 0.0);
  const std::vector<double> p = softmax_over(logits, ids, params.temperature);
  for (size_t i = 0; i < ids.size(); ++i) ref.probs[ids[i]] = p[i];
  return ref;
}

// ---- Drawing and the chi-square check ----

// draft: every draw verifies this token as speculative decoding does (Sampler::sample with a draft).
std::vector<int64_t> draw_counts(const SamplingParams& params, const std::vector<float>& logits, int n_draws,
                                 int32_t draft = Sampler::kNoToken) {
  Sampler sampler(params, static_cast<int32_t>(logits.size()));
  std::vector<int64_t> counts(logits.size(), 0);
  std::vector<float> work(logits.size());
  for (int d = 0; d < n_draws; ++d) {
    work = logits;
    const int32_t token = sampler.sample(work.data(), draft);
    EXPECT_GE(token, 0);
    if (token < 0) return counts;
    ++counts[static_cast<size_t>(token)];
  }
  return counts;
}

// Upper critical value of chi-square with `df` degrees of freedom (Wilson-Hilferty approximation), for a
// one-sided normal quantile z. z = 3.72: false-alarm rate 1e-4 for a given seed.
double chi_square_critical(int df, double z = 3.72) {
  const double a = 2.0 / (9.0 * df);
  return df * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

struct ChiSquare {
  double stat = 0;
  int df = 0;
  double critical = 0;
  int n_impossible_drawn = 0;  // draws of tokens whose reference probability is 0
  std::string table;
};

// Pearson's chi-square of observed counts against expected probabilities; buckets expecting fewer than 5
// draws are pooled (the usual validity rule), and tokens of probability 0 must never be drawn.
ChiSquare chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs) {
  ChiSquare result;
  const double n = static_cast<double>(std::accumulate(counts.begin(), counts.end(), int64_t{0}));
  double pooled_expected = 0;
  double pooled_observed = 0;
  int n_buckets = 0;
  char line[128];
  for (size_t id = 0; id < counts.size(); ++id) {
    const double expected = probs[id] * n;
    if (probs[id] == 0.0) {
      result.n_impossible_drawn += static_cast<int>(counts[id]);
      if (counts[id] > 0) {
        std::snprintf(line, sizeof line, "  token %zu: drawn %lld times, probability 0\n", id,
                      static_cast<long long>(counts[id]));
        result.table += line;
      }
      continue;
    }
    if (expected < 5.0) {
      pooled_expected += expected;
      pooled_observed += static_cast<double>(counts[id]);
      continue;
    }
    const double diff = static_cast<double>(counts[id]) - expected;
    result.stat += diff * diff / expected;
    ++n_buckets;
    if (result.table.size() < 4000) {
      std::snprintf(line, sizeof line, "  token %zu: observed %lld expected %.1f\n", id,
                    static_cast<long long>(counts[id]), expected);
      result.table += line;
    }
  }
  if (pooled_expected > 0) {
    const double diff = pooled_observed - pooled_expected;
    result.stat += diff * diff / std::max(pooled_expected, 1e-9);
    ++n_buckets;
    std::snprintf(line, sizeof line, "  pooled rare tokens: observed %.0f expected %.1f\n", pooled_observed,
                  pooled_expected);
    result.table += line;
  }
  result.df = std::max(1, n_buckets - 1);
  result.critical = chi_square_critical(result.df);
  return result;
}

// Draws `n_draws` tokens and checks them against the reference; the seed is printed on failure.
void expect_distribution(const std::vector<float>& logits, const SamplingParams& params, int n_draws = 20000,
                         int32_t draft = Sampler::kNoToken) {
  const Reference ref = reference_distribution(logits, params);
  ASSERT_GT(ref.min_margin, 2e-5) << "test data too close to a cut-off; seed " << params.seed;
  const ChiSquare chi = chi_square(draw_counts(params, logits, n_draws, draft), ref.probs);
  EXPECT_EQ(chi.n_impossible_drawn, 0) << "tokens outside the kept set were drawn (seed " << params.seed << ")\n"
                                       << chi.table;
  EXPECT_LT(chi.stat, chi.critical) << "chi-square " << chi.stat << " >= " << chi.critical << " (df " << chi.df
                                    << ", seed " << params.seed << ")\n"
                                    << chi.table;
}

// Twelve tokens with distinct, irregular logits.
const std::vector<float> kSmallLogits = {2.0f, 1.5f, 1.2f, 1.0f, 0.7f, 0.5f, 0.2f, 0.0f, -0.5f, -1.0f, -2.0f, -3.0f};

// A larger vocabulary for the whole-vocabulary paths (top-k off): normal logits with a few peaks.
std::vector<float> large_logits(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(n));
  for (float& l : logits) l = normal(rng);
  logits[17] = 9.0f;
  logits[n / 2] = 8.5f;
  logits[n - 3] = 8.0f;
  return logits;
}

// ---- Greedy ----

TEST(SamplerGreedy, PicksArgmax) {
  Sampler sampler(plain(0.0f), 6);
  std::vector<float> logits = {0.1f, -3.0f, 2.5f, 2.4f, -kInf, 1.0f};
  EXPECT_EQ(sampler.sample(logits.data()), 2);
}

TEST(SamplerGreedy, TiesGoToLowestId) {
  Sampler sampler(plain(0.0f), 5);
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f};
  EXPECT_EQ(sampler.sample(logits.data()), 1);
}

TEST(SamplerGreedy, ArgmaxAfterPenaltiesAndBias) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  Sampler sampler(p, 4);
  sampler.accept(0);
  std::vector<float> logits = {4.0f, 3.0f, 1.0f, 0.0f};  // token 0 penalised to 2.0
  EXPECT_EQ(sampler.sample(logits.data()), 1);
  p.logit_bias = {{2, 5.0f}};
  Sampler biased(p, 4);
  logits = {4.0f, 3.0f, 1.0f, 0.0f};
  EXPECT_EQ(biased.sample(logits.data()), 2);
}

TEST(SamplerGreedy, OnLargeVocabularyMatchesStdMaxElement) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::vector<float> logits = large_logits(151936, seed);
    logits[100000] = 20.0f;
    logits[120000] = 20.0f;  // a tie with a higher id
    Sampler sampler(plain(0.0f), static_cast<int32_t>(logits.size()));
    EXPECT_EQ(sampler.sample(logits.data()), 100000) << "seed " << seed;
  }
}

TEST(SamplerGreedy, NoFiniteLogitGivesNoToken) {
  std::vector<float> logits(4, -kInf);
  logits[1] = std::nanf("");
  Sampler greedy(plain(0.0f), 4);
  EXPECT_EQ(greedy.sample(logits.data()), Sampler::kNoToken);
  Sampler sampled(SamplingParams{}, 4);
  EXPECT_EQ(sampled.sample(logits.data()), Sampler::kNoToken);
  Sampler full(plain(1.0f), 4);
  EXPECT_EQ(full.sample(logits.data()), Sampler::kNoToken);
}

// ---- Distributions on a small vocabulary ----

TEST(SamplerDistribution, TemperatureOnly) {
  for (float temp : {1.0f, 0.5f, 1.7f}) {
    SCOPED_TRACE("temperature " + std::to_string(temp));
    SamplingParams p = plain(temp);
    p.seed = 101;
    expect_distribution(kSmallLogits, p);
  }
}

TEST(SamplerDistribution, TopK) {
  SamplingParams p = plain(1.0f);
  p.top_k = 4;
  p.seed = 102;
  expect_distribution(kSmallLogits, p);
  p.temperature = 0.6f;
  expect_distribution(kSmallLogits, p);
}

TEST(SamplerDistribution, TopP) {
  SamplingParams p = plain(1.0f);
  p.top_p = 0.7f;
  p.seed = 103;
  expect_distribution(kSmallLogits, p);
  p.top_p = 0.0f;  // keeps only the most likely token
  expect_distribution(kSmallLogits, p);
}

TEST(SamplerDistribution, MinP) {
  SamplingParams p = plain(1.0f);
  p.min_p = 0.3f;
  p.seed = 104;
  expect_distribution(kSmallLogits, p);
}

TEST(SamplerDistribution, TypicalP) {
  SamplingParams p = plain(1.0f);
  p.typical_p = 0.5f;
  p.seed = 105;
  expect_distribution(kSmallLogits, p);
  p.typical_p = 0.8f;
  expect_distribution(kSmallLogits, p);
}

// Every truncation at once, top-k first (the default chain's order).
SamplingParams full_chain() {
  SamplingParams p = plain(0.9f);
  p.top_k = 8;
  p.typical_p = 0.95f;
  p.top_p = 0.9f;
  p.min_p = 0.1f;
  return p;
}

TEST(SamplerDistribution, FullDefaultChainWithTopKFirst) {
  SamplingParams p = full_chain();
  p.seed = 106;
  expect_distribution(kSmallLogits, p);
}

// ---- Speculative decoding's verification: a drafted token is accepted with its probability, else the
// draw excludes it; the result must follow the same distribution as a plain draw, whatever the draft ----

TEST(SamplerDraft, VerifiedDraftsLeaveTheDistributionUnchanged) {
  SamplingParams top_k = plain(0.7f);
  top_k.top_k = 4;
  for (SamplingParams p : {plain(1.0f), plain(0.5f), top_k, full_chain()}) {
    // The most likely token, one in the middle, the least likely, one no truncation keeps (11), none.
    for (int32_t draft : {0, 3, 7, 11, Sampler::kNoToken}) {
      SCOPED_TRACE("temperature " + std::to_string(p.temperature) + " top_k " + std::to_string(p.top_k) +
                   ", draft " + std::to_string(draft));
      p.seed = 300 + static_cast<uint64_t>(draft + 1);
      expect_distribution(kSmallLogits, p, 20000, draft);
    }
  }
}

TEST(SamplerDraft, WholeVocabularyPathAndPenalties) {
  // No truncation: the draw over the whole vocabulary by token id.
  const std::vector<float> logits = large_logits(4096, 11);
  SamplingParams p = plain(1.0f);
  p.seed = 310;
  for (int32_t draft : {17, 4096 / 2, 5}) {
    SCOPED_TRACE("draft " + std::to_string(draft));
    expect_distribution(logits, p, 20000, draft);
  }
  // Penalties act before the draw: a penalised draft is accepted less often, exactly as it is drawn less.
  SamplingParams penalised = plain(1.0f);
  penalised.repetition_penalty = 1.5f;
  penalised.seed = 311;
  Sampler with(penalised, 12), without(penalised, 12);
  with.accept(0);
  without.accept(0);
  std::vector<int64_t> a(12), b(12);
  std::vector<float> work;
  for (int i = 0; i < 20000; ++i) {
    work = kSmallLogits;
    ++a[static_cast<size_t>(with.sample(work.data(), 0))];
    work = kSmallLogits;
    ++b[static_cast<size_t>(without.sample(work.data()))];
  }
  std::vector<float> reference_logits = kSmallLogits;
  reference_logits[0] /= 1.5f;  // CTRL-style: positive logits divided by the penalty
  const Reference ref = reference_distribution(reference_logits, plain(1.0f));
  const ChiSquare chi_a = chi_square(a, ref.probs), chi_b = chi_square(b, ref.probs);
  EXPECT_LT(chi_a.stat, chi_a.critical) << chi_a.table;
  EXPECT_LT(chi_b.stat, chi_b.critical) << chi_b.table;
}

TEST(SamplerDraft, GreedyIgnoresTheDraftAndMirostatStillDraws) {
  Sampler greedy_sampler(plain(0.0f), 12);
  std::vector<float> work = kSmallLogits;
  EXPECT_EQ(greedy_sampler.sample(work.data(), 5), 0);
  SamplingParams m = plain(1.0f);
  m.mirostat = 2;
  m.seed = 320;
  Sampler mirostat(m, 12);
  int accepted = 0;
  for (int i = 0; i < 2000; ++i) {
    work = kSmallLogits;
    const int32_t t = mirostat.sample(work.data(), 0);
    ASSERT_GE(t, 0);
    accepted += t == 0;
  }
  // Token 0 has the largest probability but not all of it.
  EXPECT_GT(accepted, 200);
  EXPECT_LT(accepted, 1900);
}

TEST(SamplerDistribution, TinyTemperatureActsLikeArgmax) {
  for (float temp : {1e-6f, 1e-30f, 1e-45f}) {
    for (SamplingParams p : {plain(temp), SamplingParams{}}) {
      p.temperature = temp;
      Sampler sampler(p, 12);
      for (int d = 0; d < 100; ++d) {
        std::vector<float> work = kSmallLogits;
        ASSERT_EQ(sampler.sample(work.data()), 0) << "temperature " << temp;
      }
    }
  }
}

TEST(SamplerDistribution, LogitBiasAndBans) {
  SamplingParams p = plain(1.0f);
  p.logit_bias = {{0, -kInf}, {5, 1.0f}, {11, 2.5f}, {5, 0.5f}};  // biases for one id add up
  p.seed = 107;
  std::vector<float> biased = kSmallLogits;
  biased[0] = -kInf;
  biased[5] += 1.5f;
  biased[11] += 2.5f;
  const Reference ref = reference_distribution(biased, p);
  const ChiSquare chi = chi_square(draw_counts(p, kSmallLogits, 20000), ref.probs);
  EXPECT_EQ(chi.n_impossible_drawn, 0) << chi.table;
  EXPECT_LT(chi.stat, chi.critical) << "seed " << p.seed << "\n" << chi.table;
}

TEST(SamplerDistribution, BannedTokenNeverDrawnEvenWhenMostLikely) {
  SamplingParams p;  // default chain
  p.logit_bias = {{3, -kInf}};
  std::vector<float> logits = {0.0f, 0.1f, 0.2f, 50.0f, 0.3f};
  Sampler sampler(p, 5);
  for (int d = 0; d < 2000; ++d) {
    std::vector<float> work = logits;
    ASSERT_NE(sampler.sample(work.data()), 3) << "draw " << d;
  }
}

TEST(SamplerDistribution, NanLogitIsNeverDrawn) {
  std::vector<float> logits = {0.0f, std::nanf(""), 0.5f, -1.0f};
  for (SamplingParams p : {plain(1.0f), SamplingParams{}}) {
    Sampler sampler(p, 4);
    for (int d = 0; d < 2000; ++d) {
      std::vector<float> work = logits;
      ASSERT_NE(sampler.sample(work.data()), 1);
    }
  }
}

// The statistical check must be able to fail: draws at one temperature are rejected against another.
TEST(SamplerDistribution, ChiSquareDetectsAWrongTemperature) {
  SamplingParams drawn = plain(1.0f);
  drawn.seed = 108;
  SamplingParams other = drawn;
  other.temperature = 0.8f;
  const ChiSquare chi = chi_square(draw_counts(drawn, kSmallLogits, 20000),
                                   reference_distribution(kSmallLogits, other).probs);
  EXPECT_GT(chi.stat, chi.critical);
}

// ---- Distributions on a larger vocabulary: the whole-vocabulary paths (banded gathering, partial sorts) ----

TEST(SamplerDistributionLarge, TemperatureOnly) {
  SamplingParams p = plain(1.0f);
  p.seed = 201;
  expect_distribution(large_logits(5000, 11), p);
}

TEST(SamplerDistributionLarge, TopKWithBufferCompaction) {
  SamplingParams p = plain(1.0f);
  p.top_k = 100;  // 5000 tokens pass through a 200-entry buffer many times
  p.seed = 202;
  std::vector<float> logits = large_logits(5000, 12);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] += 0.002f * static_cast<float>(i % 1000);  // rising runs
  expect_distribution(logits, p);
}

TEST(SamplerDistributionLarge, TopPWithoutTopK) {
  SamplingParams p = plain(1.0f);
  p.top_p = 0.9f;
  p.seed = 203;
  expect_distribution(large_logits(5000, 13), p);
  // A flat distribution: the nucleus is most of the vocabulary and the band has to grow.
  std::vector<float> flat = large_logits(2000, 14);
  for (float& l : flat) l *= 0.05f;
  p.top_p = 0.65f;
  expect_distribution(flat, p);
}

TEST(SamplerDistributionLarge, TypicalPWithoutTopK) {
  SamplingParams p = plain(1.0f);
  p.typical_p = 0.7f;
  p.seed = 204;
  expect_distribution(large_logits(5000, 15), p);
}

TEST(SamplerDistributionLarge, MinPWithoutTopK) {
  SamplingParams p = plain(0.7f);
  p.min_p = 0.01f;
  p.seed = 205;
  expect_distribution(large_logits(5000, 16), p);
}

TEST(SamplerDistributionLarge, TypicalThenTopPThenMinP) {
  SamplingParams p = plain(1.3f);
  p.typical_p = 0.9f;
  p.top_p = 0.8f;
  p.min_p = 0.002f;
  p.seed = 206;
  expect_distribution(large_logits(5000, 18), p);
}

TEST(SamplerDistributionLarge, EqualLogitsTruncateToLowestIds) {
  std::vector<float> logits(1000, 0.25f);
  SamplingParams p = plain(1.0f);
  p.top_k = 3;
  std::vector<int64_t> counts = draw_counts(p, logits, 3000);
  for (size_t id = 3; id < counts.size(); ++id) ASSERT_EQ(counts[id], 0) << "top-k tie broken away from id " << id;
  p.top_k = 0;
  p.top_p = 0.2505f;  // the first 251 tokens reach the mass
  counts = draw_counts(p, logits, 3000);
  for (size_t id = 251; id < counts.size(); ++id) ASSERT_EQ(counts[id], 0) << "top-p tie broken away from id " << id;
}

// ---- Penalties: read back the logits sample() leaves behind ----

std::vector<float> penalised(const SamplingParams& p, const std::vector<int32_t>& history, std::vector<float> logits) {
  Sampler sampler(p, static_cast<int32_t>(logits.size()));
  for (int32_t t : history) sampler.accept(t);
  (void)sampler.sample(logits.data());
  return logits;
}

TEST(SamplerPenalties, RepetitionDividesPositiveMultipliesNegative) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  const std::vector<float> out = penalised(p, {0, 1, 2, 0, 0}, {4.0f, -4.0f, 0.0f, 3.0f});
  EXPECT_FLOAT_EQ(out[0], 2.0f);  // once per distinct token, not once per occurrence
  EXPECT_FLOAT_EQ(out[1], -8.0f);
  EXPECT_FLOAT_EQ(out[2], 0.0f);
  EXPECT_FLOAT_EQ(out[3], 3.0f);  // not in the window
}

TEST(SamplerPenalties, FrequencyAndPresenceUseCountsInTheWindow) {
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 4;
  // Window = the last four tokens: 2, 1, 1, 1. Token 0 has left it; token 2 once; token 1 three times.
  const std::vector<float> out = penalised(p, {0, 0, 0, 2, 1, 1, 1}, {1.0f, 1.0f, 1.0f, 1.0f});
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], 1.0f - 3 * 0.5f - 1.0f);
  EXPECT_FLOAT_EQ(out[2], 1.0f - 0.5f - 1.0f);
  EXPECT_FLOAT_EQ(out[3], 1.0f);
}

TEST(SamplerPenalties, AllThreeCombine) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 1.25f;
  p.frequency_penalty = 0.25f;
  p.presence_penalty = 0.5f;
  const std::vector<float> out = penalised(p, {1, 1, 0}, {-2.0f, 5.0f});
  EXPECT_FLOAT_EQ(out[0], -2.0f * 1.25f - 0.25f - 0.5f);
  EXPECT_FLOAT_EQ(out[1], 5.0f / 1.25f - 2 * 0.25f - 0.5f);
}

TEST(SamplerPenalties, WindowSlidesOverALongHistory) {
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 1.0f;
  p.penalty_last_n = 3;
  std::vector<int32_t> history;
  for (int i = 0; i < 1000; ++i) history.push_back(i % 5);  // ends ..., 2, 3, 4
  const std::vector<float> out = penalised(p, history, std::vector<float>(5, 0.0f));
  EXPECT_EQ(out, (std::vector<float>{0.0f, 0.0f, -1.0f, -1.0f, -1.0f}));
}

TEST(SamplerPenalties, WholeContextWindow) {
  SamplingParams p = plain(0.0f);
  p.frequency_penalty = 0.01f;
  p.penalty_last_n = -1;
  std::vector<int32_t> history;
  for (int i = 0; i < 1000; ++i) history.push_back(i % 4 == 0 ? 0 : 1);
  const std::vector<float> out = penalised(p, history, {0.0f, 0.0f, 0.0f});
  EXPECT_FLOAT_EQ(out[0], -250 * 0.01f);
  EXPECT_FLOAT_EQ(out[1], -750 * 0.01f);
  EXPECT_FLOAT_EQ(out[2], 0.0f);
}

TEST(SamplerPenalties, WindowZeroDisablesPenalties) {
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 3.0f;
  p.frequency_penalty = 1.0f;
  p.presence_penalty = 1.0f;
  p.penalty_last_n = 0;
  const std::vector<float> out = penalised(p, {0, 1, 1}, {2.0f, -2.0f});
  EXPECT_EQ(out, (std::vector<float>{2.0f, -2.0f}));
}

TEST(SamplerPenalties, ResetClearsHistory) {
  SamplingParams p = plain(0.0f);
  p.presence_penalty = 1.0f;
  Sampler sampler(p, 3);
  sampler.accept(0);
  sampler.accept(2);
  sampler.reset();
  sampler.accept(1);
  std::vector<float> logits = {0.0f, 0.0f, 0.0f};
  EXPECT_EQ(sampler.sample(logits.data()), 0);
  EXPECT_EQ(logits, (std::vector<float>{0.0f, -1.0f, 0.0f}));
}

TEST(SamplerPenalties, ApplyEachStepToFreshLogits) {
  // Penalties and bias act on the logits of the current step only: repeated calls do not compound.
  SamplingParams p = plain(0.0f);
  p.repetition_penalty = 2.0f;
  p.logit_bias = {{1, -1.0f}};
  Sampler sampler(p, 2);
  sampler.accept(0);
  for (int step = 0; step < 3; ++step) {
    std::vector<float> logits = {4.0f, 4.0f};
    (void)sampler.sample(logits.data());
    EXPECT_EQ(logits, (std::vector<float>{2.0f, 3.0f})) << "step " << step;
  }
}

// ---- Determinism ----

std::vector<int32_t> generate(Sampler& sampler, const std::vector<float>& logits, int n) {
  std::vector<int32_t> tokens;
  std::vector<float> work;
  for (int i = 0; i < n; ++i) {
    work = logits;
    tokens.push_back(sampler.sample(work.data()));
    sampler.accept(tokens.back());
  }
  return tokens;
}

// ---- Mirostat: each step re-derived independently (truncation set, renormalised draw probability, mu
// update) from the mu the sampler reports, and the long-run observed surprise tracks tau. ----

// Zipf-like logits: p_i proportional to 1 / (i + 1)^s, in a shuffled order so ids and ranks differ.
std::vector<float> zipf_logits(int n, double s, uint32_t seed) {
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<float> logits(static_cast<size_t>(n));
  for (int rank = 0; rank < n; ++rank) logits[static_cast<size_t>(order[static_cast<size_t>(rank)])] =
      static_cast<float>(-s * std::log(rank + 1.0));
  return logits;
}

// The candidates Mirostat keeps at threshold mu, from the definitions in double precision.
std::vector<int> mirostat_kept(const std::vector<float>& logits, int version, double mu, double temp) {
  const int n = static_cast<int>(logits.size());
  std::vector<int> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  const std::vector<double> p = softmax_over(logits, ids, temp);
  size_t keep = 0;
  if (version == 2) {
    while (keep < p.size() && -std::log2(p[keep]) <= mu) ++keep;
  } else {
    double sum_tb = 0, sum_tt = 0;
    for (int i = 0; i + 1 < std::min(n, 100); ++i) {
      const double t = std::log((i + 2.0) / (i + 1.0));
      const double b = std::log(p[i] / p[i + 1]);
      sum_tb += t * b;
      sum_tt += t * t;
    }
    const double s = sum_tb / sum_tt;
    const double eps = s - 1;
    const double k = std::pow(eps * std::exp2(mu) / (1 - std::pow(n, -eps)), 1 / s);
    keep = k < 1 ? 1 : k >= n ? static_cast<size_t>(n) : static_cast<size_t>(k);
  }
  ids.resize(std::max<size_t>(keep, 1));
  return ids;
}

void check_mirostat_steps(int version, double s, double tau, double temp) {
  const std::vector<float> logits = zipf_logits(4000, s, 7);
  SamplingParams p = plain(static_cast<float>(temp));
  p.mirostat = version;
  p.mirostat_tau = static_cast<float>(tau);
  p.mirostat_eta = 0.1f;
  p.seed = 11;
  Sampler sampler(p, 4000);
  EXPECT_FLOAT_EQ(sampler.mirostat_mu(), static_cast<float>(2 * tau));
  double surprise_sum = 0;
  int counted = 0;
  std::vector<float> work;
  for (int step = 0; step < 3000; ++step) {
    const double mu = sampler.mirostat_mu();
    work = logits;
    const int32_t token = sampler.sample(work.data());
    const std::vector<int> kept = mirostat_kept(logits, version, mu, temp);
    const auto it = std::find(kept.begin(), kept.end(), token);
    ASSERT_NE(it, kept.end()) << "step " << step << ": token " << token << " outside the " << kept.size()
                              << " kept at mu " << mu;
    const std::vector<double> q = softmax_over(logits, kept, temp);
    const double surprise = -std::log2(q[static_cast<size_t>(it - kept.begin())]);
    ASSERT_NEAR(sampler.mirostat_mu(), mu - 0.1 * (surprise - tau), 1e-3) << "step " << step;
    if (step >= 500) {
      surprise_sum += surprise;
      ++counted;
    }
  }
  // mu's update is a stochastic approximation: the mean observed surprise settles at tau (tau must be below
  // the entropy of the untruncated distribution, ~3.7 bits for Zipf 1.3 at T 0.8, or nothing is truncated).
  EXPECT_NEAR(surprise_sum / counted, tau, 0.15) << "version " << version;
}

TEST(SamplerMirostat, Version2StepsAndMeanSurprise) {
  check_mirostat_steps(2, 1.1, 3.0, 1.0);
  check_mirostat_steps(2, 1.3, 2.5, 0.8);
}

TEST(SamplerMirostat, Version1StepsAndMeanSurprise) {
  check_mirostat_steps(1, 1.1, 3.0, 1.0);
  check_mirostat_steps(1, 1.3, 2.5, 0.8);
}

TEST(SamplerMirostat, LowTauIsFocusedHighTauIsVaried) {
  const std::vector<float> logits = zipf_logits(4000, 1.1, 3);
  for (int version : {1, 2}) {
    auto distinct = [&](float tau) {
      SamplingParams p = plain(1.0f);
      p.mirostat = version;
      p.mirostat_tau = tau;
      Sampler sampler(p, 4000);
      std::vector<int32_t> tokens = generate(sampler, logits, 1000);
      std::sort(tokens.begin(), tokens.end());
      return std::unique(tokens.begin(), tokens.end()) - tokens.begin();
    };
    EXPECT_LT(distinct(1.0f) * 4, distinct(8.0f)) << "version " << version;
  }
}

TEST(SamplerMirostat, ResetRestoresMuAndReproduces) {
  const std::vector<float> logits = zipf_logits(3000, 1.2, 5);
  SamplingParams p = plain(1.0f);
  p.mirostat = 2;
  Sampler sampler(p, 3000);
  const std::vector<int32_t> first = generate(sampler, logits, 100);
  EXPECT_NE(sampler.mirostat_mu(), 2 * p.mirostat_tau);
  sampler.reset();
  EXPECT_EQ(sampler.mirostat_mu(), 2 * p.mirostat_tau);
  EXPECT_EQ(generate(sampler, logits, 100), first);
}

TEST(SamplerMirostat, GreedyIgnoresMirostatAndBansHold) {
  std::vector<float> logits = zipf_logits(500, 1.1, 9);
  const auto top = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  SamplingParams p = plain(0.0f);
  p.mirostat = 2;
  Sampler greedy(p, 500);
  std::vector<float> work = logits;
  EXPECT_EQ(greedy.sample(work.data()), top);
  p = plain(1.0f);
  p.mirostat = 1;
  p.mirostat_tau = 0.5f;  // very focused: only the top few survive
  p.logit_bias = {{top, -kInf}};
  Sampler banned(p, 500);
  for (int i = 0; i < 200; ++i) {
    work = logits;
    EXPECT_NE(banned.sample(work.data()), top);
  }
}


TEST(SamplerDeterminism, SameSeedSameTokens) {
  const std::vector<float> logits = large_logits(3000, 21);
  for (SamplingParams p : {SamplingParams{}, plain(1.0f)}) {
    p.seed = 42;
    p.repetition_penalty = 1.1f;
    Sampler a(p, 3000);
    Sampler b(p, 3000);
    EXPECT_EQ(generate(a, logits, 200), generate(b, logits, 200));
  }
}

TEST(SamplerDeterminism, DifferentSeedDifferentTokens) {
  const std::vector<float> logits = large_logits(3000, 22);
  SamplingParams p = plain(1.0f);
  p.seed = 1;
  Sampler a(p, 3000);
  p.seed = 2;
  Sampler b(p, 3000);
  EXPECT_NE(generate(a, logits, 100), generate(b, logits, 100));
}

TEST(SamplerDeterminism, ResetReproduces) {
  const std::vector<float> logits = large_logits(3000, 23);
  SamplingParams p;
  p.seed = 7;
  p.presence_penalty = 0.5f;
  Sampler sampler(p, 3000);
  sampler.accept(5);
  sampler.accept(17);
  const std::vector<int32_t> first = generate(sampler, logits, 100);
  sampler.reset();
  sampler.accept(5);
  sampler.accept(17);
  EXPECT_EQ(generate(sampler, logits, 100), first);
}

TEST(SamplerDeterminism, DefaultSeedIsFixed) {
  const std::vector<float> logits = large_logits(3000, 24);
  Sampler a(SamplingParams{}, 3000);
  Sampler b(SamplingParams{}, 3000);
  EXPECT_EQ(SamplingParams{}.seed, kDefaultSamplingSeed);
  EXPECT_EQ(generate(a, logits, 50), generate(b, logits, 50));
}

// ---- Allocation: the decode loop allocates nothing ----

TEST(SamplerAllocation, SampleAndAcceptAllocateNothing) {
  const std::vector<float> logits = large_logits(20000, 31);
  std::vector<SamplingParams> configs = {plain(0.0f), SamplingParams{}, plain(1.0f)};
  SamplingParams top_p = plain(1.0f);
  top_p.top_p = 0.9f;
  configs.push_back(top_p);
  SamplingParams typical = plain(1.0f);
  typical.typical_p = 0.8f;
  configs.push_back(typical);
  SamplingParams penalties;
  penalties.repetition_penalty = 1.1f;
  penalties.frequency_penalty = 0.2f;
  penalties.logit_bias = {{3, -kInf}, {4, 2.0f}};
  configs.push_back(penalties);
  penalties.penalty_last_n = -1;
  configs.push_back(penalties);
  for (size_t c = 0; c < configs.size(); ++c) {
    Sampler sampler(configs[c], 20000);
    std::vector<float> work = logits;
    for (int i = 0; i < 5; ++i) sampler.accept(sampler.sample(work.data()));  // warm-up
    const long before = g_allocations.load();
    for (int i = 0; i < 50; ++i) {
      std::copy(logits.begin(), logits.end(), work.begin());
      sampler.accept(sampler.sample(work.data()));
    }
    sampler.reset();
    EXPECT_EQ(g_allocations.load() - before, 0) << "config " << c;
  }
}

// ---- Presets ----

TEST(SamplingPresets, HaveTheDocumentedValues) {
  struct Want {
    const char* name;
    float temperature;
    float top_p;
  };
  const SamplingParams defaults;
  for (const Want& want : {Want{"qa", 0.3f, 0.9f}, Want{"creative", 0.8f, 0.95f}, Want{"code", 0.5f, 0.85f}}) {
    auto p = sampling_preset(want.name);
    ASSERT_TRUE(p.ok()) << want.name;
    EXPECT_EQ(p->temperature, want.temperature) << want.name;
    EXPECT_EQ(p->top_p, want.top_p) << want.name;
    EXPECT_EQ(p->top_k, defaults.top_k) << want.name;
    EXPECT_EQ(p->min_p, defaults.min_p) << want.name;
    EXPECT_EQ(p->seed, defaults.seed) << want.name;
    EXPECT_TRUE(p->validate(10).ok());
  }
  auto greedy = sampling_preset("greedy");
  ASSERT_TRUE(greedy.ok());
  EXPECT_TRUE(greedy->greedy());
  EXPECT_EQ(sampling_preset_names(), (std::vector<std::string>{"qa", "creative", "code", "greedy"}));
}

TEST(SamplingPresets, UnknownNameListsKnownOnes) {
  auto p = sampling_preset("poetry");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(p.error().message.find("'poetry'"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("qa, creative, code, greedy"), std::string::npos) << p.error().message;
}

// ---- Validation ----

void expect_invalid(const SamplingParams& p, const std::string& field, int32_t n_vocab = 100) {
  const Status status = p.validate(n_vocab);
  ASSERT_FALSE(status.ok()) << "expected an error naming " << field;
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(status.error().message.find(field), std::string::npos) << status.error().message;
  auto sampler = Sampler::create(p, n_vocab);
  EXPECT_FALSE(sampler.ok());
}

TEST(SamplingValidate, DefaultsAndOffValuesAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate(100).ok());
  SamplingParams p;
  p.top_k = -1;
  p.temperature = -1.0f;  // greedy
  p.top_p = 0.0f;
  p.min_p = 1.0f;
  p.typical_p = 0.0f;
  p.penalty_last_n = -1;
  p.logit_bias = {{0, -kInf}, {99, 3.0f}};
  EXPECT_TRUE(p.validate(100).ok());
  p.top_k = 0;
  EXPECT_TRUE(p.validate(100).ok());
}

TEST(SamplingValidate, RejectsBadValuesNamingTheField) {
  const float nan = std::nanf("");
  SamplingParams p;
  p.temperature = nan;
  expect_invalid(p, "temperature");
  p = {};
  p.temperature = kInf;
  expect_invalid(p, "temperature");
  p = {};
  p.top_k = -2;
  expect_invalid(p, "top_k");
  p = {};
  p.mirostat = 3;
  expect_invalid(p, "mirostat");
  p = {};
  p.mirostat = 2;
  p.mirostat_tau = 0.0f;
  expect_invalid(p, "mirostat_tau");
  p = {};
  p.mirostat = 1;
  p.mirostat_eta = nan;
  expect_invalid(p, "mirostat_eta");
  p = {};
  p.mirostat_tau = 0.0f;  // ignored while mirostat is off
  EXPECT_TRUE(p.validate(100).ok());
  p = {};
  p.top_p = 1.5f;
  expect_invalid(p, "top_p");
  p = {};
  p.top_p = -0.1f;
  expect_invalid(p, "top_p");
  p = {};
  p.top_p = nan;
  expect_invalid(p, "top_p");
  p = {};
  p.min_p = 2.0f;
  expect_invalid(p, "min_p");
  p = {};
  p.typical_p = nan;
  expect_invalid(p, "typical_p");
  p = {};
  p.repetition_penalty = 0.0f;
  expect_invalid(p, "repetition_penalty");
  p = {};
  p.repetition_penalty = -1.1f;
  expect_invalid(p, "repetition_penalty");
  p = {};
  p.frequency_penalty = nan;
  expect_invalid(p, "frequency_penalty");
  p = {};
  p.presence_penalty = -kInf;
  expect_invalid(p, "presence_penalty");
  p = {};
  p.penalty_last_n = -2;
  expect_invalid(p, "penalty_last_n");
  p = {};
  p.penalty_last_n = kMaxPenaltyLastN + 1;
  expect_invalid(p, "penalty_last_n");
}

TEST(SamplingValidate, RejectsBadLogitBias) {
  SamplingParams p;
  p.logit_bias = {{1, 1.0f}, {100, 1.0f}};
  expect_invalid(p, "logit_bias[1]: token id 100 is out of range [0, 100)");
  p.logit_bias = {{-1, 1.0f}};
  expect_invalid(p, "logit_bias[0]: token id -1");
  p.logit_bias = {{5, std::nanf("")}};
  expect_invalid(p, "logit_bias[0]: bias for token 5 must be finite or -inf");
  p.logit_bias = {{5, kInf}};
  expect_invalid(p, "logit_bias[0]");
  p.logit_bias = {{0, -kInf}, {1, -kInf}, {0, -kInf}, {2, -kInf}};
  expect_invalid(p, "bans all 3 tokens", 3);
  SamplingParams ok;
  ok.logit_bias = {{0, -kInf}, {1, -kInf}};
  EXPECT_TRUE(ok.validate(3).ok());
}

TEST(SamplingValidate, RejectsNonPositiveVocabulary) {
  expect_invalid(SamplingParams{}, "n_vocab", 0);
}

// ---- Model defaults from GGUF ----

Expected<GgufFile> write_gguf(const test::TempDir& dir, const GgufWriter& w) {
  const std::string path = dir.file("defaults.gguf");
  EDGELLM_TRY(w.write(path));
  return GgufFile::open(path);
}

TEST(SamplingDefaultsFromGguf, KeysOverrideDefaults) {
  test::TempDir dir;
  GgufWriter w;
  w.set_f32("general.sampling.temp", 0.7f);
  w.set_i32("general.sampling.top_k", 20);
  w.set_f32("general.sampling.top_p", 0.8f);
  w.set_f32("general.sampling.min_p", 0.0f);
  w.set_f32("general.sampling.penalty_repeat", 1.05f);
  w.set_i32("general.sampling.penalty_last_n", 128);
  auto gguf = write_gguf(dir, w);
  ASSERT_TRUE(gguf.ok()) << gguf.error().message;
  const SamplingParams p = sampling_defaults_from_gguf(*gguf);
  EXPECT_EQ(p.temperature, 0.7f);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_EQ(p.top_p, 0.8f);
  EXPECT_EQ(p.min_p, 0.0f);
  EXPECT_EQ(p.repetition_penalty, 1.05f);
  EXPECT_EQ(p.penalty_last_n, 128);
  EXPECT_EQ(p.typical_p, SamplingParams{}.typical_p);
}

TEST(SamplingDefaultsFromGguf, AbsentBadOrMistypedKeysKeepDefaults) {
  test::TempDir dir;
  GgufWriter w;
  w.set_f32("general.sampling.temp", 0.6f);                // good
  w.set_f32("general.sampling.top_p", 2.0f);               // out of range
  w.set_string("general.sampling.top_k", "forty");         // wrong type
  w.set_f32("general.sampling.penalty_repeat", -1.0f);     // out of range
  w.set("general.sampling.penalty_last_n", GgufValue::i64(int64_t{1} << 40));  // does not fit
  auto gguf = write_gguf(dir, w);
  ASSERT_TRUE(gguf.ok()) << gguf.error().message;
  const SamplingParams p = sampling_defaults_from_gguf(*gguf);
  const SamplingParams defaults;
  EXPECT_EQ(p.temperature, 0.6f);
  EXPECT_EQ(p.top_p, defaults.top_p);
  EXPECT_EQ(p.top_k, defaults.top_k);
  EXPECT_EQ(p.min_p, defaults.min_p);
  EXPECT_EQ(p.repetition_penalty, defaults.repetition_penalty);
  EXPECT_EQ(p.penalty_last_n, defaults.penalty_last_n);
}

}  // namespace
}  // namespace edgellm
