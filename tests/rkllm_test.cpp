// The RKLLM-compatible API (rkllm.h) against edgellm's own C API on the same tiny model: what an
// application written for the vendor runtime sees (NORMAL pieces, one FINISH or ERROR, keep_history,
// prompt caches, LoRA, abort, async, custom chat templates), and the rkllm_chat example run end to end
// with its SQLite rows checked.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "edgellm/edgellm.h"
#include "format/safetensors_writer.h"
#include "rkllm.h"
#include "security/encrypted_model.h"
#include "security/minisign.h"
#include "security/model_key.h"
#include "support/test_env.h"
#include "support/tiny_lora.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;

// An atomic counter that can be copied (Received is returned by value).
struct Counter {
  std::atomic<int> value{0};
  Counter() = default;
  Counter(const Counter& other) : value(other.value.load()) {}
  Counter& operator=(const Counter& other) {
    value.store(other.value.load());
    return *this;
  }
};

// Everything the result callback received during one run.
struct Received {
  std::string text;  // NORMAL pieces concatenated
  int n_normal = 0, n_waiting = 0, n_finish = 0, n_error = 0, after_end = 0;
  bool null_text = false;
  bool token_ids_are_minus_one = true;
  std::string error;
  RKLLMPerfStat perf{};
  std::vector<float> logits, hidden;  // copied from a NORMAL result in logits / hidden modes
  int stop_after = 0;                 // return 1 after this many NORMAL pieces
  Counter normal_seen;  // read by another thread while an async run streams

  bool finished_once() const { return n_finish == 1 && n_error == 0 && after_end == 0 && !null_text; }
  bool failed_once() const { return n_finish == 0 && n_error == 1 && after_end == 0; }
};

int on_result(RKLLMResult* result, void* userdata, LLMCallState state) {
  auto* r = static_cast<Received*>(userdata);
  if (r->n_finish + r->n_error > 0) ++r->after_end;
  if (!result->text) r->null_text = true;
  if (result->token_id != -1) r->token_ids_are_minus_one = false;
  switch (state) {
    case RKLLM_RUN_NORMAL: {
      ++r->n_normal;
      r->normal_seen.value.fetch_add(1);
      if (result->text) r->text += result->text;
      const auto& l = result->logits;
      if (l.logits) r->logits.assign(l.logits, l.logits + static_cast<size_t>(l.vocab_size) * l.num_tokens);
      const auto& h = result->last_hidden_layer;
      if (h.hidden_states) {
        r->hidden.assign(h.hidden_states, h.hidden_states + static_cast<size_t>(h.embd_size) * h.num_tokens);
      }
      return r->stop_after > 0 && r->n_normal >= r->stop_after ? 1 : 0;
    }
    case RKLLM_RUN_WAITING: ++r->n_waiting; return 0;
    case RKLLM_RUN_FINISH:
      ++r->n_finish;
      r->perf = result->perf;
      return 0;
    case RKLLM_RUN_ERROR:
      ++r->n_error;
      r->error = result->text ? result->text : "";
      return 0;
  }
  return 0;
}

// Parameters as the vendor's demo sets them, but deterministic: top_k 1 and no repeat penalty, so the
// answers can be compared with edgellm's greedy decoding.
RKLLMParam demo_param(const std::string& model_path, int32_t max_new_tokens = 12) {
  RKLLMParam p = rkllm_createDefaultParam();
  p.model_path = model_path.c_str();
  p.max_new_tokens = max_new_tokens;
  p.max_context_len = 512;
  p.top_k = 1;
  p.top_p = 0.95f;
  p.temperature = 0.8f;
  p.repeat_penalty = 1.0f;
  p.skip_special_token = true;
  p.ignore_eos_token = true;
  p.extend_param.enabled_cpus_num = 2;
  p.extend_param.embed_flash = 1;
  return p;
}

struct Handle {
  LLMHandle h = nullptr;
  Handle() = default;
  Handle(const Handle&) = delete;
  ~Handle() {
    if (h) rkllm_destroy(h);
  }
};

// Initializes `out` with the demo parameters and on_result.
void init(Handle& out, const std::string& model_path, int32_t max_new_tokens = 12) {
  RKLLMParam p = demo_param(model_path, max_new_tokens);
  RKLLMCallback cb;
  std::memset(&cb, 0, sizeof cb);
  cb.result_callback = on_result;
  ASSERT_EQ(rkllm_init(&out.h, &p, &cb), 0) << rkllm_edgellm_last_error(nullptr);
  ASSERT_NE(out.h, nullptr);
}

RKLLMInput prompt_input(const char* text) {
  RKLLMInput in;
  std::memset(&in, 0, sizeof in);
  in.role = "user";
  in.input_type = RKLLM_INPUT_PROMPT;
  in.prompt_input = text;
  return in;
}

RKLLMInferParam infer_param(int keep_history) {
  RKLLMInferParam ip;
  std::memset(&ip, 0, sizeof ip);
  ip.mode = RKLLM_INFER_GENERATE;
  ip.keep_history = keep_history;
  return ip;
}

Received run(LLMHandle h, const char* text, int keep_history, int expected_return = 0) {
  Received r;
  RKLLMInput in = prompt_input(text);
  RKLLMInferParam ip = infer_param(keep_history);
  EXPECT_EQ(rkllm_run(h, &in, &ip, &r), expected_return) << rkllm_edgellm_last_error(h);
  return r;
}

// edgellm's own C API on the same model, for reference answers.
class Reference {
 public:
  explicit Reference(const std::string& path) {
    edgellm_model_params mp = edgellm_model_default_params();
    mp.n_threads = 2;
    EXPECT_EQ(edgellm_model_load(path.c_str(), &mp, &model_), EDGELLM_OK) << edgellm_last_error();
    new_session();
  }
  ~Reference() {
    edgellm_session_free(session_);
    edgellm_model_free(model_);
  }
  void new_session() {
    edgellm_session_free(session_);
    edgellm_session_params sp = edgellm_session_default_params();
    sp.n_ctx = 512;
    EXPECT_EQ(edgellm_session_create(model_, &sp, &session_), EDGELLM_OK);
    edgellm_session_set_thinking(session_, 0);
  }
  edgellm_generate_params params(int32_t n) const {
    edgellm_generate_params gp = edgellm_generate_default_params(model_);
    edgellm_sampling_preset("greedy", &gp.sampling);
    gp.max_new_tokens = n;
    gp.ignore_stop_tokens = 1;
    return gp;
  }
  // message NULL: the assistant's next turn for the history as it stands.
  std::string chat(const char* message, int32_t n = 12, const char* lora = nullptr) {
    edgellm_generate_params gp = params(n);
    gp.lora_name = lora;
    std::string text;
    EXPECT_EQ(edgellm_session_chat(session_, message, &gp, collect, &text), EDGELLM_OK)
        << edgellm_session_last_error(session_);
    return text;
  }
  std::string complete_special(const std::string& prompt, int32_t n = 12) {
    edgellm_generate_params gp = params(n);
    gp.allow_special = 1;
    std::string text;
    EXPECT_EQ(edgellm_session_complete(session_, prompt.c_str(), &gp, collect, &text), EDGELLM_OK);
    return text;
  }
  std::string tokens_then_generate(const std::vector<int32_t>& ids, int32_t n = 12) {
    edgellm_generate_params gp = params(n);
    std::string text;
    EXPECT_EQ(edgellm_session_prefill(session_, ids.data(), ids.size()), EDGELLM_OK);
    EXPECT_EQ(edgellm_session_generate(session_, &gp, collect, &text), EDGELLM_OK);
    return text;
  }
  edgellm_model* model() const { return model_; }
  edgellm_session* session() const { return session_; }
  edgellm_perf perf() const {
    edgellm_perf p{};
    EXPECT_EQ(edgellm_session_get_perf(session_, &p), EDGELLM_OK);
    return p;
  }

