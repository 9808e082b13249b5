// Qwen3.5's hybrid layers (issue 16; the kernels: kernels_delta_rule_test.cpp): the recurrent state and its
// snapshots, and that every way of reaching a position (chunked or token-by-token prefill, multi-turn reuse,
// trimming back, a prompt cache, batched serving beside other requests, preemption) gives the tokens of one
// fresh run.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <tuple>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/transformer.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;
using namespace std::chrono_literals;

// ---- the recurrent state in the cache ----

TEST(HybridCache, KeepsKeysOnlyForFullAttentionLayersAndRewindsToSnapshots) {
  const ModelConfig c = test::tiny_config(Arch::kQwen35);
  ASSERT_EQ(c.n_attention_layers(), 1);
  auto kv = KvCache::create(c, 32, DType::kF32);
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->n_layer(), 1);
  ASSERT_TRUE(kv->hybrid());
  EXPECT_EQ(kv->recurrent().n_layer(), 3);
  float* s = kv->recurrent().ssm(0);
  s[0] = 1;
  kv->set_n_past(5);
  kv->save_snapshot();
  s[0] = 2;
  kv->set_n_past(9);
  kv->save_snapshot();
  s[0] = 3;
  kv->set_n_past(12);
  EXPECT_EQ(kv->rewind_point(12), 12);
  EXPECT_EQ(kv->rewind_point(11), 9);
  EXPECT_EQ(kv->rewind_point(8), 5);
  EXPECT_EQ(kv->rewind_point(4), 0);
  kv->set_n_past(9);
  EXPECT_EQ(s[0], 2);
  kv->set_n_past(5);  // the snapshot at 9 is gone with it: it belonged to the old continuation
  EXPECT_EQ(s[0], 1);
  EXPECT_EQ(kv->n_snapshots(), 1u);
  kv->set_n_past(0);
  EXPECT_EQ(s[0], 0);
  EXPECT_EQ(kv->n_snapshots(), 0u);
  // At most kMaxSnapshots are kept; the oldest taken goes.
  for (int i = 1; i <= KvCache::kMaxSnapshots + 2; ++i) {
    kv->set_n_past(i);
    kv->save_snapshot();
  }
  EXPECT_EQ(kv->n_snapshots(), static_cast<size_t>(KvCache::kMaxSnapshots));
  EXPECT_EQ(kv->rewind_point(2), 0);
  EXPECT_EQ(kv->rewind_point(3), 3);
  // A paged cache shared by many sequences holds no state of its own.
  auto paged = KvCache::create(c, 32, DType::kF16, /*with_state=*/false);
  ASSERT_TRUE(paged.ok());
  EXPECT_FALSE(paged->hybrid());
}

TEST(HybridConfig, BadLinearLayerSettingsAreErrorsNamingTheKey) {
  const ModelConfig good = test::tiny_config(Arch::kQwen35);
  ASSERT_TRUE(good.validate("m").ok());
  auto expect_error = [](const ModelConfig& c, const std::string& needle) {
    const Status st = c.validate("m", hf_config_keys(Arch::kQwen35));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find(needle), std::string::npos) << st.error().message;
  };
  ModelConfig c = good;
  c.recurrent.pop_back();
  expect_error(c, "'layer_types'");
  c = good;
  c.ssm_n_v_heads = 3;  // 2 key heads
  expect_error(c, "not a multiple of linear_num_key_heads");
  c = good;
  c.ssm_conv_kernel = 0;
  expect_error(c, "'linear_conv_kernel_dim'");
  c = good;
  c.ssm_k_head_dim = c.ssm_v_head_dim = 4096;  // a few bytes of file, gigabytes of state per sequence
  c.ssm_n_v_heads = 8;
  expect_error(c, "state of");
}

TEST(HybridConfig, HuggingFaceConfigErrorsNameTheKey) {
  TempDir dir;
  const std::string path = test::write_tiny_hf(dir.path(), test::tiny_config(Arch::kQwen35));
  auto config = nlohmann::json::parse(std::ifstream(path + "/config.json"));
  for (const auto& [key, value, needle] :
       std::vector<std::tuple<std::string, nlohmann::json, std::string>>{
           {"layer_types", nlohmann::json::array({"linear_attention"}), "'layer_types'"},
           {"layer_types", nlohmann::json::array({"linear_attention", "sliding", "linear_attention", "full_attention"}),
            "'sliding'"},
           {"linear_num_value_heads", 3, "linear_num_value_heads"},
           {"partial_rotary_factor", 2.0, "partial_rotary_factor"}}) {
    auto edited = config;
    if (key == "partial_rotary_factor") {
      edited["rope_parameters"][key] = value;
    } else {
      edited[key] = value;
    }
    std::ofstream(path + "/config.json") << edited.dump();
    auto m = Model::load(path);
    ASSERT_FALSE(m.ok()) << key;
    EXPECT_NE(m.error().message.find(needle), std::string::npos) << m.error().message;
  }
}

