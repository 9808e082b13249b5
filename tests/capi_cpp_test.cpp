// The C API (edgellm.h) from C++: the streaming protocol, concurrency (also built with
// -fsanitize=thread by scripts/test.sh), abort, async, bad input, LoRA selection, multi-turn KV
// reuse, history limits and prompt caches. tests/capi_test.c covers the same from C.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgellm/edgellm.h"
#include "format/safetensors_writer.h"
#include "security/encrypted_model.h"
#include "security/model_key.h"
#include "support/test_env.h"
#include "support/tiny_lora.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using test::TempDir;

struct ModelDeleter {
  void operator()(edgellm_model* m) const { edgellm_model_free(m); }
};
struct SessionDeleter {
  void operator()(edgellm_session* s) const { edgellm_session_free(s); }
};
using ModelPtr = std::unique_ptr<edgellm_model, ModelDeleter>;
using SessionPtr = std::unique_ptr<edgellm_session, SessionDeleter>;

ModelPtr load_model(const std::string& path) {
  edgellm_model* m = nullptr;
  edgellm_model_params mp = edgellm_model_default_params();
  mp.n_threads = 2;
  EXPECT_EQ(edgellm_model_load(path.c_str(), &mp, &m), EDGELLM_OK) << edgellm_last_error();
  return ModelPtr(m);
}

SessionPtr open_session(edgellm_model* m, int32_t n_ctx = 256) {
  edgellm_session* s = nullptr;
  edgellm_session_params sp = edgellm_session_default_params();
  sp.n_ctx = n_ctx;
  EXPECT_EQ(edgellm_session_create(m, &sp, &s), EDGELLM_OK) << edgellm_model_last_error(m);
  return SessionPtr(s);
}

edgellm_generate_params greedy(edgellm_model* m, int32_t max_new_tokens) {
  edgellm_generate_params gp = edgellm_generate_default_params(m);
  EXPECT_EQ(edgellm_sampling_preset("greedy", &gp.sampling), EDGELLM_OK);
  gp.max_new_tokens = max_new_tokens;
  gp.ignore_stop_tokens = 1;
  return gp;
}

// What a run's callback received.
struct Events {
  std::string text;  // TEXT pieces concatenated
  std::string final_text;
  int n_text = 0, n_finish = 0, n_error = 0, after_end = 0;
  int stop_after = 0;  // return 1 after this many TEXT events

  static int32_t callback(edgellm_event event, const char* text, size_t len, void* user_data) {
    auto* e = static_cast<Events*>(user_data);
    if (e->n_finish + e->n_error > 0) ++e->after_end;
    if (event == EDGELLM_EVENT_TEXT) {
      e->text.append(text, len);
      ++e->n_text;
      return e->stop_after > 0 && e->n_text >= e->stop_after ? 1 : 0;
    }
    e->final_text.assign(text, len);
    (event == EDGELLM_EVENT_FINISH ? e->n_finish : e->n_error)++;
    return 0;
  }
  bool finished_once() const { return n_finish == 1 && n_error == 0 && after_end == 0; }
  bool failed_once() const { return n_finish == 0 && n_error == 1 && after_end == 0; }
};

edgellm_perf perf_of(edgellm_session* s) {
  edgellm_perf p{};
  EXPECT_EQ(edgellm_session_get_perf(s, &p), EDGELLM_OK);
  return p;
}

class CApi : public ::testing::Test {
 protected:
  virtual Arch arch() const { return Arch::kQwen2; }
  void SetUp() override {
    path_ = test::write_tiny_gguf(dir_.path(), test::tiny_config(arch()), DType::kF16);
    model_ = load_model(path_);
    ASSERT_NE(model_, nullptr);
  }
  edgellm_model* model() { return model_.get(); }

  // The text a fresh session completes `prompt` with (greedy).
  std::string alone(const std::string& prompt, int32_t n) {
    auto s = open_session(model());
    const auto gp = greedy(model(), n);
    Events e;
    EXPECT_EQ(edgellm_session_complete(s.get(), prompt.c_str(), &gp, Events::callback, &e), EDGELLM_OK);
    EXPECT_TRUE(e.finished_once());
    return e.text;
  }

  TempDir dir_;
  std::string path_;
  ModelPtr model_;
};

// The tests of a session's cache (multi-turn reuse, prompt caches, parallel sessions) also on a hybrid model
// (Qwen3.5: linear-attention state beside the KV cache, restored from snapshots).
class CApiPerArch : public CApi, public ::testing::WithParamInterface<Arch> {
 protected:
  Arch arch() const override { return GetParam(); }
};