 private:
  // As RKLLM delivers text: C strings, so generated NUL bytes are dropped.
  static int32_t collect(edgellm_event event, const char* text, size_t len, void* user_data) {
    if (event != EDGELLM_EVENT_TEXT) return 0;
    for (size_t i = 0; i < len; ++i) {
      if (text[i] != '\0') static_cast<std::string*>(user_data)->push_back(text[i]);
    }
    return 0;
  }
  edgellm_model* model_ = nullptr;
  edgellm_session* session_ = nullptr;
};

class Rkllm : public ::testing::Test {
 protected:
  virtual Arch arch() const { return Arch::kQwen2; }
  void SetUp() override {
    path_ = test::write_tiny_gguf(dir_.path(), test::tiny_config(arch()), DType::kF16);
  }
  TempDir dir_;
  std::string path_;
};

// The tests of conversations, prompt caches and batches also on a hybrid model (Qwen3.5: linear-attention
// state beside the KV cache; n_batch > 1 runs the serving engine with one state slot per sequence).
class RkllmPerArch : public Rkllm, public ::testing::WithParamInterface<Arch> {
 protected:
  Arch arch() const override { return GetParam(); }
};

TEST_F(Rkllm, RequiredSignatureFromTheEnvironmentGuardsInit) {
  // EDGELLM_REQUIRE_SIGNATURE is how a board makes RKLLM applications, which pass no such option, refuse a
  // model that is not signed by its key (docs/security.md).
  const MinisignSecretKey key = generate_minisign_key();
  test::write_file(dir_.file("board.pub"), format_public_key(key.public_key()));
  ::setenv("EDGELLM_REQUIRE_SIGNATURE", dir_.file("board.pub").c_str(), 1);
  RKLLMParam p = demo_param(path_);
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  LLMHandle h = nullptr;
  EXPECT_EQ(rkllm_init(&h, &p, &cb), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(nullptr)).find("not signed"), std::string::npos)
      << rkllm_edgellm_last_error(nullptr);
  test::write_file(path_ + ".minisig", *sign_file(path_, key, "board release"));
  EXPECT_EQ(rkllm_init(&h, &p, &cb), 0) << rkllm_edgellm_last_error(nullptr);
  ::unsetenv("EDGELLM_REQUIRE_SIGNATURE");
  if (h) rkllm_destroy(h);
}

TEST_F(Rkllm, EncryptedModelsOpenWithTheKeyFromTheEnvironment) {
  // RKLLM applications pass only a path: an encrypted model's key comes from EDGELLM_MODEL_KEY_FILE,
  // EDGELLM_MODEL_KEY or the systemd credential (docs/security.md).
  const ModelKey key = ModelKey::generate();
  test::write_file(dir_.file("board.key"), format_model_key(key));
  const std::string enc = dir_.file("model.enc");
  ASSERT_TRUE(encrypt_model_file(path_, enc, key).ok());
  RKLLMParam p = demo_param(enc);
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  LLMHandle h = nullptr;
  ::unsetenv("EDGELLM_MODEL_KEY_FILE");
  EXPECT_EQ(rkllm_init(&h, &p, &cb), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(nullptr)).find("an encrypted model file: give its key"),
            std::string::npos)
      << rkllm_edgellm_last_error(nullptr);
  ::setenv("EDGELLM_MODEL_KEY_FILE", dir_.file("board.key").c_str(), 1);
  EXPECT_EQ(rkllm_init(&h, &p, &cb), 0) << rkllm_edgellm_last_error(nullptr);
  ::unsetenv("EDGELLM_MODEL_KEY_FILE");
  if (h) rkllm_destroy(h);
}

TEST_F(Rkllm, InitRejectsWhatItCannotRunWithAMessage) {
  LLMHandle h = reinterpret_cast<LLMHandle>(0x1);
  RKLLMParam p = demo_param(path_);
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  EXPECT_EQ(rkllm_init(nullptr, &p, &cb), -1);
  EXPECT_EQ(rkllm_init(&h, nullptr, &cb), -1);
  EXPECT_EQ(h, nullptr);

  const std::string missing = dir_.file("missing.gguf");
  p.model_path = missing.c_str();
  EXPECT_EQ(rkllm_init(&h, &p, &cb), -1);
  EXPECT_EQ(h, nullptr);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(nullptr)).find("missing.gguf"), std::string::npos);
  p.model_path = nullptr;
  EXPECT_EQ(rkllm_init(&h, &p, &cb), -1);

  struct Case {
    const char* what;
    void (*change)(RKLLMParam&);
  };
  const Case cases[] = {
      {"n_batch", [](RKLLMParam& q) { q.extend_param.n_batch = 65; }},
      {"use_cross_attn", [](RKLLMParam& q) { q.extend_param.use_cross_attn = 1; }},
      {"mirostat", [](RKLLMParam& q) { q.mirostat = 3; }},
      {"mirostat_tau", [](RKLLMParam& q) {
         q.mirostat = 2;
         q.mirostat_tau = 0.0f;
       }},
      {"max_context_len", [](RKLLMParam& q) { q.max_context_len = -4; }},
  };
  for (const auto& c : cases) {
    RKLLMParam q = demo_param(path_);
    c.change(q);
    EXPECT_EQ(rkllm_init(&h, &q, &cb), -1) << c.what;
    EXPECT_EQ(h, nullptr);
    EXPECT_NE(std::string(rkllm_edgellm_last_error(nullptr)).find(c.what), std::string::npos)
        << rkllm_edgellm_last_error(nullptr);
  }
  // NULL handles elsewhere: -1, no crash.
  RKLLMInput in = prompt_input("x");
  RKLLMInferParam ip = infer_param(0);
  EXPECT_EQ(rkllm_run(nullptr, &in, &ip, nullptr), -1);
  EXPECT_EQ(rkllm_run_async(nullptr, &in, &ip, nullptr), -1);
  EXPECT_EQ(rkllm_abort(nullptr), -1);
  EXPECT_EQ(rkllm_is_running(nullptr), 0);
  EXPECT_EQ(rkllm_destroy(nullptr), -1);
  EXPECT_EQ(rkllm_clear_kv_cache(nullptr, 1, nullptr, nullptr), -1);
  EXPECT_EQ(rkllm_load_prompt_cache(nullptr, "x"), -1);
  EXPECT_EQ(rkllm_load_lora(nullptr, nullptr), -1);
}