// ---- whole runs on a tiny synthetic Qwen3.5 ----

std::shared_ptr<const LoadedModel> load(const std::string& path) {
  LoadOptions o;
  o.n_threads = 2;
  auto m = LoadedModel::load(path, o);
  EXPECT_TRUE(m.ok()) << path << ": " << m.error().message;
  return m.ok() ? *m : nullptr;
}

std::vector<int32_t> random_tokens(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, 255);  // plain byte tokens of the synthetic vocabulary
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& t : v) t = pick(rng);
  return v;
}

// Greedy tokens after `prompt`, from a fresh cache, the prompt in one forward call.
std::vector<int32_t> greedy_alone(const LoadedModel& m, const std::vector<int32_t>& prompt, int n) {
  const ModelConfig& c = m.config();
  auto kv = KvCache::create(c, static_cast<int64_t>(prompt.size()) + n + 1, DType::kF32);
  EXPECT_TRUE(kv.ok());
  ForwardScratch scratch(c, static_cast<int64_t>(prompt.size()), kv->n_ctx(), m.pool().n_threads());
  std::vector<float> logits;
  EXPECT_TRUE(m.transformer().forward(prompt.data(), static_cast<int64_t>(prompt.size()), *kv, scratch, m.pool(),
                                      LogitsMode::kLast, logits).ok());
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.push_back(t);
    EXPECT_TRUE(m.transformer().forward(&t, 1, *kv, scratch, m.pool(), LogitsMode::kLast, logits).ok());
  }
  return out;
}

class HybridRuns : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load(test::write_tiny_gguf(dir_.path(), test::tiny_config(Arch::kQwen35), DType::kF32));
    ASSERT_TRUE(model_);
  }
  std::unique_ptr<Session> session(int64_t max_batch = 64) {
    SessionOptions o;
    o.n_ctx = 512;
    o.kv_type = DType::kF32;
    o.max_batch = max_batch;
    auto s = Session::create(model_, o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  static GenerateOptions greedy(int n) {
    GenerateOptions g;
    g.sampling.temperature = 0.0f;
    g.max_new_tokens = n;
    g.ignore_stop_tokens = true;
    return g;
  }
  TempDir dir_;
  std::shared_ptr<const LoadedModel> model_;
};

TEST_F(HybridRuns, ChunkedPrefillThenDecodeEqualsTokenByToken) {
  const ModelConfig& c = model_->config();
  const std::vector<int32_t> prompt = random_tokens(150, 1);  // more than two delta-rule chunks
  std::vector<std::vector<float>> runs;
  for (const int64_t step : {int64_t{150}, int64_t{1}, int64_t{37}}) {
    auto kv = KvCache::create(c, 200, DType::kF32);
    ASSERT_TRUE(kv.ok());
    ForwardScratch scratch(c, step, 200, model_->pool().n_threads());
    std::vector<float> logits;
    for (size_t pos = 0; pos < prompt.size(); pos += static_cast<size_t>(step)) {
      const int64_t n = std::min<int64_t>(step, static_cast<int64_t>(prompt.size() - pos));
      ASSERT_TRUE(model_->transformer().forward(&prompt[pos], n, *kv, scratch, model_->pool(), LogitsMode::kLast, logits).ok());
    }
    std::vector<float> all = logits;
    for (int i = 0; i < 6; ++i) {  // decode steps after the prefill
      const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      ASSERT_TRUE(model_->transformer().forward(&t, 1, *kv, scratch, model_->pool(), LogitsMode::kLast, logits).ok());
      all.insert(all.end(), logits.begin(), logits.end());
    }
    runs.push_back(all);
  }
  for (size_t r = 1; r < runs.size(); ++r) {
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < runs[0].size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(runs[r][i]) - runs[0][i]));
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(runs[0][i])));
    }
    EXPECT_LT(max_diff / max_ref, 1e-5) << "run " << r;
  }
}