TEST_F(CApi, StreamedPiecesAddUpToTheFinishTextOnce) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 20);
  Events chat;
  ASSERT_EQ(edgellm_session_chat(s.get(), "Hello!", &gp, Events::callback, &chat), EDGELLM_OK);
  EXPECT_TRUE(chat.finished_once());
  EXPECT_EQ(chat.text, chat.final_text);
  EXPECT_GT(chat.n_text, 1);

  Events complete;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Once upon a time", &gp, Events::callback, &complete), EDGELLM_OK);
  EXPECT_TRUE(complete.finished_once());
  EXPECT_EQ(complete.text, complete.final_text);
  const edgellm_perf p = perf_of(s.get());
  EXPECT_EQ(p.decode_tokens, 20);
  EXPECT_STREQ(p.finish_reason, "length");
  EXPECT_GT(p.prompt_tokens, 0);

  // A stop string ends the run; the text up to it still adds up.
  const std::string cut = complete.text.substr(5, 3);
  auto with_stop = gp;
  const char* stops[] = {cut.c_str()};
  with_stop.stop_strings = stops;
  with_stop.n_stop_strings = 1;
  auto s2 = open_session(model());
  Events stopped;
  ASSERT_EQ(edgellm_session_complete(s2.get(), "Once upon a time", &with_stop, Events::callback, &stopped),
            EDGELLM_OK);
  EXPECT_TRUE(stopped.finished_once());
  EXPECT_EQ(stopped.text, stopped.final_text);
  EXPECT_EQ(stopped.text.find(cut), std::string::npos);
  EXPECT_STREQ(perf_of(s2.get()).finish_reason, "stop");
}

// Speculative decoding through the C API: the same text, and the perf record says what was verified. (The
// tiny random model repeats itself, so drafts from the context are accepted; the cases are in
// speculative_decoding_test.cpp.)
TEST_F(CApi, LookupGivesTheSameTextAndReportsItsDrafts) {
  const std::string plain = alone("Once upon a time", 60);
  auto s = open_session(model());
  auto gp = greedy(model(), 60);
  gp.lookup = 8;
  Events e;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Once upon a time", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_TRUE(e.finished_once());
  EXPECT_EQ(e.text, plain);
  const edgellm_perf p = perf_of(s.get());
  EXPECT_EQ(p.decode_tokens, 60);
  EXPECT_GT(p.verify_steps, 0);
  EXPECT_GE(p.draft_tokens, p.verify_steps);
  EXPECT_LE(p.accepted_tokens, p.draft_tokens);
  gp.lookup = 33;
  Events bad;
  EXPECT_EQ(edgellm_session_complete(s.get(), "Once upon a time", &gp, Events::callback, &bad),
            EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(bad.failed_once());
  EXPECT_NE(bad.final_text.find("lookup"), std::string::npos) << bad.final_text;
}

TEST_F(CApi, CallbackStopsTheRunWithFinish) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 50);
  Events e;
  e.stop_after = 3;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Count", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_EQ(e.n_text, 3);
  EXPECT_TRUE(e.finished_once());
  EXPECT_EQ(e.text, e.final_text);
  EXPECT_STREQ(perf_of(s.get()).finish_reason, "callback");
}

TEST_F(CApi, ErrorInsideARunLeavesTheSessionUsable) {
  auto s = open_session(model(), 48);
  const auto gp = greedy(model(), 8);
  const std::string too_long(3000, 'z');
  Events e;
  EXPECT_EQ(edgellm_session_chat(s.get(), too_long.c_str(), &gp, Events::callback, &e), EDGELLM_ERROR_CONTEXT_FULL);
  EXPECT_TRUE(e.failed_once());
  EXPECT_EQ(e.final_text, edgellm_session_last_error(s.get()));
  EXPECT_NE(e.final_text.find("48"), std::string::npos) << e.final_text;  // names the context size
  EXPECT_EQ(edgellm_session_history_size(s.get()), 0);

  Events ok;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &ok), EDGELLM_OK);
  EXPECT_TRUE(ok.finished_once());
  EXPECT_EQ(ok.text, alone("Hello", 8));
}

// Two sessions on one model, generating at the same time, produce what each produces alone. Runs
// under TSan too (scripts/test.sh), which checks the shared model and its thread pool for races.
TEST_P(CApiPerArch, ParallelSessionsGiveTheSameTokensAsAlone) {
  const std::vector<std::string> prompts = {"The first prompt", "Another, rather different one", "Third"};
  std::vector<std::string> expected;
  for (const auto& p : prompts) expected.push_back(alone(p, 24));

  constexpr int kRounds = 2;
  std::vector<std::string> got(prompts.size() * kRounds);
  std::vector<edgellm_status> status(got.size(), EDGELLM_ERROR_INTERNAL);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto s = open_session(model());
      const auto gp = greedy(model(), 24);
      Events e;
      status[i] = edgellm_session_complete(s.get(), prompts[i % prompts.size()].c_str(), &gp, Events::callback, &e);
      got[i] = e.text;
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(status[i], EDGELLM_OK) << "thread " << i;
    EXPECT_EQ(got[i], expected[i % prompts.size()]) << "thread " << i;
  }
}