TEST_F(Rkllm, StreamsNormalPiecesThenOneFinishAsEdgellmChats) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  const Received r = run(h.h, "Hello, who are you?", 0);
  EXPECT_TRUE(r.finished_once());
  EXPECT_EQ(r.n_waiting, 0);
  EXPECT_GT(r.n_normal, 1);
  EXPECT_TRUE(r.token_ids_are_minus_one);
  EXPECT_EQ(r.text, ref.chat("Hello, who are you?"));
  EXPECT_EQ(r.perf.generate_tokens, 12);
  EXPECT_GT(r.perf.prefill_tokens, 0);
  EXPECT_GT(r.perf.memory_usage_mb, 0.0f);

  // max_new_tokens of the infer params overrides the init value for one run.
  Received shorter;
  RKLLMInput in = prompt_input("Hello, who are you?");
  RKLLMInferParam ip = infer_param(0);
  ip.max_new_tokens = 3;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &shorter), 0);
  EXPECT_EQ(shorter.perf.generate_tokens, 3);
  EXPECT_EQ(r.text.rfind(shorter.text, 0), 0u);  // a prefix of the longer answer

  // Sampling params override the init ones for one run (top_k 1 either way: same greedy answer).
  RKLLMSamplingParam sp{};
  sp.top_k = 1;
  sp.top_p = 0.5f;
  sp.temperature = 1.5f;
  sp.repeat_penalty = 1.0f;
  ip.max_new_tokens = 0;
  ip.sampling_params = &sp;
  Received sampled;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &sampled), 0);
  EXPECT_EQ(sampled.text, r.text);
  // Mirostat 2 runs (it replaces top-k/top-p); an unknown version is refused before the run.
  sp.mirostat = 2;
  sp.mirostat_tau = 5.0f;
  sp.mirostat_eta = 0.1f;
  ip.max_new_tokens = 8;
  Received mirostat;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &mirostat), 0);
  EXPECT_EQ(mirostat.n_finish, 1);
  EXPECT_EQ(mirostat.n_error, 0);
  sp.mirostat = 7;
  Received rejected;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &rejected), -1);
  EXPECT_EQ(rejected.n_finish + rejected.n_error, 0);
}

TEST_F(Rkllm, UserdataFallsBackToTheCallbackStruct) {
  Received from_struct;
  RKLLMParam p = demo_param(path_);
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  cb.result_userdata = &from_struct;
  Handle h;
  ASSERT_EQ(rkllm_init(&h.h, &p, &cb), 0);
  RKLLMInput in = prompt_input("Hi");
  RKLLMInferParam ip = infer_param(0);
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, nullptr), 0);
  EXPECT_TRUE(from_struct.finished_once());
  Received from_run;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &from_run), 0);
  EXPECT_TRUE(from_run.finished_once());
  EXPECT_EQ(from_struct.n_finish, 1);
}

TEST_P(RkllmPerArch, KeepHistoryIsAConversationAndZeroStartsAfresh) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  const char* turns[] = {"Hi", "What do you like?", "Why?"};
  std::vector<Received> kept;
  for (const char* t : turns) kept.push_back(run(h.h, t, 1));
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(kept[i].finished_once());
    EXPECT_EQ(kept[i].text, ref.chat(turns[i])) << "turn " << i;
    // The same KV reuse as edgellm's own chat: later turns prefill only what is not cached.
    const edgellm_perf p = ref.perf();
    EXPECT_EQ(kept[i].perf.prefill_tokens, p.prefill_tokens) << "turn " << i;
    if (i > 0) {
      EXPECT_LT(kept[i].perf.prefill_tokens, p.prompt_tokens) << "turn " << i;
    }
  }
  int kv = 0;
  ASSERT_EQ(rkllm_get_kv_cache_size(h.h, &kv), 0);
  EXPECT_GT(kv, kept[0].perf.prefill_tokens);

  // keep_history = 0: each run stands alone, yet reuses the cached common prefix.
  Reference fresh(path_);
  const Received alone = run(h.h, "Why?", 0);
  EXPECT_EQ(alone.text, fresh.chat("Why?"));
  const Received alone2 = run(h.h, "Tell me a joke", 0);
  fresh.new_session();
  EXPECT_EQ(alone2.text, fresh.chat("Tell me a joke"));
  edgellm_perf full{};
  fresh.new_session();
  fresh.chat("Tell me a joke");
  edgellm_session_get_perf(fresh.session(), &full);
  if (arch() == Arch::kQwen35) {
    // The runs share only the template's first tokens, where a hybrid model has no state snapshot: it
    // prefills the whole prompt again (never from a wrong state).
    EXPECT_EQ(alone2.perf.prefill_tokens, full.prefill_tokens);
  } else {
    EXPECT_LT(alone2.perf.prefill_tokens, full.prefill_tokens);
  }

  // From keep_history = 0 to 1: the one-off turn is not part of the new conversation.
  fresh.new_session();
  EXPECT_EQ(run(h.h, "Start", 1).text, fresh.chat("Start"));
  EXPECT_EQ(run(h.h, "Go on", 1).text, fresh.chat("Go on"));
}

TEST_P(RkllmPerArch, ClearKvCacheStartsANewConversation) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  run(h.h, "Remember this", 1);
  run(h.h, "And this", 1);
  ASSERT_EQ(rkllm_clear_kv_cache(h.h, 1, nullptr, nullptr), 0);
  EXPECT_EQ(run(h.h, "Hello", 1).text, ref.chat("Hello"));

  ASSERT_EQ(rkllm_clear_kv_cache(h.h, 0, nullptr, nullptr), 0);
  int kv = -1;
  ASSERT_EQ(rkllm_get_kv_cache_size(h.h, &kv), 0);
  EXPECT_EQ(kv, 0);
  ref.new_session();
  EXPECT_EQ(run(h.h, "Hello", 1).text, ref.chat("Hello"));

  // Ranges: only ones reaching the end of the cache.
  ASSERT_EQ(rkllm_get_kv_cache_size(h.h, &kv), 0);
  int start = kv - 4, end = kv;
  EXPECT_EQ(rkllm_clear_kv_cache(h.h, 0, &start, &end), 0);
  int after = 0;
  rkllm_get_kv_cache_size(h.h, &after);
  EXPECT_EQ(after, kv - 4);
  start = 0;
  end = 2;
  EXPECT_EQ(rkllm_clear_kv_cache(h.h, 0, &start, &end), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("end of the cache"), std::string::npos);
  EXPECT_EQ(rkllm_clear_kv_cache(h.h, 0, &start, nullptr), -1);
  EXPECT_EQ(rkllm_get_kv_cache_size(h.h, nullptr), -1);
}

