// The serving engine through the C API (edgellm_engine_*): chat, completion and token requests stream
// TEXT events with their request id, token and step, then one FINISH with figures; their answers equal
// a session's; bad requests, a full queue, cancellation and shutdown behave as edgellm.h says.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "edgellm/edgellm.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

using namespace std::chrono_literals;

struct Outcome {
  std::string text;             // TEXT pieces
  std::vector<int32_t> tokens;  // TEXT token ids >= 0
  std::vector<uint64_t> steps;
  int n_finish = 0, n_error = 0, events_after_end = 0;
  std::string final_text, finish_reason;
  edgellm_request_stats stats{};
  uint64_t id_seen = 0;
  bool id_mismatch = false;
};

// Collects events per request (keyed by the user_data pointer of each submit).
struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::map<int, Outcome> by_key;
  int cancel_after = 0;  // return non-zero on the TEXT event with this many tokens (0: never)

  struct Key {
    Events* events;
    int key;
  };
  static int32_t callback(const edgellm_request_event* e, void* user_data) {
    auto* k = static_cast<Key*>(user_data);
    std::lock_guard<std::mutex> lock(k->events->mu);
    Outcome& o = k->events->by_key[k->key];
    if (o.n_finish + o.n_error > 0) ++o.events_after_end;
    if (o.id_seen != 0 && o.id_seen != e->request_id) o.id_mismatch = true;
    o.id_seen = e->request_id;
    int32_t answer = 0;
    switch (e->type) {
      case EDGELLM_EVENT_TEXT:
        o.text.append(e->text, e->text_len);
        if (e->token >= 0) o.tokens.push_back(e->token);
        o.steps.push_back(e->step);
        if (k->events->cancel_after > 0 && static_cast<int>(o.tokens.size()) == k->events->cancel_after) answer = 1;
        break;
      case EDGELLM_EVENT_FINISH:
        ++o.n_finish;
        o.final_text.assign(e->text, e->text_len);
        o.stats = *e->stats;
        o.finish_reason = e->stats->finish_reason;
        break;
      case EDGELLM_EVENT_ERROR:
        ++o.n_error;
        o.final_text.assign(e->text, e->text_len);
        o.finish_reason = e->stats->finish_reason;
        break;
      case EDGELLM_EVENT_TOOL_CALL:  // engine requests carry no tools
        ADD_FAILURE() << "a tool call event from the engine";
        break;
    }
    k->events->cv.notify_all();
    return answer;
  }
  bool wait(int key) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, 60s, [&] { return by_key[key].n_finish + by_key[key].n_error > 0; });
  }
  Outcome get(int key) {
    std::lock_guard<std::mutex> lock(mu);
    return by_key[key];
  }
};

class CApiEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::write_tiny_gguf(dir_.path(), test::tiny_config(Arch::kQwen2), DType::kF16);
    edgellm_model_params mp = edgellm_model_default_params();
    mp.n_threads = 2;
    ASSERT_EQ(edgellm_model_load(path.c_str(), &mp, &model_), EDGELLM_OK) << edgellm_last_error();
  }
  void TearDown() override { edgellm_model_free(model_); }

  edgellm_generate_params greedy(int32_t n) const {
    edgellm_generate_params gp = edgellm_generate_default_params(model_);
    edgellm_sampling_preset("greedy", &gp.sampling);
    gp.max_new_tokens = n;
    gp.ignore_stop_tokens = 1;
    return gp;
  }
  // The session's answer, for reference.
  std::string session_chat(const char* message, int32_t n) {
    edgellm_session* s = nullptr;
    edgellm_session_params sp = edgellm_session_default_params();
    sp.n_ctx = 256;
    EXPECT_EQ(edgellm_session_create(model_, &sp, &s), EDGELLM_OK);
    edgellm_generate_params gp = greedy(n);
    std::string text;
    EXPECT_EQ(edgellm_session_chat(s, message, &gp, collect, &text), EDGELLM_OK);
    edgellm_session_free(s);
    return text;
  }
  static int32_t collect(edgellm_event event, const char* text, size_t len, void* user_data) {
    if (event == EDGELLM_EVENT_TEXT) static_cast<std::string*>(user_data)->append(text, len);
    return 0;
  }

  test::TempDir dir_;
  edgellm_model* model_ = nullptr;
};

