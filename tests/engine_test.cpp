// The serving engine (engine/engine.h): many requests on one model through the scheduler, the paged KV
// pool and the batched step. A request must produce the tokens it produces alone, whatever runs beside it
// (joining and leaving mid-way, chunked prompts, shared prefixes, preemption when memory runs out);
// cancellation, timeouts, a full queue and bad requests end cleanly with a reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "engine/engine.h"
#include "model/lora.h"
#include "model/transformer.h"
#include "runtime/loaded_model.h"
#include "support/test_env.h"
#include "support/tiny_lora.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<const LoadedModel> load(const std::string& path) {
  LoadOptions o;
  o.n_threads = 2;
  auto m = LoadedModel::load(path, o);
  EXPECT_TRUE(m.ok()) << path << ": " << m.error().message;
  return m.ok() ? *m : nullptr;
}

std::vector<int32_t> random_tokens(int64_t n, int64_t n_vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  // Ordinary tokens only: below the specials at the end of the fixtures' vocabularies.
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(std::min<int64_t>(n_vocab, 4000)) - 1);
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (auto& t : v) t = pick(rng);
  return v;
}

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

// The tokens a request gives run alone: one contiguous cache, the prompt in one step, the same sampler
// and stop rules as the engine.
std::vector<int32_t> alone(const LoadedModel& m, const EngineRequest& r) {
  const ModelConfig& c = m.config();
  const int64_t n_ctx = static_cast<int64_t>(r.prompt.size()) + r.max_new_tokens + 1;
  auto kv = KvCache::create(c, n_ctx, DType::kF16);
  EXPECT_TRUE(kv.ok());
  ForwardScratch scratch(c, static_cast<int64_t>(r.prompt.size()), n_ctx, m.pool().n_threads());
  Sampler sampler(r.sampling, static_cast<int32_t>(c.n_vocab));
  for (int32_t t : r.prompt) sampler.accept(t);
  std::shared_ptr<const LoraAdapter> adapter = r.lora_name.empty() ? nullptr : m.find_lora(r.lora_name);
  const ActiveLora lora{adapter.get(), r.lora_scale};
  std::vector<float> logits;
  EXPECT_TRUE(m.transformer()
                  .forward(r.prompt.data(), static_cast<int64_t>(r.prompt.size()), *kv, scratch, m.pool(),
                           LogitsMode::kLast, logits, lora)
                  .ok());
  std::vector<int32_t> out;
  while (static_cast<int32_t>(out.size()) < r.max_new_tokens) {
    const int32_t t = sampler.sample(logits.data());
    if (!r.ignore_stop_tokens && std::binary_search(m.stop_token_ids().begin(), m.stop_token_ids().end(), t)) break;
    out.push_back(t);
    sampler.accept(t);
    if (static_cast<int32_t>(out.size()) == r.max_new_tokens) break;
    EXPECT_TRUE(m.transformer().forward(&t, 1, *kv, scratch, m.pool(), LogitsMode::kLast, logits, lora).ok());
  }
  return out;
}

// Collects what the engine says about requests and lets a test wait for them.
class Collector {
 public:
  struct Outcome {
    std::vector<int32_t> tokens;
    std::string text;
    RequestResult result;
    int n_done = 0;
  };

  // Attaches callbacks that record into the outcome of `key`; on_token returns keep_going(key, n_tokens).
  void attach(EngineRequest& r, int key, std::function<bool(int, size_t)> keep_going = nullptr) {
    r.on_token = [this, key, keep_going](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      Outcome& o = outcomes_[key];
      if (e.token >= 0) o.tokens.push_back(e.token);
      o.text += e.text;
      cv_.notify_all();
      return keep_going ? keep_going(key, o.tokens.size()) : true;
    };
    r.on_done = [this, key](const RequestResult& res) {
      std::lock_guard<std::mutex> lock(mu_);
      Outcome& o = outcomes_[key];
      o.result = res;
      ++o.n_done;
      cv_.notify_all();
    };
  }
  // Waits until `key` has finished (true) or 60 s passed (false).
  bool wait_done(int key) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 60s, [&] { return outcomes_[key].n_done > 0; });
  }
  bool wait_tokens(int key, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 60s, [&] { return outcomes_[key].tokens.size() >= n || outcomes_[key].n_done > 0; });
  }
  Outcome get(int key) {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_[key];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Outcome> outcomes_;
};