// Parallel chats with history on separate sessions, and async runs, all on one model.
TEST_F(CApi, ParallelChatsAndAsyncRunsOnOneModel) {
  auto reference = open_session(model());
  const auto gp = greedy(model(), 10);
  std::vector<std::string> expected;
  for (const char* m : {"Hi", "How are you?"}) {
    Events e;
    ASSERT_EQ(edgellm_session_chat(reference.get(), m, &gp, Events::callback, &e), EDGELLM_OK);
    expected.push_back(e.text);
  }
  std::vector<SessionPtr> sessions;
  for (int i = 0; i < 3; ++i) sessions.push_back(open_session(model()));
  for (const int turn : {0, 1}) {
    std::vector<Events> events(sessions.size());
    const char* message = turn == 0 ? "Hi" : "How are you?";
    for (size_t i = 0; i < sessions.size(); ++i) {
      ASSERT_EQ(edgellm_session_chat_async(sessions[i].get(), message, &gp, Events::callback, &events[i]),
                EDGELLM_OK);
    }
    for (size_t i = 0; i < sessions.size(); ++i) {
      EXPECT_EQ(edgellm_session_wait(sessions[i].get()), EDGELLM_OK);
      EXPECT_TRUE(events[i].finished_once());
      EXPECT_EQ(events[i].text, expected[static_cast<size_t>(turn)]) << "session " << i << " turn " << turn;
    }
  }
}

// The callback holds the generating thread at its first TEXT until another thread has aborted, so
// "within one step" can be checked exactly.
TEST_F(CApi, AbortFromAnotherThreadStopsWithinOneStep) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 200);
  Events first;
  first.stop_after = 1;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Abort me", &gp, Events::callback, &first), EDGELLM_OK);
  const int64_t tokens_at_first_text = perf_of(s.get()).decode_tokens;

  struct State {
    edgellm_session* session = nullptr;
    std::mutex mu;
    std::condition_variable cv;
    bool first_text = false, aborted = false;  // guarded by mu
    int texts_after_abort = 0, n_finish = 0, n_error = 0;
  } st;
  st.session = s.get();
  auto callback = [](edgellm_event event, const char*, size_t, void* user_data) -> int32_t {
    auto* st = static_cast<State*>(user_data);
    if (event == EDGELLM_EVENT_FINISH) ++st->n_finish;
    if (event == EDGELLM_EVENT_ERROR) ++st->n_error;
    if (event != EDGELLM_EVENT_TEXT) return 0;
    std::unique_lock<std::mutex> lock(st->mu);
    if (st->aborted) {
      ++st->texts_after_abort;
      return 0;
    }
    st->first_text = true;
    st->cv.notify_all();
    st->cv.wait(lock, [&] { return st->aborted; });
    return 0;
  };
  std::thread aborter([&] {
    std::unique_lock<std::mutex> lock(st.mu);
    st.cv.wait(lock, [&] { return st.first_text; });
    EXPECT_EQ(edgellm_session_is_running(st.session), 1);
    edgellm_session_abort(st.session);
    st.aborted = true;
    st.cv.notify_all();
  });
  EXPECT_EQ(edgellm_session_complete(s.get(), "Abort me", &gp, callback, &st), EDGELLM_ERROR_ABORTED);
  aborter.join();
  EXPECT_EQ(st.n_error, 1);
  EXPECT_EQ(st.n_finish, 0);
  EXPECT_LE(st.texts_after_abort, 1);  // only the flush of bytes decoded before the abort
  const edgellm_perf p = perf_of(s.get());
  EXPECT_LE(p.decode_tokens, tokens_at_first_text + 1);
  EXPECT_STREQ(p.finish_reason, "aborted");
  EXPECT_EQ(edgellm_session_is_running(s.get()), 0);

  Events after;
  const auto gp8 = greedy(model(), 8);
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp8, Events::callback, &after), EDGELLM_OK);
  EXPECT_EQ(after.text, alone("Hello", 8));
}

TEST_F(CApi, AbortWhileIdleDoesNotStopTheNextRun) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 8);
  edgellm_session_abort(s.get());
  Events e;
  EXPECT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_TRUE(e.finished_once());
}