TEST_F(Rkllm, CallbackReturningOneStopsTheRun) {
  Handle h;
  init(h, path_, 40);
  Received r;
  r.stop_after = 2;
  RKLLMInput in = prompt_input("Talk");
  RKLLMInferParam ip = infer_param(1);
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &r), 0);
  EXPECT_EQ(r.n_normal, 2);
  EXPECT_TRUE(r.finished_once());
  EXPECT_LT(r.perf.generate_tokens, 40);
  EXPECT_TRUE(run(h.h, "Continue", 1).finished_once());
}

TEST_F(Rkllm, ErrorsDuringARunGiveOneErrorAndTheHandleStaysUsable) {
  Handle h;
  RKLLMParam p = demo_param(path_);
  p.max_context_len = 64;
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  ASSERT_EQ(rkllm_init(&h.h, &p, &cb), 0);
  Reference ref(path_);

  const std::string too_long(2000, 'q');
  Received r = run(h.h, too_long.c_str(), 0, -1);
  EXPECT_TRUE(r.failed_once());
  EXPECT_NE(r.error.find("64"), std::string::npos) << r.error;
  EXPECT_EQ(r.error, rkllm_edgellm_last_error(h.h));

  Received bad_utf8 = run(h.h, "caf\xc3\x28", 0, -1);
  EXPECT_TRUE(bad_utf8.failed_once());
  EXPECT_NE(bad_utf8.error.find("UTF-8"), std::string::npos) << bad_utf8.error;

  EXPECT_EQ(run(h.h, "Hello", 1).text, ref.chat("Hello"));
}

TEST_F(Rkllm, UnsupportedInputsAreRejectedBeforeTheRun) {
  Handle h;
  init(h, path_);
  Received r;
  RKLLMInferParam ip = infer_param(0);
  RKLLMInput in = prompt_input("x");
  EXPECT_EQ(rkllm_run(h.h, nullptr, &ip, &r), -1);
  EXPECT_EQ(rkllm_run(h.h, &in, nullptr, &r), -1);
  in.prompt_input = nullptr;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &r), -1);

  float embed[64] = {};
  RKLLMInput e;
  std::memset(&e, 0, sizeof e);
  e.input_type = RKLLM_INPUT_EMBED;
  e.embed_input.embed = embed;
  e.embed_input.n_tokens = 1;
  EXPECT_EQ(rkllm_run(h.h, &e, &ip, &r), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("RKLLM_INPUT_EMBED is not supported"), std::string::npos);
  e.input_type = RKLLM_INPUT_MULTIMODAL;
  EXPECT_EQ(rkllm_run(h.h, &e, &ip, &r), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("MULTIMODAL"), std::string::npos);
  e.input_type = static_cast<RKLLMInputType>(42);
  EXPECT_EQ(rkllm_run(h.h, &e, &ip, &r), -1);

  RKLLMInput tool = prompt_input("[{\"result\": 4}]");
  tool.role = "tool";
  EXPECT_EQ(rkllm_run(h.h, &tool, &ip, &r), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("tool"), std::string::npos);

  RKLLMInput tokens;
  std::memset(&tokens, 0, sizeof tokens);
  tokens.input_type = RKLLM_INPUT_TOKEN;
  EXPECT_EQ(rkllm_run(h.h, &tokens, &ip, &r), -1);  // no tokens

  EXPECT_EQ(rkllm_set_function_tools(h.h, "sys", "[{\"type\": \"function\"}]", "tool_response"), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("tools[0]"), std::string::npos);
  EXPECT_EQ(rkllm_set_function_tools(h.h, "sys", "[]", "<result>"), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("tool_response_str '<result>'"), std::string::npos);
  EXPECT_EQ(rkllm_set_cross_attn_params(h.h, nullptr), -1);
  EXPECT_EQ(r.n_normal + r.n_finish + r.n_error, 0);  // nothing started, no callbacks

  EXPECT_TRUE(run(h.h, "Still fine", 0).finished_once());
}

TEST_F(Rkllm, TokenInputIsUsedVerbatim) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  std::vector<int32_t> ids(64);
  size_t n = 0;
  ASSERT_EQ(edgellm_tokenize(ref.model(), "Once upon a time", 16, 0, ids.data(), ids.size(), &n), EDGELLM_OK);
  ids.resize(n);
  RKLLMInput in;
  std::memset(&in, 0, sizeof in);
  in.input_type = RKLLM_INPUT_TOKEN;
  in.token_input.input_ids = ids.data();
  in.token_input.n_tokens = ids.size();
  RKLLMInferParam ip = infer_param(0);
  Received r;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &r), 0);
  EXPECT_TRUE(r.finished_once());
  EXPECT_EQ(r.text, ref.tokens_then_generate(ids));
  EXPECT_EQ(r.perf.prefill_tokens, static_cast<int>(ids.size()));
  EXPECT_EQ(r.perf.generate_tokens, 12);

  ip.keep_history = 1;  // appending raw tokens to a conversation is not supported
  Received appended;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &appended), -1);
  ids.push_back(1 << 29);  // out of the vocabulary
  in.token_input.input_ids = ids.data();
  in.token_input.n_tokens = ids.size();
  ip.keep_history = 0;
  Received out_of_range;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &out_of_range), -1);
  EXPECT_TRUE(out_of_range.failed_once());
}

TEST_F(Rkllm, LogitsAndHiddenStateModes) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  ref.chat("Hello", 0);
  const float* logits = nullptr;
  int32_t n_vocab = 0;
  ASSERT_EQ(edgellm_session_get_logits(ref.session(), &logits, &n_vocab), EDGELLM_OK);
  const std::vector<float> expected_logits(logits, logits + n_vocab);
  const float* hidden = nullptr;
  int32_t n_embd = 0;
  ASSERT_EQ(edgellm_session_get_hidden(ref.session(), &hidden, &n_embd), EDGELLM_OK);
  const std::vector<float> expected_hidden(hidden, hidden + n_embd);

  RKLLMInput in = prompt_input("Hello");
  RKLLMInferParam ip = infer_param(1);  // never kept in these modes
  ip.mode = RKLLM_INFER_GET_LOGITS;
  Received l;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &l), 0);
  EXPECT_TRUE(l.finished_once());
  EXPECT_EQ(l.n_normal, 1);
  EXPECT_EQ(l.logits, expected_logits);
  EXPECT_EQ(l.perf.generate_tokens, 0);

  ip.mode = RKLLM_INFER_GET_LAST_HIDDEN_LAYER;
  Received hs;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &hs), 0);
  EXPECT_TRUE(hs.finished_once());
  EXPECT_EQ(hs.hidden, expected_hidden);
  EXPECT_TRUE(hs.logits.empty());

  ip.mode = static_cast<RKLLMInferMode>(7);
  Received bad;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &bad), -1);

  // Not part of the conversation: the next kept turn is the first.
  Reference fresh(path_);
  EXPECT_EQ(run(h.h, "Hi", 1).text, fresh.chat("Hi"));
}