std::unique_ptr<Engine> make_engine(std::shared_ptr<const LoadedModel> m, EngineOptions o) {
  auto e = Engine::create(std::move(m), o);
  EXPECT_TRUE(e.ok()) << e.error().message;
  return e.ok() ? std::move(*e) : nullptr;
}

uint64_t submit_ok(Engine& e, EngineRequest r) {
  auto id = e.submit(std::move(r));
  EXPECT_TRUE(id.ok()) << id.error().message;
  return id.ok() ? *id : 0;
}

// 16 requests of mixed prompt lengths (1 to 150 tokens) and reply lengths: half submitted at once, half
// while the first are decoding; prompts prefilled 32 tokens a step beside the others' decode tokens.
TEST(Engine, GreedyTokensAreThoseOfEachRequestAloneWithFifteenOthers) {
  for (const char* fixture : {"tests/models/qwen2-tiny", "tests/models/qwen3-tiny"}) {  // qwen35: hybrid_model_test
    SCOPED_TRACE(fixture);
    auto m = load(test::source_path(fixture));
    ASSERT_TRUE(m);
    EngineOptions o;
    o.max_parallel = 16;
    o.n_ctx = 256;
    o.prefill_chunk = 32;
    auto engine = make_engine(m, o);
    ASSERT_TRUE(engine);
    Collector col;
    std::vector<EngineRequest> requests;
    for (int i = 0; i < 16; ++i) {
      EngineRequest r;
      r.prompt = random_tokens(1 + (i * 37) % 150, m->config().n_vocab, 1000 + i);
      r.sampling = greedy();
      r.max_new_tokens = 5 + (i * 13) % 36;
      r.ignore_stop_tokens = true;
      requests.push_back(r);
    }
    for (int i = 0; i < 8; ++i) {
      EngineRequest r = requests[static_cast<size_t>(i)];
      col.attach(r, i);
      submit_ok(*engine, r);
    }
    ASSERT_TRUE(col.wait_tokens(0, 3));
    for (int i = 8; i < 16; ++i) {
      EngineRequest r = requests[static_cast<size_t>(i)];
      col.attach(r, i);
      submit_ok(*engine, r);
    }
    for (int i = 0; i < 16; ++i) {
      ASSERT_TRUE(col.wait_done(i)) << "request " << i;
      const auto out = col.get(i);
      EXPECT_EQ(out.result.finish_reason, "length");
      EXPECT_EQ(out.tokens, alone(*m, requests[static_cast<size_t>(i)])) << "request " << i;
      EXPECT_EQ(out.result.generated_tokens, requests[static_cast<size_t>(i)].max_new_tokens);
      EXPECT_EQ(out.result.prompt_tokens, static_cast<int64_t>(requests[static_cast<size_t>(i)].prompt.size()));
      EXPECT_EQ(out.text, out.result.text);
    }
    const EngineStats st = engine->stats();
    EXPECT_EQ(st.requests_finished, 16);
    EXPECT_EQ(st.n_running, 0);
    EXPECT_EQ(st.kv_blocks_used, 0);
  }
}

// Seeded sampling: the same tokens as alone when the prompts are prefilled whole (no chunking differences).
TEST(Engine, SeededSamplingGivesTheTokensOfEachRequestAlone) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 8;
  o.n_ctx = 256;
  o.prefill_chunk = 2048;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  Collector col;
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 8; ++i) {
    EngineRequest r;
    r.prompt = random_tokens(5 + 20 * i, m->config().n_vocab, 77 + i);
    r.sampling.temperature = 0.9f;
    r.sampling.top_k = 50;
    r.sampling.repetition_penalty = 1.1f;
    r.sampling.seed = 1234 + static_cast<uint64_t>(i % 3);
    r.max_new_tokens = 30;
    requests.push_back(r);
    col.attach(r, i);
    submit_ok(*engine, r);
  }
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(col.wait_done(i));
    EXPECT_EQ(col.get(i).tokens, alone(*m, requests[static_cast<size_t>(i)])) << "request " << i;
  }
}