TEST_F(CApi, AsyncRunWaitAndBusy) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 16);
  // Hold the async run inside its callback so the session is certainly busy.
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool entered = false, released = false;  // guarded by mu
    Events events;
  } gate;
  auto held = [](edgellm_event event, const char* text, size_t len, void* user_data) -> int32_t {
    auto* g = static_cast<Gate*>(user_data);
    {
      std::unique_lock<std::mutex> lock(g->mu);
      g->entered = true;
      g->cv.notify_all();
      g->cv.wait(lock, [&] { return g->released; });
    }
    return Events::callback(event, text, len, &g->events);
  };
  ASSERT_EQ(edgellm_session_complete_async(s.get(), "Hello", &gp, held, &gate), EDGELLM_OK);
  {
    std::unique_lock<std::mutex> lock(gate.mu);
    gate.cv.wait(lock, [&] { return gate.entered; });
  }
  EXPECT_EQ(edgellm_session_is_running(s.get()), 1);
  Events other;
  EXPECT_EQ(edgellm_session_complete_async(s.get(), "x", &gp, Events::callback, &other), EDGELLM_ERROR_BUSY);
  EXPECT_EQ(edgellm_session_chat(s.get(), "x", &gp, Events::callback, &other), EDGELLM_ERROR_BUSY);
  EXPECT_EQ(edgellm_session_reset(s.get()), EDGELLM_ERROR_BUSY);
  EXPECT_EQ(other.n_text + other.n_finish + other.n_error, 0);
  {
    std::lock_guard<std::mutex> lock(gate.mu);
    gate.released = true;
  }
  gate.cv.notify_all();
  EXPECT_EQ(edgellm_session_wait(s.get()), EDGELLM_OK);
  EXPECT_TRUE(gate.events.finished_once());
  EXPECT_EQ(gate.events.text, alone("Hello", 16));
  EXPECT_EQ(edgellm_session_is_running(s.get()), 0);
  EXPECT_EQ(edgellm_session_wait(s.get()), EDGELLM_OK);

  // Freeing a session waits for its async run.
  Events last;
  ASSERT_EQ(edgellm_session_chat_async(s.get(), "Bye", &gp, Events::callback, &last), EDGELLM_OK);
  s.reset();
  EXPECT_TRUE(last.finished_once());
}