TEST_F(Rkllm, AbortFromAnotherThreadEndsTheRunWithFinish) {
  Handle h;
  init(h, path_, 100000);
  RKLLMInput in = prompt_input("Go on and on");
  RKLLMInferParam ip = infer_param(1);
  Received r;
  ASSERT_EQ(rkllm_run_async(h.h, &in, &ip, &r), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (r.normal_seen.value.load() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(rkllm_is_running(h.h), 1);
  EXPECT_EQ(rkllm_abort(h.h), 0);
  while (rkllm_is_running(h.h) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(rkllm_is_running(h.h), 0);
  EXPECT_TRUE(r.finished_once());
  EXPECT_LT(r.perf.generate_tokens, 500 - 1);  // well before the context (512) would end it
  EXPECT_TRUE(run(h.h, "Next", 1).finished_once());
  EXPECT_EQ(rkllm_abort(h.h), 0);  // nothing running: no effect on the next run
  EXPECT_TRUE(run(h.h, "And next", 1).finished_once());
}

TEST_F(Rkllm, AsyncRunsCopyTheirInputAndRefuseOverlap) {
  Handle h;
  init(h, path_);
  Reference ref(path_);
  std::string prompt = "Hello async";
  RKLLMInput in = prompt_input(prompt.c_str());
  RKLLMInferParam ip = infer_param(0);
  Received r;
  ASSERT_EQ(rkllm_run_async(h.h, &in, &ip, &r), 0);
  prompt.assign(prompt.size(), 'X');  // the run must have its own copy
  Received other;
  const int second = rkllm_run_async(h.h, &in, &ip, &other);
  const int sync = rkllm_run(h.h, &in, &ip, &other);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (rkllm_is_running(h.h) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The overlapping calls fail while the first run is active (they may succeed if it already ended).
  if (second == -1 || sync == -1) {
    EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("active"), std::string::npos);
  }
  EXPECT_TRUE(r.finished_once());
  EXPECT_EQ(r.text, ref.chat("Hello async"));
}

TEST_P(RkllmPerArch, PromptCacheSaveLoadAndForeignCaches) {
  const std::string cache = dir_.file("prompt_cache.bin");
  Received first;
  {
    Handle h;
    init(h, path_);
    RKLLMInput in = prompt_input("A long shared question about caches");
    RKLLMInferParam ip = infer_param(0);
    RKLLMPromptCacheParam pc{};
    pc.save_prompt_cache = 1;
    pc.prompt_cache_path = cache.c_str();
    ip.prompt_cache_params = &pc;
    ASSERT_EQ(rkllm_run(h.h, &in, &ip, &first), 0);
    ASSERT_TRUE(std::filesystem::exists(cache));
  }
  Handle h;
  init(h, path_);
  ASSERT_EQ(rkllm_load_prompt_cache(h.h, cache.c_str()), 0) << rkllm_edgellm_last_error(h.h);
  const Received again = run(h.h, "A long shared question about caches", 0);
  EXPECT_EQ(again.text, first.text);
  EXPECT_LE(again.perf.prefill_tokens, 1);  // everything came from the cache
  ASSERT_EQ(rkllm_release_prompt_cache(h.h), 0);
  int kv = -1;
  rkllm_get_kv_cache_size(h.h, &kv);
  EXPECT_EQ(kv, 0);

  // Another model's cache, a damaged file, no file.
  TempDir other_dir;
  const std::string other = test::write_tiny_gguf(other_dir.path(), test::tiny_config(Arch::kQwen2), DType::kF16, 5);
  Handle o;
  init(o, other);
  EXPECT_EQ(rkllm_load_prompt_cache(o.h, cache.c_str()), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(o.h)).find("another model"), std::string::npos);
  const std::string bytes = test::read_file(cache);
  test::write_file(dir_.file("damaged.bin"), bytes.substr(0, bytes.size() / 3));
  EXPECT_EQ(rkllm_load_prompt_cache(h.h, dir_.file("damaged.bin").c_str()), -1);
  EXPECT_EQ(rkllm_load_prompt_cache(h.h, dir_.file("none.bin").c_str()), -1);
  EXPECT_EQ(rkllm_load_prompt_cache(h.h, nullptr), -1);
  EXPECT_EQ(run(h.h, "A long shared question about caches", 0).text, first.text);
}

TEST_F(Rkllm, CustomChatTemplateMatchesTheBuiltInOne) {
  // The tiny model's template is ChatML; spelled out by hand it must give the same answers.
  Handle h;
  init(h, path_);
  ASSERT_EQ(rkllm_set_chat_template(h.h, "<|im_start|>system\nBe kind.<|im_end|>\n", "<|im_start|>user\n",
                                    "<|im_end|>\n<|im_start|>assistant\n"),
            0);
  Reference ref(path_);
  edgellm_session_set_system_prompt(ref.session(), "Be kind.");
  const Received one = run(h.h, "Hi", 0);
  EXPECT_EQ(one.text, ref.chat("Hi"));
  ref.new_session();
  const std::string transcript = "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                                 "<|im_start|>assistant\n";
  EXPECT_EQ(ref.complete_special(transcript), one.text);

  // keep_history: the next turn follows the transcript so far.
  const Received a = run(h.h, "First", 1);
  const Received b = run(h.h, "Second", 1);
  const std::string t1 = "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nFirst<|im_end|>\n"
                         "<|im_start|>assistant\n";
  ref.new_session();
  EXPECT_EQ(ref.complete_special(t1), a.text);
  EXPECT_EQ(ref.complete_special(t1 + a.text + "<|im_start|>user\nSecond<|im_end|>\n<|im_start|>assistant\n"), b.text);

  EXPECT_EQ(rkllm_set_chat_template(h.h, nullptr, "", ""), -1);
  ASSERT_EQ(rkllm_set_chat_template(h.h, "", "", ""), 0);  // back to the model's template
  Reference plain(path_);
  EXPECT_EQ(run(h.h, "Hi", 0).text, plain.chat("Hi"));
}

TEST_F(Rkllm, LoraAdaptersByNameAndScale) {
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  const std::string adapter = test::write_q_proj_adapter(dir_.file("medical"), c, c.n_embd);
  const std::string misfit = test::write_q_proj_adapter(dir_.file("misfit"), c, c.n_embd - 8);
  Handle h;
  init(h, path_);
  RKLLMLoraAdapter medical{adapter.c_str(), "medical", 1.0f};
  ASSERT_EQ(rkllm_load_lora(h.h, &medical), 0) << rkllm_edgellm_last_error(h.h);
  RKLLMLoraAdapter off{adapter.c_str(), "medical-off", 0.0f};
  ASSERT_EQ(rkllm_load_lora(h.h, &off), 0);
  RKLLMLoraAdapter bad{misfit.c_str(), "misfit", 1.0f};
  EXPECT_EQ(rkllm_load_lora(h.h, &bad), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("q_proj"), std::string::npos)
      << rkllm_edgellm_last_error(h.h);
  EXPECT_EQ(rkllm_load_lora(h.h, nullptr), -1);
  RKLLMLoraAdapter unnamed{adapter.c_str(), nullptr, 1.0f};
  EXPECT_EQ(rkllm_load_lora(h.h, &unnamed), -1);

  Reference ref(path_);
  ASSERT_EQ(edgellm_model_load_lora(ref.model(), adapter.c_str(), "medical"), EDGELLM_OK);
  const std::string base = ref.chat("Hello");
  ref.new_session();
  const std::string adapted = ref.chat("Hello", 12, "medical");
  ASSERT_NE(adapted, base);

  RKLLMInput in = prompt_input("Hello");
  RKLLMInferParam ip = infer_param(0);
  RKLLMLoraParam lp{"medical"};
  ip.lora_params = &lp;
  Received with;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &with), 0);
  EXPECT_EQ(with.text, adapted);
  lp.lora_adapter_name = "medical-off";  // scale 0: the base model
  Received zero;
  ASSERT_EQ(rkllm_run(h.h, &in, &ip, &zero), 0);
  EXPECT_EQ(zero.text, base);
  lp.lora_adapter_name = "surgeon";
  Received unknown;
  EXPECT_EQ(rkllm_run(h.h, &in, &ip, &unknown), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("surgeon"), std::string::npos);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("medical"), std::string::npos);  // lists loaded ones
  ip.lora_params = nullptr;
  EXPECT_EQ(run(h.h, "Hello", 0).text, base);
}