TEST(Engine, ASharedPrefixIsPrefilledOnce) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 4;
  o.n_ctx = 512;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  const auto system = random_tokens(100, m->config().n_vocab, 5);
  auto with = [&](int64_t n, uint32_t seed) {
    EngineRequest r;
    r.prompt = system;
    const auto own = random_tokens(n, m->config().n_vocab, seed);
    r.prompt.insert(r.prompt.end(), own.begin(), own.end());
    r.sampling = greedy();
    r.max_new_tokens = 12;
    r.ignore_stop_tokens = true;
    return r;
  };
  Collector col;
  const EngineRequest first = with(20, 1), second = with(30, 2);
  EngineRequest r = first;
  col.attach(r, 0);
  submit_ok(*engine, r);
  ASSERT_TRUE(col.wait_done(0));
  EXPECT_EQ(col.get(0).result.cached_tokens, 0);

  r = second;
  col.attach(r, 1);
  submit_ok(*engine, r);
  ASSERT_TRUE(col.wait_done(1));
  // The 96 positions of the system prompt's six full blocks come from the cache; the rest is computed.
  EXPECT_EQ(col.get(1).result.cached_tokens, 96);
  EXPECT_EQ(col.get(1).tokens, alone(*m, second));

  // The same prompt again: every full block but the one holding its last token (which is recomputed for
  // its logits): (120 - 1) / 16 = 7 blocks.
  r = first;
  col.attach(r, 2);
  submit_ok(*engine, r);
  ASSERT_TRUE(col.wait_done(2));
  EXPECT_EQ(col.get(2).result.cached_tokens, 112);
  EXPECT_EQ(col.get(2).tokens, col.get(0).tokens);
  EXPECT_EQ(engine->stats().cached_prompt_tokens, 96 + 112);

  // With prefix caching off nothing is shared.
  o.prefix_cache = false;
  auto plain = make_engine(m, o);
  r = first;
  col.attach(r, 3);
  submit_ok(*plain, r);
  r = first;
  ASSERT_TRUE(col.wait_done(3));
  col.attach(r, 4);
  submit_ok(*plain, r);
  ASSERT_TRUE(col.wait_done(4));
  EXPECT_EQ(col.get(4).result.cached_tokens, 0);
  EXPECT_EQ(col.get(4).tokens, col.get(0).tokens);
}

// A pool that holds exactly one context for four requests that need three times that: the newest running
// request is preempted whenever the others need a block, recomputed later, and every request still gets
// the tokens it gets alone.
TEST(Engine, PreemptedRequestsCompleteWithTheirOwnTokens) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 4;
  o.n_ctx = 128;
  o.block_size = 16;
  o.kv_mem_bytes = static_cast<int64_t>(8 * KvBlockPool::block_bytes(m->config(), 16, DType::kF16));
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  EXPECT_LE(engine->stats().kv_bytes, static_cast<size_t>(o.kv_mem_bytes));
  int64_t max_used = 0;
  engine->set_step_observer([&](const StepStats&) {});
  Collector col;
  std::vector<EngineRequest> requests;
  for (int i = 0; i < 4; ++i) {
    EngineRequest r;
    r.prompt = random_tokens(30 + i, m->config().n_vocab, 300 + i);
    r.sampling = greedy();
    r.max_new_tokens = 60;
    r.ignore_stop_tokens = true;
    requests.push_back(r);
    col.attach(r, i);
    submit_ok(*engine, r);
  }
  int preemptions = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(col.wait_done(i));
    const auto out = col.get(i);
    EXPECT_EQ(out.result.finish_reason, "length");
    EXPECT_EQ(out.tokens, alone(*m, requests[static_cast<size_t>(i)])) << "request " << i;
    preemptions += out.result.n_preemptions;
    max_used = std::max(max_used, engine->stats().kv_blocks_used);
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(engine->stats().preemptions, preemptions);
  EXPECT_EQ(engine->stats().kv_blocks_total, 8);
  EXPECT_LE(max_used, 8);
}

TEST(Engine, CancelledRequestsEndAtTheNextStep) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 1;
  o.n_ctx = 4096;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  Collector col;
  EngineRequest long_one;
  long_one.prompt = random_tokens(10, m->config().n_vocab, 9);
  long_one.sampling = greedy();
  long_one.max_new_tokens = 4000;
  long_one.ignore_stop_tokens = true;
  EngineRequest r = long_one;
  col.attach(r, 0);
  const uint64_t running = submit_ok(*engine, r);
  ASSERT_TRUE(col.wait_tokens(0, 5));
  // A second request waits for the only slot; cancelling it ends it without a token.
  r = long_one;
  col.attach(r, 1);
  const uint64_t queued = submit_ok(*engine, r);
  engine->cancel(queued);
  ASSERT_TRUE(col.wait_done(1));
  EXPECT_EQ(col.get(1).result.finish_reason, "cancelled");
  EXPECT_EQ(col.get(1).result.generated_tokens, 0);
  EXPECT_EQ(col.get(0).n_done, 0);  // the running one goes on

  engine->cancel(running);
  ASSERT_TRUE(col.wait_done(0));
  const auto out = col.get(0);
  EXPECT_EQ(out.result.finish_reason, "cancelled");
  EXPECT_LT(out.result.generated_tokens, 4000);
  EXPECT_EQ(static_cast<int64_t>(out.tokens.size()), out.result.generated_tokens);
  engine->cancel(running);  // already finished: nothing happens
  engine->cancel(987654);   // never existed
  EXPECT_EQ(col.get(0).n_done, 1);

  // on_token returning false stops the request right there.
  r = long_one;
  col.attach(r, 2, [](int, size_t n) { return n < 7; });
  submit_ok(*engine, r);
  ASSERT_TRUE(col.wait_done(2));
  EXPECT_EQ(col.get(2).result.finish_reason, "cancelled");
  EXPECT_EQ(col.get(2).result.generated_tokens, 7);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