TEST_F(CApiEngine, ChatPromptAndTokenRequestsStreamAndFinishOnce) {
  edgellm_engine_params ep = edgellm_engine_default_params();
  ep.n_ctx = 256;
  edgellm_engine* engine = nullptr;
  ASSERT_EQ(edgellm_engine_create(model_, &ep, &engine), EDGELLM_OK) << edgellm_model_last_error(model_);
  Events events;
  std::vector<Events::Key> keys = {{&events, 0}, {&events, 1}, {&events, 2}, {&events, 3}};

  const edgellm_chat_message messages[] = {{"user", "Hello there"}};
  edgellm_request chat{};
  chat.messages = messages;
  chat.n_messages = 1;
  chat.enable_thinking = -1;
  chat.params = greedy(10);
  uint64_t ids[3] = {0, 0, 0};
  ASSERT_EQ(edgellm_engine_submit(engine, &chat, Events::callback, &keys[0], &ids[0]), EDGELLM_OK)
      << edgellm_engine_last_error(engine);
  edgellm_request completion{};
  completion.prompt = "Once upon a time";
  completion.params = greedy(10);
  ASSERT_EQ(edgellm_engine_submit(engine, &completion, Events::callback, &keys[1], &ids[1]), EDGELLM_OK);
  const int32_t token_ids[] = {5, 17, 300, 42};
  edgellm_request tokens{};
  tokens.tokens = token_ids;
  tokens.n_tokens = 4;
  tokens.params = greedy(10);
  ASSERT_EQ(edgellm_engine_submit(engine, &tokens, Events::callback, &keys[2], &ids[2]), EDGELLM_OK);

  for (int k = 0; k < 3; ++k) {
    ASSERT_TRUE(events.wait(k)) << k;
    const Outcome o = events.get(k);
    EXPECT_EQ(o.n_finish, 1) << k;
    EXPECT_EQ(o.n_error, 0) << k;
    EXPECT_EQ(o.events_after_end, 0) << k;
    EXPECT_FALSE(o.id_mismatch) << k;
    EXPECT_EQ(o.id_seen, ids[k]) << k;
    EXPECT_EQ(o.tokens.size(), 10u) << k;
    EXPECT_EQ(o.final_text, o.text) << k;
    EXPECT_EQ(o.finish_reason, "length") << k;
    EXPECT_EQ(o.stats.generated_tokens, 10) << k;
    EXPECT_TRUE(std::is_sorted(o.steps.begin(), o.steps.end())) << k;
  }
  EXPECT_EQ(events.get(0).text, session_chat("Hello there", 10));
  EXPECT_EQ(events.get(2).stats.prompt_tokens, 4);

  edgellm_engine_stats st{};
  ASSERT_EQ(edgellm_engine_get_stats(engine, &st), EDGELLM_OK);
  EXPECT_EQ(st.requests_finished, 3);
  EXPECT_EQ(st.generated_tokens, 30);
  EXPECT_GT(st.steps, 0);
  EXPECT_EQ(st.kv_blocks_used, 0);

  // A callback returning non-zero cancels its request.
  events.cancel_after = 3;
  completion.params = greedy(50);
  ASSERT_EQ(edgellm_engine_submit(engine, &completion, Events::callback, &keys[3], nullptr), EDGELLM_OK);
  ASSERT_TRUE(events.wait(3));
  EXPECT_EQ(events.get(3).finish_reason, "cancelled");
  EXPECT_EQ(events.get(3).tokens.size(), 3u);
  edgellm_engine_free(engine);
}