TEST_F(Rkllm, HandlesRunInParallel) {
  Reference ref(path_);
  const std::string expected_a = ref.chat("Thread A");
  ref.new_session();
  const std::string expected_b = ref.chat("Thread B");
  std::string got_a, got_b;
  std::thread a([&] {
    Handle h;
    init(h, path_);
    got_a = run(h.h, "Thread A", 0).text;
  });
  std::thread b([&] {
    Handle h;
    init(h, path_);
    got_b = run(h.h, "Thread B", 0).text;
  });
  a.join();
  b.join();
  EXPECT_EQ(got_a, expected_a);
  EXPECT_EQ(got_b, expected_b);
}

// Applications written for 1.1 / 1.2 pass a bare callback to rkllm_init (C++ overloads).
int int_callback(RKLLMResult* result, void* userdata, LLMCallState state) { return on_result(result, userdata, state); }
void void_callback(RKLLMResult* result, void* userdata, LLMCallState state) { on_result(result, userdata, state); }

// What an n_batch > 1 run delivered: per NORMAL call an array of n entries (one step of the engine).
struct BatchReceived {
  int n = 0;
  std::vector<std::string> text;  // per sequence, its pieces concatenated
  std::vector<int> tokens;        // per sequence, entries with a token id >= 0
  int n_normal = 0, n_finish = 0, n_error = 0, after_end = 0;
  int null_text_before_end = 0;   // NULL text for a sequence that had not finished yet
  std::vector<bool> ended;        // per sequence: has had a NULL text (finished)
  std::vector<RKLLMPerfStat> perf;
  int stop_after = 0;             // return 1 after this many NORMAL arrays
  std::string error;
};

int on_batch_result(RKLLMResult* result, void* userdata, LLMCallState state) {
  auto* r = static_cast<BatchReceived*>(userdata);
  if (r->n_finish + r->n_error > 0) ++r->after_end;
  switch (state) {
    case RKLLM_RUN_NORMAL:
      ++r->n_normal;
      for (int i = 0; i < r->n; ++i) {
        if (result[i].text == nullptr) {
          EXPECT_LT(result[i].token_id, 0);
          r->ended[static_cast<size_t>(i)] = true;
          continue;
        }
        if (r->ended[static_cast<size_t>(i)]) ++r->null_text_before_end;  // text again after the end
        r->text[static_cast<size_t>(i)] += result[i].text;
        if (result[i].token_id >= 0) ++r->tokens[static_cast<size_t>(i)];
      }
      return r->stop_after > 0 && r->n_normal >= r->stop_after ? 1 : 0;
    case RKLLM_RUN_FINISH:
      ++r->n_finish;
      for (int i = 0; i < r->n; ++i) r->perf.push_back(result[i].perf);
      return 0;
    case RKLLM_RUN_ERROR:
      ++r->n_error;
      r->error = result->text ? result->text : "";
      return 0;
    default: return 0;
  }
}

BatchReceived run_batch(LLMHandle h, const std::vector<const char*>& prompts, int keep_history, int expected = 0,
                        int stop_after = 0) {
  BatchReceived r;
  r.n = static_cast<int>(prompts.size());
  r.text.resize(prompts.size());
  r.tokens.resize(prompts.size());
  r.ended.resize(prompts.size());
  r.stop_after = stop_after;
  std::vector<RKLLMInput> inputs;
  for (const char* p : prompts) inputs.push_back(prompt_input(p));
  RKLLMInferParam ip = infer_param(keep_history);
  EXPECT_EQ(rkllm_run(h, inputs.data(), &ip, &r), expected) << rkllm_edgellm_last_error(h);
  return r;
}

void init_batch(Handle& out, const std::string& model_path, int n_batch, int32_t max_new_tokens = 12) {
  RKLLMParam p = demo_param(model_path, max_new_tokens);
  p.extend_param.n_batch = static_cast<uint8_t>(n_batch);
  RKLLMCallback cb;
  std::memset(&cb, 0, sizeof cb);
  cb.result_callback = on_batch_result;
  ASSERT_EQ(rkllm_init(&out.h, &p, &cb), 0) << rkllm_edgellm_last_error(nullptr);
}