TEST(Engine, TimeoutsEndRunningAndWaitingRequests) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 1;
  o.n_ctx = 4096;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  Collector col;
  EngineRequest r;
  r.prompt = random_tokens(10, m->config().n_vocab, 9);
  r.sampling = greedy();
  r.max_new_tokens = 4000;
  r.ignore_stop_tokens = true;
  r.timeout_seconds = 0.3;
  EngineRequest first = r;
  col.attach(first, 0);
  submit_ok(*engine, first);
  ASSERT_TRUE(col.wait_tokens(0, 1));
  EngineRequest waiting = r;  // waits behind the first, which runs until its own timeout
  waiting.timeout_seconds = 0.05;
  col.attach(waiting, 1);
  submit_ok(*engine, waiting);
  ASSERT_TRUE(col.wait_done(1));
  EXPECT_EQ(col.get(1).result.finish_reason, "timeout");
  EXPECT_EQ(col.get(1).result.generated_tokens, 0);
  ASSERT_TRUE(col.wait_done(0));
  EXPECT_EQ(col.get(0).result.finish_reason, "timeout");
  EXPECT_GT(col.get(0).result.generated_tokens, 0);
  EXPECT_LT(col.get(0).result.generated_tokens, 4000);
  EXPECT_GE(col.get(0).result.total_ms, 300.0);
}

TEST(Engine, AFullQueueRefusesMoreRequests) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 1;
  o.max_queue = 2;
  o.n_ctx = 4096;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  Collector col;
  EngineRequest r;
  r.prompt = random_tokens(10, m->config().n_vocab, 9);
  r.sampling = greedy();
  r.max_new_tokens = 4000;
  r.ignore_stop_tokens = true;
  EngineRequest a = r;
  col.attach(a, 0);
  submit_ok(*engine, a);
  ASSERT_TRUE(col.wait_tokens(0, 1));  // running, so not in the queue
  for (int i = 1; i <= 2; ++i) {
    EngineRequest q = r;
    col.attach(q, i);
    submit_ok(*engine, q);
  }
  auto refused = engine->submit(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kBusy);
  EXPECT_NE(refused.error().message.find("queue is full"), std::string::npos) << refused.error().message;
  // Shutting down ends all three with "cancelled".
  engine.reset();
  for (int i = 0; i <= 2; ++i) {
    EXPECT_EQ(col.get(i).n_done, 1) << i;
    EXPECT_EQ(col.get(i).result.finish_reason, "cancelled") << i;
  }
}