TEST_F(CApi, BadInputGivesCodesAndMessagesAndTheSessionStaysUsable) {
  auto s = open_session(model(), 64);
  const auto gp = greedy(model(), 4);
  edgellm_model* none = nullptr;
  EXPECT_EQ(edgellm_model_load(nullptr, nullptr, &none), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(edgellm_model_load("/nonexistent.gguf", nullptr, &none), EDGELLM_ERROR_IO);
  EXPECT_NE(std::string(edgellm_last_error()).find("/nonexistent.gguf"), std::string::npos);
  EXPECT_EQ(none, nullptr);

  // Not a model at all, and a truncated one.
  test::write_file(dir_.file("garbage.gguf"), "this is not a gguf file");
  EXPECT_NE(edgellm_model_load(dir_.file("garbage.gguf").c_str(), nullptr, &none), EDGELLM_OK);
  EXPECT_NE(std::string(edgellm_last_error()).find("garbage.gguf"), std::string::npos) << edgellm_last_error();
  const std::string bytes = test::read_file(path_);
  test::write_file(dir_.file("cut.gguf"), bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(edgellm_model_load(dir_.file("cut.gguf").c_str(), nullptr, &none), EDGELLM_OK);
  EXPECT_EQ(none, nullptr);

  edgellm_model_params mp = edgellm_model_default_params();
  mp.chat_template = "no-such-template";
  EXPECT_NE(edgellm_model_load(path_.c_str(), &mp, &none), EDGELLM_OK);
  EXPECT_NE(std::string(edgellm_last_error()).find("no-such-template"), std::string::npos) << edgellm_last_error();
  edgellm_sampling_params sp{};
  EXPECT_EQ(edgellm_sampling_preset("warp-speed", &sp), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgellm_last_error()).find("warp-speed"), std::string::npos);

  // Invalid UTF-8 in chat and completion.
  for (const char* bad : {"\xff\xfe", "ok \xc3\x28", "\xe2\x82", "\xed\xa0\x80 surrogate"}) {
    Events e;
    EXPECT_EQ(edgellm_session_chat(s.get(), bad, &gp, Events::callback, &e), EDGELLM_ERROR_INVALID_ARGUMENT) << bad;
    EXPECT_TRUE(e.failed_once());
    EXPECT_NE(e.final_text.find("UTF-8"), std::string::npos) << e.final_text;
    Events c;
    EXPECT_EQ(edgellm_session_complete(s.get(), bad, &gp, Events::callback, &c), EDGELLM_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(c.failed_once());
  }
  EXPECT_EQ(edgellm_session_history_size(s.get()), 0);

  // Sampling values out of range.
  auto bad = gp;
  bad.sampling.temperature = std::numeric_limits<float>::quiet_NaN();
  Events e;
  EXPECT_EQ(edgellm_session_complete(s.get(), "Hello", &bad, Events::callback, &e), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(e.failed_once());

  // Token ids out of range are refused before they reach the forward pass.
  const int32_t ids[] = {1, 100000};
  EXPECT_EQ(edgellm_session_prefill(s.get(), ids, 2), EDGELLM_ERROR_INVALID_ARGUMENT);
  const int32_t negative[] = {-5};
  EXPECT_EQ(edgellm_session_prefill(s.get(), negative, 1), EDGELLM_ERROR_INVALID_ARGUMENT);

  // Buffers too small report the size needed.
  size_t n = 0;
  EXPECT_EQ(edgellm_tokenize(model(), "hello world", 11, 0, nullptr, 0, &n), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_GT(n, 0u);
  std::vector<int32_t> tokens(n);
  EXPECT_EQ(edgellm_tokenize(model(), "hello world", 11, 0, tokens.data(), tokens.size(), &n), EDGELLM_OK);
  char small[2];
  size_t n_bytes = 0;
  EXPECT_EQ(edgellm_detokenize(model(), tokens.data(), tokens.size(), small, sizeof small, &n_bytes),
            EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(n_bytes, 11u);

  Events ok;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &ok), EDGELLM_OK);
  EXPECT_EQ(ok.text, alone("Hello", 4));
}

TEST_F(CApi, EncryptedModelsLoadWithTheirKeyFile) {
  const ModelKey key = ModelKey::generate();
  test::write_file(dir_.file("model.key"), format_model_key(key));
  ASSERT_TRUE(encrypt_model_file(path_, dir_.file("model.enc"), key).ok());
  edgellm_model* m = nullptr;
  edgellm_model_params mp = edgellm_model_default_params();
  EXPECT_EQ(mp.key_file, nullptr);
  EXPECT_NE(edgellm_model_load(dir_.file("model.enc").c_str(), &mp, &m), EDGELLM_OK);
  EXPECT_NE(std::string(edgellm_last_error()).find("an encrypted model file: give its key"), std::string::npos)
      << edgellm_last_error();
  const std::string key_file = dir_.file("model.key");
  mp.key_file = key_file.c_str();
  mp.n_threads = 2;
  ASSERT_EQ(edgellm_model_load(dir_.file("model.enc").c_str(), &mp, &m), EDGELLM_OK) << edgellm_last_error();
  ModelPtr encrypted(m);
  auto s = open_session(encrypted.get());
  const auto gp = greedy(encrypted.get(), 12);
  Events e;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello there", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_EQ(e.text, alone("Hello there", 12));
}

TEST_F(CApi, LoraSelectionAndBadAdapters) {
  const ModelConfig c = test::tiny_config(Arch::kQwen2);
  const std::string good = test::write_q_proj_adapter(dir_.file("good"), c, c.n_embd);
  const std::string misfit = test::write_q_proj_adapter(dir_.file("misfit"), c, c.n_embd / 2);
  ASSERT_EQ(edgellm_model_load_lora(model(), good.c_str(), "doctor"), EDGELLM_OK) << edgellm_model_last_error(model());
  EXPECT_NE(edgellm_model_load_lora(model(), misfit.c_str(), "misfit"), EDGELLM_OK);
  EXPECT_NE(std::string(edgellm_model_last_error(model())).find("q_proj"), std::string::npos)
      << edgellm_model_last_error(model());
  EXPECT_NE(edgellm_model_load_lora(model(), dir_.file("missing").c_str(), "missing"), EDGELLM_OK);
  EXPECT_EQ(edgellm_model_load_lora(model(), nullptr, "x"), EDGELLM_ERROR_INVALID_ARGUMENT);

  auto s = open_session(model());
  auto gp = greedy(model(), 16);
  const std::string base = alone("Hello", 16);
  gp.lora_name = "doctor";
  Events with;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &with), EDGELLM_OK);
  EXPECT_NE(with.text, base);  // the adapter changes the answer

  gp.lora_name = "nobody";
  Events unknown;
  EXPECT_NE(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &unknown), EDGELLM_OK);
  EXPECT_TRUE(unknown.failed_once());
  EXPECT_NE(unknown.final_text.find("nobody"), std::string::npos) << unknown.final_text;

  gp.lora_name = "";  // back to the base model: the cache of the adapted run must not leak in
  Events without;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &without), EDGELLM_OK);
  EXPECT_EQ(without.text, base);
}