// n_batch sequences run together (one engine step for all of them) and each answers as it would alone,
// across turns with keep_history, after clearing one sequence, and when the application stops the run.
TEST_P(RkllmPerArch, BatchOfSequencesAnswersEachAsAlone) {
  Handle h;
  init_batch(h, path_, 3);
  const std::vector<const char*> first = {"Hello there", "What is two plus two?", "Tell me a story"};
  BatchReceived r = run_batch(h.h, first, 1);
  EXPECT_EQ(r.n_finish, 1);
  EXPECT_EQ(r.n_error, 0);
  EXPECT_EQ(r.after_end, 0);
  EXPECT_EQ(r.null_text_before_end, 0);
  EXPECT_GE(r.n_normal, 12);  // one array per step: at least as many as tokens per sequence
  std::vector<std::unique_ptr<Reference>> refs;
  for (size_t i = 0; i < first.size(); ++i) {
    refs.push_back(std::make_unique<Reference>(path_));
    EXPECT_EQ(r.text[i], refs[i]->chat(first[i])) << "sequence " << i;
    EXPECT_EQ(r.tokens[i], 12) << "sequence " << i;
    EXPECT_EQ(r.perf[i].generate_tokens, 12);
    EXPECT_GT(r.perf[i].prefill_tokens, 0);
  }
  int sizes[3] = {0, 0, 0};
  ASSERT_EQ(rkllm_get_kv_cache_size(h.h, sizes), 0);
  for (int s : sizes) EXPECT_GT(s, 12);

  // Second turn: each sequence continues its own conversation.
  const std::vector<const char*> second = {"And then?", "Why?", "Go on"};
  r = run_batch(h.h, second, 1);
  EXPECT_EQ(r.n_finish, 1);
  for (size_t i = 0; i < second.size(); ++i) EXPECT_EQ(r.text[i], refs[i]->chat(second[i])) << "sequence " << i;
  // Part of the earlier turns' KV came from the engine's prefix cache (whole blocks up to where the
  // re-rendered reply tokenizes differently from the generated tokens).
  // A hybrid model's engine has no prefix cache (docs/serving.md): each turn is prefilled whole.
  for (size_t i = 0; i < second.size(); ++i) {
    if (arch() == Arch::kQwen35) {
      EXPECT_EQ(r.perf[i].prefill_tokens, refs[i]->perf().prompt_tokens) << "sequence " << i;
    } else {
      EXPECT_LT(r.perf[i].prefill_tokens, refs[i]->perf().prompt_tokens) << "sequence " << i;
    }
  }

  // Clearing sequence 1 alone: it starts afresh, the others go on.
  int start[3] = {0, 0, 0}, end[3] = {0, 1000, 0};
  ASSERT_EQ(rkllm_clear_kv_cache(h.h, 1, start, end), 0) << rkllm_edgellm_last_error(h.h);
  int bad_start[3] = {0, 5, 0};
  EXPECT_EQ(rkllm_clear_kv_cache(h.h, 1, bad_start, end), -1);
  const std::vector<const char*> third = {"Thanks", "Hello there", "The end"};
  r = run_batch(h.h, third, 1);
  Reference fresh(path_);
  EXPECT_EQ(r.text[1], fresh.chat("Hello there"));
  EXPECT_EQ(r.text[0], refs[0]->chat("Thanks"));
  EXPECT_EQ(r.text[2], refs[2]->chat("The end"));

  // The application stops the run after 3 steps: one FINISH, fewer tokens.
  r = run_batch(h.h, first, 0, 0, 3);
  EXPECT_EQ(r.n_finish, 1);
  EXPECT_EQ(r.n_error, 0);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_LT(r.perf[i].generate_tokens, 12);

  // What n_batch > 1 does not take: logits mode, prompt caches.
  std::vector<RKLLMInput> inputs = {prompt_input("a"), prompt_input("b"), prompt_input("c")};
  RKLLMInferParam ip = infer_param(0);
  ip.mode = RKLLM_INFER_GET_LOGITS;
  EXPECT_EQ(rkllm_run(h.h, inputs.data(), &ip, nullptr), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("n_batch is 3"), std::string::npos);
  EXPECT_EQ(rkllm_load_prompt_cache(h.h, "x.bin"), -1);
  // A bad input names its sequence.
  inputs[2].prompt_input = nullptr;
  ip.mode = RKLLM_INFER_GENERATE;
  EXPECT_EQ(rkllm_run(h.h, inputs.data(), &ip, nullptr), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("input 2: prompt_input is NULL"), std::string::npos)
      << rkllm_edgellm_last_error(h.h);
}

TEST_F(Rkllm, BatchAbortFromAnotherThreadEndsEverySequence) {
  Handle h;
  init_batch(h, path_, 2, 400);
  std::thread aborter([&] {
    while (rkllm_is_running(h.h) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    EXPECT_EQ(rkllm_abort(h.h), 0);
  });
  BatchReceived r = run_batch(h.h, {"Hello", "World"}, 0);
  aborter.join();
  EXPECT_EQ(r.n_finish, 1);
  EXPECT_EQ(r.n_error, 0);
  for (int i = 0; i < 2; ++i) EXPECT_LT(r.perf[static_cast<size_t>(i)].generate_tokens, 400);
}

TEST_F(Rkllm, LegacyInitForms) {
  RKLLMParam p = demo_param(path_);
  Handle a, b;
  ASSERT_EQ(rkllm_init(&a.h, &p, int_callback), 0);
  ASSERT_EQ(rkllm_init(&b.h, &p, void_callback), 0);
  const Received ra = run(a.h, "Hi", 0);
  const Received rb = run(b.h, "Hi", 0);
  EXPECT_TRUE(ra.finished_once());
  EXPECT_TRUE(rb.finished_once());
  EXPECT_EQ(ra.text, rb.text);
}

// ---- the example program, end to end ----

struct Row {
  std::string prompt, reply;
  int prefill_tokens = 0, generate_tokens = 0;
};

std::vector<Row> read_rows(const std::string& db_path) {
  std::vector<Row> rows;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT prompt, reply, prefill_tokens, generate_tokens FROM exchanges ORDER BY id",
                               -1, &stmt, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  while (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    Row r;
    r.prompt.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                    static_cast<size_t>(sqlite3_column_bytes(stmt, 0)));
    r.reply.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 1)),
                   static_cast<size_t>(sqlite3_column_bytes(stmt, 1)));
    r.prefill_tokens = sqlite3_column_int(stmt, 2);
    r.generate_tokens = sqlite3_column_int(stmt, 3);
    rows.push_back(r);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return rows;
}

// The answers the example should store: its parameters (vendor demo defaults, greedy top_k 1), kept
// history, run in-process.
std::vector<Received> example_answers(const std::string& model, const std::vector<const char*>& prompts) {
  RKLLMParam p = rkllm_createDefaultParam();
  p.model_path = model.c_str();
  p.max_new_tokens = 16;
  p.max_context_len = 512;
  p.top_k = 1;
  p.top_p = 0.95f;
  p.temperature = 0.8f;
  p.repeat_penalty = 1.1f;
  p.skip_special_token = true;
  RKLLMCallback cb{};
  cb.result_callback = on_result;
  Handle h;
  EXPECT_EQ(rkllm_init(&h.h, &p, &cb), 0);
  std::vector<Received> answers;
  for (const char* prompt : prompts) answers.push_back(run(h.h, prompt, 1));
  return answers;
}