TEST(Engine, BadRequestsAndOptionsAreRefusedWithTheReason) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.n_ctx = 64;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  auto refuse = [&](EngineRequest r, ErrorCode code, const std::string& needle) {
    bool called = false;
    r.on_done = [&](const RequestResult&) { called = true; };
    auto id = engine->submit(std::move(r));
    ASSERT_FALSE(id.ok()) << "expected: " << needle;
    EXPECT_EQ(id.error().code, code) << id.error().message;
    EXPECT_NE(id.error().message.find(needle), std::string::npos) << id.error().message;
    EXPECT_FALSE(called);
  };
  EngineRequest ok;
  ok.prompt = {1, 2, 3};
  EngineRequest r = ok;
  r.prompt.clear();
  refuse(r, ErrorCode::kInvalidArgument, "prompt is empty");
  r = ok;
  r.prompt[1] = 4096;
  refuse(r, ErrorCode::kInvalidArgument, "token 4096 at index 1 is outside the vocabulary");
  r = ok;
  r.prompt.assign(64, 5);
  refuse(r, ErrorCode::kContextFull, "the prompt has 64 tokens; the context holds 64");
  r = ok;
  r.sampling.top_p = 1.5f;
  refuse(r, ErrorCode::kInvalidArgument, "top_p");
  r = ok;
  r.max_new_tokens = -1;
  refuse(r, ErrorCode::kInvalidArgument, "max_new_tokens");
  r = ok;
  r.lora_name = "nobody";
  refuse(r, ErrorCode::kNotFound, "no LoRA adapter named 'nobody'");
  r = ok;
  r.timeout_seconds = -1;
  refuse(r, ErrorCode::kInvalidArgument, "timeout");

  auto create_error = [&](EngineOptions opt, const std::string& needle) {
    auto e = Engine::create(m, opt);
    ASSERT_FALSE(e.ok()) << "expected: " << needle;
    EXPECT_NE(e.error().message.find(needle), std::string::npos) << e.error().message;
  };
  EngineOptions bad = o;
  bad.n_ctx = 4096;
  bad.kv_mem_bytes = 1 << 20;  // qwen2-tiny's f16 KV is 1 KiB a position (4 layers, K and V of 64)
  create_error(bad, "the KV memory of 1.0 MiB holds 1024 positions of f16 KV, but one context of 4096 positions "
                    "needs 4.0 MiB: raise --kv-mem, lower --ctx, or use --kv-type q8_0");
  bad = o;
  bad.max_parallel = 0;
  create_error(bad, "parallel sequences 0");
  bad = o;
  bad.block_size = 12;
  create_error(bad, "block size 12");
  bad = o;
  bad.kv_type = DType::kQ4_0;
  create_error(bad, "KV type q4_0");
  bad = o;
  bad.kv_mem_bytes = int64_t{1} << 50;
  create_error(bad, "more than the");
}

// Requests with different adapters (and none) share steps; the base weights are read once for all.
TEST(Engine, RequestsWithDifferentAdaptersShareSteps) {
  test::TempDir dir;
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  auto loaded = LoadedModel::load(test::write_tiny_gguf(dir.path(), c), LoadOptions{});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  std::shared_ptr<LoadedModel> m = *loaded;
  ASSERT_TRUE(m->load_lora("a", test::write_q_proj_adapter(dir.file("a"), c, c.n_embd, 0)).ok());
  ASSERT_TRUE(m->load_lora("b", test::write_q_proj_adapter(dir.file("b"), c, c.n_embd, 1)).ok());
  EngineOptions o;
  o.max_parallel = 6;
  o.n_ctx = 128;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  Collector col;
  std::vector<EngineRequest> requests;
  const auto prompt = random_tokens(40, c.n_vocab, 3);
  const char* adapters[] = {"", "a", "b", "a", "", "b"};
  for (int i = 0; i < 6; ++i) {
    EngineRequest r;
    r.prompt = prompt;
    if (i >= 3) r.prompt.push_back(i);
    r.lora_name = adapters[i];
    r.lora_scale = i == 3 ? 0.5f : 1.0f;
    r.sampling = greedy();
    r.max_new_tokens = 16;
    r.ignore_stop_tokens = true;
    requests.push_back(r);
    col.attach(r, i);
    submit_ok(*engine, r);
  }
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(col.wait_done(i));
    EXPECT_EQ(col.get(i).tokens, alone(*m, requests[static_cast<size_t>(i)])) << "request " << i;
  }
  // The adapters change the answers (so the comparison means something).
  EXPECT_NE(col.get(0).tokens, col.get(1).tokens);
  EXPECT_NE(col.get(1).tokens, col.get(2).tokens);
  // A cached prefix computed without an adapter is not used with one.
  EngineRequest again = requests[1];
  col.attach(again, 9);
  submit_ok(*engine, again);
  ASSERT_TRUE(col.wait_done(9));
  EXPECT_EQ(col.get(9).result.cached_tokens, 32);  // from request 1 (adapter a), not from request 0
  EXPECT_EQ(col.get(9).tokens, col.get(1).tokens);
}