TEST_P(CApiPerArch, ThreeRoundChatEqualsOnePrefillOfTheTranscript) {
  const char* turns[] = {"Hi there", "What is your name?", "Tell me more."};
  const auto gp = greedy(model(), 12);
  auto s = open_session(model(), 512);
  ASSERT_EQ(edgellm_session_set_system_prompt(s.get(), "Be brief."), EDGELLM_OK);
  std::vector<std::string> replies;
  std::vector<edgellm_perf> perf;
  for (const char* t : turns) {
    Events e;
    ASSERT_EQ(edgellm_session_chat(s.get(), t, &gp, Events::callback, &e), EDGELLM_OK);
    replies.push_back(e.text);
    perf.push_back(perf_of(s.get()));
  }
  EXPECT_GE(perf[1].reused_tokens, perf[0].prompt_tokens);
  EXPECT_GE(perf[2].reused_tokens, perf[1].prompt_tokens);

  auto whole = open_session(model(), 512);
  edgellm_session_set_system_prompt(whole.get(), "Be brief.");
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(edgellm_session_add_message(whole.get(), "user", turns[i]), EDGELLM_OK);
    ASSERT_EQ(edgellm_session_add_message(whole.get(), "assistant", replies[static_cast<size_t>(i)].c_str()),
              EDGELLM_OK);
  }
  Events third;
  ASSERT_EQ(edgellm_session_chat(whole.get(), turns[2], &gp, Events::callback, &third), EDGELLM_OK);
  EXPECT_EQ(third.text, replies[2]);
  const edgellm_perf p = perf_of(whole.get());
  EXPECT_EQ(p.reused_tokens, 0);
  EXPECT_EQ(p.prompt_tokens, perf[2].prompt_tokens);
}

// One-token answers are never cached (generation stops before feeding them), so turn 2 must prefill
// exactly what follows turn 1's prompt.
TEST_P(CApiPerArch, TurnTwoPrefillsOnlyTheNewTokens) {
  const auto gp = greedy(model(), 1);
  auto s = open_session(model(), 512);
  Events e1, e2;
  ASSERT_EQ(edgellm_session_chat(s.get(), "First question", &gp, Events::callback, &e1), EDGELLM_OK);
  const edgellm_perf p1 = perf_of(s.get());
  EXPECT_EQ(p1.prefill_tokens, p1.prompt_tokens);
  ASSERT_EQ(edgellm_session_chat(s.get(), "Second question", &gp, Events::callback, &e2), EDGELLM_OK);
  const edgellm_perf p2 = perf_of(s.get());
  EXPECT_EQ(p2.reused_tokens, p1.prompt_tokens);
  EXPECT_EQ(p2.prefill_tokens, p2.prompt_tokens - p1.prompt_tokens);
}

// With a trained model the answer text re-tokenizes to the generated tokens, so turn 2 reuses turn 1's
// prompt and its cached answer tokens.
TEST(CApiTrained, TurnTwoReusesTheCachedAnswer) {
  const std::string path = test::shared_data_path("data/stories260K-hf");
  ASSERT_FALSE(path.empty()) << "data/stories260K-hf missing in the reference data (tests/data/reference, unpacked by CMake)";
  auto model = load_model(path);
  ASSERT_NE(model, nullptr);
  auto gp = greedy(model.get(), 16);
  gp.ignore_stop_tokens = 0;
  auto s = open_session(model.get(), 512);
  Events e1, e2;
  ASSERT_EQ(edgellm_session_chat(s.get(), "Once upon a time", &gp, Events::callback, &e1), EDGELLM_OK);
  const edgellm_perf p1 = perf_of(s.get());
  const int64_t cached_after_1 = edgellm_session_n_cached(s.get());
  ASSERT_EQ(edgellm_session_chat(s.get(), "Then what happened?", &gp, Events::callback, &e2), EDGELLM_OK);
  const edgellm_perf p2 = perf_of(s.get());
  EXPECT_GT(cached_after_1, p1.prompt_tokens);
  EXPECT_EQ(p2.reused_tokens, cached_after_1) << "answer 1: '" << e1.text << "'";
  EXPECT_EQ(p2.prefill_tokens, p2.prompt_tokens - cached_after_1);
}