// The example program as a shell command word; in a cross build's test run EDGELLM_TEST_EMULATOR (for
// instance "qemu-aarch64 -cpu cortex-a76", scripts/test.sh) runs it, as the host cannot execute it itself.
std::string example_chat_command() {
  const char* emulator = std::getenv("EDGELLM_TEST_EMULATOR");
  return (emulator && *emulator ? std::string(emulator) + " " : std::string()) + "'" + RKLLM_CHAT_BIN + "'";
}

TEST_F(Rkllm, ExampleChatSavesEachFinishedExchangeToSqlite) {
  const std::string db = dir_.file("chat.db");
  const std::vector<const char*> prompts = {"Hello there", "What is SQLite?", "Thanks, bye"};
  std::string cmd = example_chat_command() + " '" + path_ + "' 16 512 '" + db + "'";
  for (const char* p : prompts) cmd += std::string(" '") + p + "'";
  cmd += " > '" + dir_.file("out.txt") + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  const auto rows = read_rows(db);
  const auto expected = example_answers(path_, prompts);
  ASSERT_EQ(rows.size(), prompts.size());
  const std::string out = test::read_file(dir_.file("out.txt"));
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].prompt, prompts[i]);
    EXPECT_EQ(rows[i].reply, expected[i].text) << "exchange " << i;
    EXPECT_EQ(rows[i].prefill_tokens, expected[i].perf.prefill_tokens) << "exchange " << i;
    EXPECT_EQ(rows[i].generate_tokens, expected[i].perf.generate_tokens) << "exchange " << i;
    EXPECT_NE(out.find(rows[i].reply), std::string::npos);  // also streamed to stdout
  }

  // Prompts from stdin; "clear" starts a new conversation, "exit" ends; rows are appended.
  const std::string stdin_cmd = "printf 'Hello there\\nclear\\nHello there\\nexit\\nnot read\\n' | " +
                                example_chat_command() + " '" + path_ + "' 16 512 '" + db + "' > /dev/null";
  ASSERT_EQ(std::system(stdin_cmd.c_str()), 0);
  const auto all = read_rows(db);
  ASSERT_EQ(all.size(), prompts.size() + 2);
  EXPECT_EQ(all[3].reply, expected[0].text);
  EXPECT_EQ(all[4].reply, expected[0].text);  // after "clear": the same first answer

  // A model that cannot be loaded: non-zero exit, no rows.
  const std::string bad_cmd = example_chat_command() + " '" + dir_.file("none.gguf") + "' 16 512 '" +
                              dir_.file("bad.db") + "' hi 2> /dev/null";
  EXPECT_NE(std::system(bad_cmd.c_str()), 0);
}

// ---- function calling: rkllm_set_function_tools and role "tool", on the trained fixture whose real Qwen2.5
// template renders tools ----

const char* kHomeTools = R"([{"type": "function", "function": {"name": "set_light", "description": "Switch a light",
  "parameters": {"type": "object", "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
  "required": ["room", "on"]}}}])";

TEST(RkllmTools, ToolsAndResultsGoThroughTheModelsTemplateAsEdgellmRendersThem) {
  const std::string model = test::source_path("tests/models/qwen2-tiny");
  for (int keep_history : {1, 0}) {
    SCOPED_TRACE("keep_history " + std::to_string(keep_history));
    // edgellm's C API: the system prompt and tools, a user turn, the reply kept as text, a result, the answer.
    Reference ref(model);
    ASSERT_EQ(edgellm_session_set_system_prompt(ref.session(), "You control a home."), EDGELLM_OK);
    ASSERT_EQ(edgellm_session_set_tools(ref.session(), kHomeTools, /*read_calls=*/0), EDGELLM_OK);
    const std::string asked = ref.chat("Light the hall", 12);
    const int64_t first_prompt = ref.perf().prompt_tokens;
    ASSERT_EQ(edgellm_session_add_tool_result(ref.session(), nullptr, "set_light", "{\"ok\":true}"), EDGELLM_OK);
    const std::string answered = ref.chat(nullptr, 12);
    const int64_t second_prompt = ref.perf().prompt_tokens;

    Handle h;
    init(h, model);
    ASSERT_EQ(rkllm_set_function_tools(h.h, "You control a home.", kHomeTools, "tool_response"), 0)
        << rkllm_edgellm_last_error(h.h);
    Received a = run(h.h, "Light the hall", keep_history);
    ASSERT_TRUE(a.finished_once()) << a.error;
    EXPECT_EQ(a.text, asked);
    RKLLMInput results = prompt_input(R"([{"content": {"ok": true}, "name": "set_light"}])");
    results.role = "tool";
    RKLLMInferParam ip = infer_param(keep_history);
    Received b;
    ASSERT_EQ(rkllm_run(h.h, &results, &ip, &b), 0) << rkllm_edgellm_last_error(h.h);
    ASSERT_TRUE(b.finished_once()) << b.error;
    EXPECT_EQ(b.text, answered);
    // The tools are in the prompt (it is longer than without them), and the answer's prompt holds the round.
    EXPECT_GT(second_prompt, first_prompt);
    EXPECT_LT(b.perf.prefill_tokens, second_prompt);  // the round's prefix came from the KV cache
    Reference plain(model);
    ASSERT_EQ(edgellm_session_set_system_prompt(plain.session(), "You control a home."), EDGELLM_OK);
    plain.chat("Light the hall", 1);
    EXPECT_GT(first_prompt, plain.perf().prompt_tokens + 40);
  }
}

TEST(RkllmTools, ToolRoleNeedsToolsAndOneSequence) {
  Handle h;
  init(h, test::source_path("tests/models/qwen2-tiny"));
  RKLLMInput results = prompt_input("[\"22 degrees\"]");
  results.role = "tool";
  RKLLMInferParam ip = infer_param(1);
  Received r;
  EXPECT_EQ(rkllm_run(h.h, &results, &ip, &r), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("needs tools (rkllm_set_function_tools) first"),
            std::string::npos);
  EXPECT_EQ(rkllm_set_function_tools(h.h, nullptr, "not json", nullptr), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("not a JSON array"), std::string::npos);
  results.role = "robot";
  EXPECT_EQ(rkllm_run(h.h, &results, &ip, &r), -1);
  EXPECT_NE(std::string(rkllm_edgellm_last_error(h.h)).find("role 'robot' is not supported"), std::string::npos);
  EXPECT_EQ(r.n_finish + r.n_error, 0);
  // Removing the tools (NULL) is fine, and runs go on.
  EXPECT_EQ(rkllm_set_function_tools(h.h, nullptr, nullptr, nullptr), 0);
  EXPECT_TRUE(run(h.h, "Still fine", 0).finished_once());
}

INSTANTIATE_TEST_SUITE_P(Archs, RkllmPerArch, ::testing::Values(Arch::kQwen2, Arch::kQwen35),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

}  // namespace
}  // namespace edgellm