TEST_F(HybridRuns, MultiTurnReuseAndTrimmingGiveTheTokensOfAFreshRun) {
  auto s = session(16);
  ASSERT_TRUE(s);
  const std::string turn1 = "The first message of a conversation, long enough for several prefill steps.";
  auto r1 = s->complete(turn1, false, greedy(12), nullptr);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  // The conversation continues after the reply: the state after the reply is reused.
  const std::string turn2 = turn1 + r1->text + " And a second one.";
  auto r2 = s->complete(turn2, false, greedy(12), nullptr);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->reused_tokens, r2->prompt_tokens - r2->prefill_tokens);
  EXPECT_GT(r2->reused_tokens, 0);
  auto fresh = session(16);
  auto f2 = fresh->complete(turn2, false, greedy(12), nullptr);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(r2->text, f2->text);

  // A request that parts from the cache inside the first turn (no snapshot there): the state is rebuilt.
  const std::string edited = turn1.substr(0, 30) + " but then something else entirely.";
  auto r3 = s->complete(edited, false, greedy(12), nullptr);
  ASSERT_TRUE(r3.ok());
  auto fresh3 = session(16);
  auto f3 = fresh3->complete(edited, false, greedy(12), nullptr);
  ASSERT_TRUE(f3.ok());
  EXPECT_EQ(r3->text, f3->text);

  // The same prompt again (its last token runs again for the logits: from the snapshot before it).
  auto r4 = s->complete(edited, false, greedy(12), nullptr);
  ASSERT_TRUE(r4.ok());
  EXPECT_EQ(r4->text, f3->text);
  EXPECT_EQ(r4->prefill_tokens, 1);
}

TEST_F(HybridRuns, PromptCacheRestoresTheLinearAttentionState) {
  auto s = session();
  const std::string prompt = "A prompt whose state is saved to a file and read back by another session.";
  auto r1 = s->complete(prompt, false, greedy(1), nullptr);
  ASSERT_TRUE(r1.ok());
  const std::string path = dir_.path() + "/hybrid.kv";
  ASSERT_TRUE(s->save_state(path).ok());
  auto expected = s->complete(prompt + r1->text + " more", false, greedy(10), nullptr);
  ASSERT_TRUE(expected.ok());

  auto t = session();
  const Status st = t->load_state(path);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto got = t->complete(prompt + r1->text + " more", false, greedy(10), nullptr);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->text, expected->text);
  EXPECT_GT(got->reused_tokens, 0);

  // A cache of another shape is refused, naming what differs; the session is unchanged.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes.resize(bytes.size() - 8);
  const std::string truncated = dir_.path() + "/truncated.kv";
  std::ofstream(truncated, std::ios::binary) << bytes;
  const Status bad = t->load_state(truncated);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("truncated"), std::string::npos) << bad.error().message;
}

class Collector {
 public:
  void attach(EngineRequest& r, int key) {
    r.on_token = [this, key](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (e.token >= 0) tokens_[key].push_back(e.token);
      return true;
    };
    r.on_done = [this, key](const RequestResult& res) {
      std::lock_guard<std::mutex> lock(mu_);
      done_[key] = res.finish_reason;
      cv_.notify_all();
    };
  }
  bool wait_all(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 120s, [&] { return done_.size() >= n; });
  }
  std::vector<int32_t> tokens(int key) {
    std::lock_guard<std::mutex> lock(mu_);
    return tokens_[key];
  }
  std::string reason(int key) {
    std::lock_guard<std::mutex> lock(mu_);
    return done_[key];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, std::vector<int32_t>> tokens_;
  std::map<int, std::string> done_;
};

// Batched serving: each request keeps its own linear-attention state slot; with too little KV memory for
// all of them some are preempted and recomputed from position 0.
TEST_F(HybridRuns, EngineRequestsGiveTheirTokensAloneBesideOthersAndAfterPreemption) {
  for (const int64_t kv_mem : {int64_t{0}, int64_t{64} << 10}) {  // 64 KiB: one context of f32 KV
    SCOPED_TRACE(kv_mem == 0 ? "enough memory" : "preempting");
    EngineOptions o;
    o.max_parallel = 4;
    o.n_ctx = 128;
    o.prefill_chunk = 24;
    o.kv_type = DType::kF32;
    o.kv_mem_bytes = kv_mem;
    auto engine = Engine::create(model_, o);
    ASSERT_TRUE(engine.ok()) << engine.error().message;
    Collector col;
    std::vector<EngineRequest> requests;
    const int n = 8;
    for (int i = 0; i < n; ++i) {
      EngineRequest r;
      r.prompt = random_tokens(5 + (i * 29) % 90, 100 + static_cast<uint32_t>(i));
      r.sampling.temperature = 0.0f;
      r.max_new_tokens = 6 + (i * 7) % 20;
      r.ignore_stop_tokens = true;
      requests.push_back(r);
      col.attach(r, i);
      ASSERT_TRUE((*engine)->submit(r).ok());
    }
    ASSERT_TRUE(col.wait_all(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(col.reason(i), "length") << i;
      EXPECT_EQ(col.tokens(i), greedy_alone(*model_, requests[static_cast<size_t>(i)].prompt,
                                            requests[static_cast<size_t>(i)].max_new_tokens))
          << "request " << i;
    }
    if (kv_mem > 0) {
      EXPECT_GT((*engine)->stats().preemptions, 0);
    }
  }
}

}  // namespace
}  // namespace edgellm