TEST_F(CApi, HistoryLimitsDropWholeRounds) {
  const auto gp = greedy(model(), 4);
  auto s = open_session(model(), 512);
  edgellm_session_set_system_prompt(s.get(), "System.");
  ASSERT_EQ(edgellm_session_set_history_limit(s.get(), 2, 0), EDGELLM_OK);
  for (const char* t : {"one", "two", "three", "four"}) {
    Events e;
    ASSERT_EQ(edgellm_session_chat(s.get(), t, &gp, Events::callback, &e), EDGELLM_OK);
  }
  ASSERT_EQ(edgellm_session_history_size(s.get()), 4);
  const char* expected_roles[] = {"user", "assistant", "user", "assistant"};
  for (int i = 0; i < 4; ++i) {
    const char* role = nullptr;
    const char* content = nullptr;
    ASSERT_EQ(edgellm_session_history_message(s.get(), i, &role, &content), EDGELLM_OK);
    EXPECT_STREQ(role, expected_roles[i]);
    if (i == 0) {
      EXPECT_STREQ(content, "three");
    }
  }
  EXPECT_GT(perf_of(s.get()).reused_tokens, 0);  // the system prompt stays cached

  // A token budget: rounds go, oldest first, until the conversation fits.
  auto budget = open_session(model(), 512);
  edgellm_session_set_system_prompt(budget.get(), "System.");
  std::vector<int64_t> prompt_tokens;
  for (const char* t : {"alpha alpha alpha", "beta beta beta", "gamma gamma gamma"}) {
    Events e;
    ASSERT_EQ(edgellm_session_chat(budget.get(), t, &gp, Events::callback, &e), EDGELLM_OK);
    prompt_tokens.push_back(perf_of(budget.get()).prompt_tokens);
  }
  const int64_t limit = prompt_tokens[1] + 2;  // room for about two rounds
  ASSERT_EQ(edgellm_session_set_history_limit(budget.get(), 0, static_cast<int32_t>(limit)), EDGELLM_OK);
  Events e;
  ASSERT_EQ(edgellm_session_chat(budget.get(), "delta delta delta", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_LE(perf_of(budget.get()).prompt_tokens, limit);
  const int32_t n = edgellm_session_history_size(budget.get());
  ASSERT_GE(n, 2);
  EXPECT_EQ(n % 2, 0);
  const char* role = nullptr;
  const char* content = nullptr;
  ASSERT_EQ(edgellm_session_history_message(budget.get(), 0, &role, &content), EDGELLM_OK);
  EXPECT_STREQ(role, "user");
  EXPECT_STRNE(content, "alpha alpha alpha");
}

// A cache of a prefix (a system prompt, a document) loaded into a new session: a prompt that continues it
// prefills only the new tokens and gives the logits of a fresh prefill of the whole prompt.
TEST_P(CApiPerArch, PromptCacheOfAPrefixIsReusedWhole) {
  const std::string cache = dir_.file("prefix.kv");
  std::vector<int32_t> tokens = {3, 99, 250, 17, 400, 5, 77, 12, 310, 44, 8, 150, 260, 33, 71, 90, 2, 11, 480, 6};
  auto a = open_session(model());
  ASSERT_EQ(edgellm_session_prefill(a.get(), tokens.data(), tokens.size()), EDGELLM_OK);
  ASSERT_EQ(edgellm_session_save_state(a.get(), cache.c_str()), EDGELLM_OK);

  const std::vector<int32_t> more = {21, 305, 9, 140, 66};
  tokens.insert(tokens.end(), more.begin(), more.end());
  auto b = open_session(model());
  ASSERT_EQ(edgellm_session_load_state(b.get(), cache.c_str()), EDGELLM_OK);
  EXPECT_EQ(edgellm_session_n_cached(b.get()), 20);
  ASSERT_EQ(edgellm_session_prefill(b.get(), tokens.data(), tokens.size()), EDGELLM_OK);
  const edgellm_perf p = perf_of(b.get());
  EXPECT_EQ(p.reused_tokens, 20);
  EXPECT_EQ(p.prefill_tokens, 5);

  auto fresh = open_session(model());
  ASSERT_EQ(edgellm_session_prefill(fresh.get(), tokens.data(), tokens.size()), EDGELLM_OK);
  const float* got = nullptr;
  const float* want = nullptr;
  int32_t n_got = 0, n_want = 0;
  ASSERT_EQ(edgellm_session_get_logits(b.get(), &got, &n_got), EDGELLM_OK);
  ASSERT_EQ(edgellm_session_get_logits(fresh.get(), &want, &n_want), EDGELLM_OK);
  ASSERT_EQ(n_got, n_want);
  double max_diff = 0, max_ref = 0;
  for (int32_t i = 0; i < n_got; ++i) {
    max_diff = std::max(max_diff, std::fabs(static_cast<double>(got[i]) - want[i]));
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(want[i])));
  }
  // 20 + 5 tokens in two forward calls against 25 in one (and the f16 cache's rows): rounding only.
  EXPECT_LE(max_diff, 1e-3 * max_ref);
}