// logprobs: each token's log-probability and the top k alternatives, from the raw logits (what the model
// gives, whatever the sampling settings), equal to a log-softmax of the logits of the same step run alone.
TEST(Engine, LogprobsAreTheModelsLogSoftmax) {
  auto m = load(test::source_path("tests/models/qwen2-tiny"));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.n_ctx = 128;
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  EngineRequest r;
  r.prompt = random_tokens(12, m->config().n_vocab, 4);
  r.sampling.temperature = 0.7f;  // sampled: the chosen token is not always the most likely
  r.sampling.seed = 5;
  r.max_new_tokens = 8;
  r.ignore_stop_tokens = true;
  r.logprobs = 3;
  struct Seen {
    int32_t token;
    float logprob;
    std::vector<TokenLogprob> top;
  };
  std::vector<Seen> seen;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  r.on_token = [&](const TokenEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (e.token >= 0) seen.push_back({e.token, e.logprob, *e.top_logprobs});
    return true;
  };
  r.on_done = [&](const RequestResult&) {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  };
  submit_ok(*engine, r);
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 60s, [&] { return done; }));
  }
  ASSERT_EQ(seen.size(), 8u);
  // The same steps alone: the log-softmax of each step's logits.
  const ModelConfig& c = m->config();
  auto kv = KvCache::create(c, 64, DType::kF16);
  ForwardScratch scratch(c, 64, 64, m->pool().n_threads());
  std::vector<float> logits;
  ASSERT_TRUE(m->transformer().forward(r.prompt.data(), 12, *kv, scratch, m->pool(), LogitsMode::kLast, logits).ok());
  for (const Seen& s : seen) {
    double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (float v : logits) sum += std::exp(v - mx);
    const double lse = mx + std::log(sum);
    EXPECT_NEAR(s.logprob, logits[static_cast<size_t>(s.token)] - lse, 1e-4);
    ASSERT_EQ(s.top.size(), 3u);
    EXPECT_EQ(s.top[0].token, std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_NEAR(s.top[i].logprob, logits[static_cast<size_t>(s.top[i].token)] - lse, 1e-4);
      if (i > 0) {
        EXPECT_GE(s.top[i - 1].logprob, s.top[i].logprob);
      }
    }
    EXPECT_LE(s.logprob, s.top[0].logprob);
    ASSERT_TRUE(m->transformer().forward(&s.token, 1, *kv, scratch, m->pool(), LogitsMode::kLast, logits).ok());
  }
  // Out of range.
  r.logprobs = 21;
  auto bad = engine->submit(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("logprobs must be between 0 and 20"), std::string::npos);
}

// Submitters and cancellers on several threads (the scheduler's TSan test): every request ends exactly once.
TEST(Engine, ConcurrentSubmittersAndCancellers) {
  test::TempDir dir;
  auto m = load(test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2)));
  ASSERT_TRUE(m);
  EngineOptions o;
  o.max_parallel = 6;
  o.n_ctx = 96;
  o.max_queue = 1000;
  o.kv_mem_bytes = static_cast<int64_t>(12 * KvBlockPool::block_bytes(m->config(), 16, DType::kF16));
  auto engine = make_engine(m, o);
  ASSERT_TRUE(engine);
  constexpr int kThreads = 4, kPerThread = 20;
  std::atomic<int> done_calls{0};
  std::mutex ids_mu;
  std::vector<uint64_t> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EngineRequest r;
        r.prompt = random_tokens(1 + (t * 7 + i * 3) % 40, 512, static_cast<uint32_t>(t * 100 + i));
        r.sampling.seed = static_cast<uint64_t>(i);
        r.max_new_tokens = 1 + (i * 5) % 30;
        r.on_token = [](const TokenEvent&) { return true; };
        r.on_done = [&](const RequestResult&) { done_calls.fetch_add(1); };
        auto id = engine->submit(std::move(r));
        ASSERT_TRUE(id.ok()) << id.error().message;
        std::lock_guard<std::mutex> lock(ids_mu);
        ids.push_back(*id);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      for (int i = 0; i < 40; ++i) {
        uint64_t id = 0;
        {
          std::lock_guard<std::mutex> lock(ids_mu);
          if (!ids.empty()) id = ids[rng() % ids.size()];
        }
        if (id != 0) engine->cancel(id);
        (void)engine->stats();
        std::this_thread::sleep_for(1ms);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 6000 && done_calls.load() < kThreads * kPerThread; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(done_calls.load(), kThreads * kPerThread);
  const EngineStats st = engine->stats();
  EXPECT_EQ(st.requests_submitted, kThreads * kPerThread);
  EXPECT_EQ(st.requests_finished, kThreads * kPerThread);
  EXPECT_EQ(st.kv_blocks_used, 0);
  engine.reset();
  EXPECT_EQ(done_calls.load(), kThreads * kPerThread);  // none twice
}

}  // namespace
}  // namespace edgellm
