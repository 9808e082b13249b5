// Speculative decoding with prompt lookup (runtime/prompt_lookup.h, Session::generate with
// GenerateOptions::lookup): the drafts, greedy output identical to plain decoding at every draft length and
// at every way a reply can end inside a verification step, the cache left right for the next turn, and
// sampled output that follows the model's distribution (a chi-square check on the trained qwen2-tiny).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>

#include "runtime/loaded_model.h"
#include "runtime/prompt_lookup.h"
#include "runtime/session.h"
#include "support/test_env.h"

namespace edgellm {
namespace {

std::vector<int32_t> propose(const std::vector<int32_t>& context, int max_tokens, int max_ngram = 3, int min_ngram = 1) {
  std::vector<int32_t> draft = {99};  // replaced, not appended to
  PromptLookup(max_ngram, min_ngram).propose(context, max_tokens, draft);
  return draft;
}

TEST(PromptLookup, DraftsWhatFollowedTheLatestEarlierOccurrence) {
  // "1 2 3" occurs twice before the suffix: the latest occurrence (followed by 7 8) wins.
  EXPECT_EQ(propose({1, 2, 3, 4, 5, 1, 2, 3, 7, 8, 9, 1, 2, 3}, 4), (std::vector<int32_t>{7, 8, 9, 1}));
  EXPECT_EQ(propose({1, 2, 3, 4, 5, 1, 2, 3, 7, 8, 9, 1, 2, 3}, 2), (std::vector<int32_t>{7, 8}));
  // The longest n-gram first: "5 6" occurs once (then 7), "6" alone later (then 0).
  EXPECT_EQ(propose({5, 6, 7, 6, 0, 5, 6}, 1), (std::vector<int32_t>{7}));
  // Only a shorter n-gram occurs: the 1-gram 6 (latest: followed by 0).
  EXPECT_EQ(propose({5, 6, 7, 6, 0, 4, 6}, 3), (std::vector<int32_t>{0, 4, 6}));
  // A draft stops at the end of the context.
  EXPECT_EQ(propose({1, 2, 1}, 8), (std::vector<int32_t>{2, 1}));
  // Nothing to find, or nothing asked for.
  EXPECT_TRUE(propose({1, 2, 3, 4}, 4).empty());
  EXPECT_TRUE(propose({1, 2, 1}, 0).empty());
  EXPECT_TRUE(propose({}, 4).empty());
  EXPECT_TRUE(propose({7}, 4).empty());
  // min_ngram 2: a lone repeated token is not enough.
  EXPECT_TRUE(propose({5, 6, 7, 6}, 3, 3, 2).empty());
}

std::shared_ptr<const LoadedModel> load_fixture() {
  LoadOptions o;
  o.n_threads = 2;
  auto m = LoadedModel::load(test::source_path("tests/models/qwen2-tiny"), o);
  EXPECT_TRUE(m.ok()) << m.error().message;
  return m.ok() ? *m : nullptr;
}

struct ChatRun {
  std::string text;
  std::vector<int32_t> cached;
  GenerationStats stats;
};

// One chat turn (or two: `then` is a second user message) in a fresh session.
ChatRun chat(const std::shared_ptr<const LoadedModel>& m, const std::string& user, GenerateOptions g,
         const std::string& then = "") {
  SessionOptions so;
  so.n_ctx = 512;
  auto session = Session::create(m, so);
  EXPECT_TRUE(session.ok());
  ChatRun run;
  auto stats = (*session)->chat(user, g, nullptr);
  EXPECT_TRUE(stats.ok()) << stats.error().message;
  if (!stats.ok()) return run;
  run.text = stats->text;
  run.stats = *stats;
  if (!then.empty()) {
    auto second = (*session)->chat(then, g, nullptr);
    EXPECT_TRUE(second.ok()) << second.error().message;
    if (!second.ok()) return run;
    run.text += "\n--\n" + second->text;
    run.stats.verify_steps += second->verify_steps;
    run.stats.accepted_tokens += second->accepted_tokens;
  }
  run.cached = (*session)->cached_tokens();
  return run;
}

const char* kCopyPrompt =
    "Repeat this sentence: The station was opened in 1905 by the railway company, and it served the town "
    "until the line closed in 1964.";

GenerateOptions greedy(int max_new_tokens, int lookup) {
  GenerateOptions g;
  g.sampling.temperature = 0.0f;
  g.max_new_tokens = max_new_tokens;
  g.lookup = lookup;
  return g;
}

TEST(SpeculativeDecoding, GreedyOutputIsPlainDecodingsAtEveryDraftLength) {
  auto m = load_fixture();
  ASSERT_TRUE(m);
  // The copy task: the reply quotes the prompt, so drafts are accepted.
  const ChatRun plain = chat(m, kCopyPrompt, greedy(60, 0), "Continue the text: It was rebuilt in");
  ASSERT_FALSE(plain.text.empty());
  EXPECT_EQ(plain.stats.verify_steps, 0);
  for (int lookup : {1, 2, 4, 8, 32}) {
    SCOPED_TRACE("lookup " + std::to_string(lookup));
    const ChatRun spec = chat(m, kCopyPrompt, greedy(60, lookup), "Continue the text: It was rebuilt in");
    EXPECT_EQ(spec.text, plain.text);
    EXPECT_EQ(spec.cached, plain.cached);  // the cache holds what plain decoding's holds: the next turn is alike
    EXPECT_GT(spec.stats.verify_steps, 0);
    EXPECT_GT(spec.stats.accepted_tokens, 0);
  }
}

TEST(SpeculativeDecoding, RepliesEndInsideAVerificationStepAsTheyWouldPlainly) {
  auto m = load_fixture();
  ASSERT_TRUE(m);
  // The token limit falling on each position of a draft.
  for (int max_new : {1, 2, 3, 5, 8, 13}) {
    SCOPED_TRACE("max_new_tokens " + std::to_string(max_new));
    const ChatRun plain = chat(m, kCopyPrompt, greedy(max_new, 0));
    const ChatRun spec = chat(m, kCopyPrompt, greedy(max_new, 8));
    EXPECT_EQ(spec.text, plain.text);
    EXPECT_EQ(spec.cached, plain.cached);
    EXPECT_EQ(spec.stats.decode_tokens, plain.stats.decode_tokens);
    EXPECT_EQ(spec.stats.finish_reason, plain.stats.finish_reason);
  }
  // A stop string in the middle of the reply, and the model's own end of turn.
  const ChatRun full = chat(m, kCopyPrompt, greedy(120, 0));
  ASSERT_GT(full.text.size(), 30u);
  GenerateOptions with_stop = greedy(120, 0);
  with_stop.stop_strings = {full.text.substr(20, 6)};
  const ChatRun plain_stop = chat(m, kCopyPrompt, with_stop);
  with_stop.lookup = 8;
  const ChatRun spec_stop = chat(m, kCopyPrompt, with_stop);
  EXPECT_EQ(plain_stop.stats.finish_reason, "stop");
  EXPECT_EQ(spec_stop.text, plain_stop.text);
  EXPECT_EQ(spec_stop.stats.finish_reason, "stop");
  const ChatRun spec_full = chat(m, kCopyPrompt, greedy(120, 8));
  EXPECT_EQ(spec_full.text, full.text);
  EXPECT_EQ(spec_full.stats.finish_reason, full.stats.finish_reason);
  EXPECT_EQ(spec_full.cached, full.cached);
  // A callback that stops the reply after the fourth piece.
  for (int lookup : {0, 8}) {
    SessionOptions so;
    so.n_ctx = 512;
    auto session = Session::create(m, so);
    ASSERT_TRUE(session.ok());
    int pieces = 0;
    auto stats = (*session)->chat(kCopyPrompt, greedy(120, lookup), [&](std::string_view) { return ++pieces < 4; });
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->finish_reason, "callback");
    EXPECT_EQ(pieces, 4);
  }
}

TEST(SpeculativeDecoding, BadDraftLengthsAreRefused) {
  auto m = load_fixture();
  ASSERT_TRUE(m);
  auto session = Session::create(m, SessionOptions{});
  ASSERT_TRUE(session.ok());
  for (int lookup : {-1, kMaxLookup + 1}) {
    auto stats = (*session)->chat("hi", greedy(4, lookup), nullptr);
    ASSERT_FALSE(stats.ok());
    EXPECT_NE(stats.error().message.find("lookup"), std::string::npos) << stats.error().message;
  }
}

// Sampled output keeps the model's distribution: the second token of a reply, over many seeds, against its
// exact marginal sum_t1 p(t1) p(t2 | t1) computed from the model's logits (top-k 12 at temperature 1; the
// second token is verified against a draft whenever the first occurs in the prompt).
TEST(SpeculativeDecoding, SampledTokensFollowTheModelsDistribution) {
  auto m = load_fixture();
  ASSERT_TRUE(m);
  const int32_t n_vocab = static_cast<int32_t>(m->config().n_vocab);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 12;
  sp.top_p = 1.0f;
  sp.min_p = 0.0f;
  sp.penalty_last_n = 0;
  auto encoded = m->tokenizer().encode("the station was opened in the", false);
  ASSERT_TRUE(encoded.ok());
  // p(t | context) of the sampler: softmax over the 12 largest logits.
  auto distribution = [&](const std::vector<float>& logits) {
    std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + 12, ids.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    std::map<int32_t, double> p;
    double z = 0;
    for (int i = 0; i < 12; ++i) z += std::exp(static_cast<double>(logits[ids[i]] - logits[ids[0]]));
    for (int i = 0; i < 12; ++i) p[ids[i]] = std::exp(static_cast<double>(logits[ids[i]] - logits[ids[0]])) / z;
    return p;
  };
  SessionOptions so;
  so.n_ctx = 256;
  auto session = Session::create(m, so);
  ASSERT_TRUE(session.ok());
  Session& s = **session;
  // The prompt starts with pairs (t1, the likeliest token after it): most first tokens occur in the prompt,
  // and the second is then verified against a likely draft, where a wrong acceptance rule shows most.
  ASSERT_TRUE(s.prefill(*encoded).ok());
  std::vector<int32_t> prompt;
  for (const auto& [t1, p1] : distribution(s.last_logits())) {
    std::vector<int32_t> with = *encoded;
    with.push_back(t1);
    ASSERT_TRUE(s.prefill(with).ok());
    const std::vector<float>& l = s.last_logits();
    prompt.push_back(t1);
    prompt.push_back(static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin()));
  }
  prompt.insert(prompt.end(), encoded->begin(), encoded->end());
  ASSERT_TRUE(s.prefill(prompt).ok());
  const auto first = distribution(s.last_logits());
  std::map<int32_t, double> second;
  for (const auto& [t1, p1] : first) {
    std::vector<int32_t> with = prompt;
    with.push_back(t1);
    ASSERT_TRUE(s.prefill(with).ok());
    for (const auto& [t2, p2] : distribution(s.last_logits())) second[t2] += p1 * p2;
  }
  std::map<int32_t, int64_t> counts;
  constexpr int kRuns = 3000;
  int64_t verified = 0;
  for (int i = 0; i < kRuns; ++i) {
    GenerateOptions g;
    g.sampling = sp;
    g.sampling.seed = 5000 + static_cast<uint64_t>(i);
    g.max_new_tokens = 3;
    g.ignore_stop_tokens = true;
    g.lookup = 4;
    ASSERT_TRUE(s.prefill(prompt).ok());
    auto stats = s.generate(g, nullptr);
    ASSERT_TRUE(stats.ok()) << stats.error().message;
    verified += stats->verify_steps;
    ASSERT_GE(s.cached_tokens().size(), prompt.size() + 2);
    ++counts[s.cached_tokens()[prompt.size() + 1]];
  }
  EXPECT_GT(verified, kRuns / 2);  // most runs verified a draft for the second token
  // Pearson's chi-square over the tokens expected >= 5 times, the rest pooled.
  double stat = 0, pooled_expected = 0, pooled_observed = 0;
  int buckets = 0;
  for (const auto& [t, p] : second) {
    const double expected = p * kRuns;
    const double observed = counts.count(t) ? static_cast<double>(counts[t]) : 0.0;
    if (expected < 5) {
      pooled_expected += expected;
      pooled_observed += observed;
      continue;
    }
    stat += (observed - expected) * (observed - expected) / expected;
    ++buckets;
  }
  int64_t impossible = 0;
  for (const auto& [t, c] : counts) impossible += second.count(t) ? 0 : c;
  EXPECT_EQ(impossible, 0) << "second tokens the model's top-12 never gives";
  if (pooled_expected > 0) {
    stat += (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++buckets;
  }
  const int df = std::max(1, buckets - 1);
  const double a = 2.0 / (9.0 * df);
  const double critical = df * std::pow(1.0 - a + 3.72 * std::sqrt(a), 3.0);  // false alarm 1e-4
  EXPECT_LT(stat, critical) << "chi-square " << stat << " (df " << df << ")";
}

}  // namespace
}  // namespace edgellm