TEST_P(CApiPerArch, PromptCacheSaveLoadGivesTheSameContinuation) {
  const std::string cache = dir_.file("system.kv");
  const auto gp = greedy(model(), 12);
  auto s = open_session(model());
  ASSERT_EQ(edgellm_session_set_system_prompt(s.get(), "You are a careful assistant."), EDGELLM_OK);
  Events first;
  ASSERT_EQ(edgellm_session_chat(s.get(), "Question one", &gp, Events::callback, &first), EDGELLM_OK);
  ASSERT_EQ(edgellm_session_save_state(s.get(), cache.c_str()), EDGELLM_OK);
  Events second;
  ASSERT_EQ(edgellm_session_chat(s.get(), "Question two", &gp, Events::callback, &second), EDGELLM_OK);

  // A new session: load the cache, restore the conversation, ask the same second question.
  auto t = open_session(model());
  ASSERT_EQ(edgellm_session_load_state(t.get(), cache.c_str()), EDGELLM_OK);
  const int32_t loaded = edgellm_session_n_cached(t.get());
  EXPECT_GT(loaded, 0);
  edgellm_session_set_system_prompt(t.get(), "You are a careful assistant.");
  edgellm_session_add_message(t.get(), "user", "Question one");
  edgellm_session_add_message(t.get(), "assistant", first.text.c_str());
  Events again;
  ASSERT_EQ(edgellm_session_chat(t.get(), "Question two", &gp, Events::callback, &again), EDGELLM_OK);
  EXPECT_EQ(again.text, second.text);
  // (A hybrid model goes back to the snapshot after turn one's prompt, which the file keeps: the random
  // model's answer does not re-tokenize to the generated tokens.)
  EXPECT_GT(perf_of(t.get()).reused_tokens, 0);

  // Another model's cache, a corrupted and a truncated file: rejected, the session is untouched.
  TempDir other_dir;
  auto other = load_model(test::write_tiny_gguf(other_dir.path(), test::tiny_config(Arch::kQwen2), DType::kF16, 99));
  auto o = open_session(other.get());
  EXPECT_EQ(edgellm_session_load_state(o.get(), cache.c_str()), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgellm_session_last_error(o.get())).find("another model"), std::string::npos)
      << edgellm_session_last_error(o.get());
  EXPECT_EQ(edgellm_session_n_cached(o.get()), 0);

  std::string bytes = test::read_file(cache);
  test::write_file(dir_.file("cut.kv"), bytes.substr(0, bytes.size() - 100));
  std::string flipped = bytes;
  flipped[3] ^= 0x55;
  test::write_file(dir_.file("magic.kv"), flipped);
  std::string trailing = bytes + "junk";
  test::write_file(dir_.file("trailing.kv"), trailing);
  std::string bad_token = bytes;
  // The first token id sits after the 96-byte header; make it far out of the vocabulary.
  bad_token[96 + 3] = 0x40;
  test::write_file(dir_.file("token.kv"), bad_token);
  for (const char* name : {"cut.kv", "magic.kv", "trailing.kv", "token.kv"}) {
    const int32_t before = edgellm_session_n_cached(t.get());
    EXPECT_EQ(edgellm_session_load_state(t.get(), dir_.file(name).c_str()), EDGELLM_ERROR_FORMAT) << name;
    EXPECT_NE(std::string(edgellm_session_last_error(t.get())).find(name), std::string::npos)
        << edgellm_session_last_error(t.get());
    EXPECT_EQ(edgellm_session_n_cached(t.get()), before) << name;
  }
  EXPECT_EQ(edgellm_session_load_state(t.get(), dir_.file("absent.kv").c_str()), EDGELLM_ERROR_IO);
  Events still;
  ASSERT_EQ(edgellm_session_complete(t.get(), "Hello", &gp, Events::callback, &still), EDGELLM_OK);
  EXPECT_EQ(still.text, alone("Hello", 12));
}

TEST_F(CApi, LogitsAndHiddenStateAfterAPrefill) {
  auto s = open_session(model());
  const auto gp = greedy(model(), 0);
  Events e;
  ASSERT_EQ(edgellm_session_complete(s.get(), "Hello", &gp, Events::callback, &e), EDGELLM_OK);
  EXPECT_TRUE(e.finished_once());
  EXPECT_EQ(e.text, "");
  edgellm_model_info info{};
  ASSERT_EQ(edgellm_model_get_info(model(), &info), EDGELLM_OK);
  const float* logits = nullptr;
  int32_t n_vocab = 0;
  ASSERT_EQ(edgellm_session_get_logits(s.get(), &logits, &n_vocab), EDGELLM_OK);
  EXPECT_EQ(n_vocab, info.n_vocab);
  const float* hidden = nullptr;
  int32_t n_embd = 0;
  ASSERT_EQ(edgellm_session_get_hidden(s.get(), &hidden, &n_embd), EDGELLM_OK);
  EXPECT_EQ(n_embd, info.n_embd);
  for (int32_t i = 0; i < n_vocab; ++i) ASSERT_TRUE(std::isfinite(logits[i])) << i;
}

INSTANTIATE_TEST_SUITE_P(Archs, CApiPerArch, ::testing::Values(Arch::kQwen2, Arch::kQwen35),
                         [](const auto& info) { return std::string(arch_name(info.param)); });

}  // namespace
}  // namespace edgellm