TEST_F(CApiEngine, BadRequestsAreRefusedWithoutEvents) {
  edgellm_engine_params ep = edgellm_engine_default_params();
  ep.n_ctx = 64;
  ep.max_parallel = 1;
  ep.max_queue = 1;
  edgellm_engine* engine = nullptr;
  ASSERT_EQ(edgellm_engine_create(model_, &ep, &engine), EDGELLM_OK);
  Events events;
  Events::Key key{&events, 0};
  auto refuse = [&](const edgellm_request& r, edgellm_status want, const std::string& needle) {
    EXPECT_EQ(edgellm_engine_submit(engine, &r, Events::callback, &key, nullptr), want) << needle;
    EXPECT_NE(std::string(edgellm_engine_last_error(engine)).find(needle), std::string::npos)
        << edgellm_engine_last_error(engine);
  };
  edgellm_request none{};
  none.params = greedy(4);
  refuse(none, EDGELLM_ERROR_INVALID_ARGUMENT, "exactly one of messages, prompt and tokens (got 0)");
  edgellm_request two = none;
  two.prompt = "a";
  const int32_t t[] = {1};
  two.tokens = t;
  two.n_tokens = 1;
  refuse(two, EDGELLM_ERROR_INVALID_ARGUMENT, "(got 2)");
  edgellm_request long_prompt = none;
  std::vector<int32_t> many(64, 3);
  long_prompt.tokens = many.data();
  long_prompt.n_tokens = many.size();
  refuse(long_prompt, EDGELLM_ERROR_CONTEXT_FULL, "the prompt has 64 tokens");
  edgellm_request bad_utf8 = none;
  bad_utf8.prompt = "\xff\xfe";
  refuse(bad_utf8, EDGELLM_ERROR_INVALID_ARGUMENT, "UTF-8");
  edgellm_request bad_role = none;
  const edgellm_chat_message m[] = {{nullptr, "x"}};
  bad_role.messages = m;
  bad_role.n_messages = 1;
  refuse(bad_role, EDGELLM_ERROR_INVALID_ARGUMENT, "messages[0] has a NULL role");
  edgellm_request bad_sampling = none;
  bad_sampling.prompt = "hi";
  bad_sampling.params.sampling.top_p = 2.0f;
  refuse(bad_sampling, EDGELLM_ERROR_INVALID_ARGUMENT, "top_p");
  EXPECT_EQ(events.get(0).n_finish + events.get(0).n_error, 0);
  EXPECT_EQ(edgellm_engine_submit(nullptr, &none, nullptr, nullptr, nullptr), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(edgellm_engine_submit(engine, nullptr, nullptr, nullptr, nullptr), EDGELLM_ERROR_INVALID_ARGUMENT);

  edgellm_engine_free(engine);

  // One running (long enough to be still running), one waiting, the next refused: EDGELLM_ERROR_BUSY.
  ep.n_ctx = 4096;
  ASSERT_EQ(edgellm_engine_create(model_, &ep, &engine), EDGELLM_OK);
  edgellm_request ok = none;
  ok.prompt = "Hello";
  ok.params = greedy(4000);
  Events::Key k1{&events, 1}, k2{&events, 2};
  uint64_t running = 0;
  ASSERT_EQ(edgellm_engine_submit(engine, &ok, Events::callback, &k1, &running), EDGELLM_OK);
  for (int i = 0; i < 6000 && events.get(1).tokens.empty(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(edgellm_engine_submit(engine, &ok, Events::callback, &k2, nullptr), EDGELLM_OK);
  refuse(ok, EDGELLM_ERROR_BUSY, "queue is full");
  // Freeing the engine ends both with "cancelled", each exactly once.
  edgellm_engine_free(engine);
  for (int k : {1, 2}) {
    const Outcome o = events.get(k);
    EXPECT_EQ(o.n_finish, 1) << k;
    EXPECT_EQ(o.finish_reason, "cancelled") << k;
    EXPECT_EQ(o.events_after_end, 0) << k;
  }

  edgellm_engine_params bad = ep;
  bad.kv_mem_bytes = 1024;
  EXPECT_EQ(edgellm_engine_create(model_, &bad, &engine), EDGELLM_ERROR_OUT_OF_MEMORY);
  EXPECT_NE(std::string(edgellm_model_last_error(model_)).find("one context of 4096 positions"), std::string::npos)
      << edgellm_model_last_error(model_);
  EXPECT_EQ(engine, nullptr);
}

}  // namespace
}  // namespace edgellm
