// Function calling and constrained output through the C API (edgellm.h): tools on a session, calls delivered
// as TOOL_CALL events, results added as messages, tool_choice, grammar and json_schema, on the trained
// qwen2-tiny fixture (its real Qwen2.5 template, Hermes <tool_call> format).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgellm/edgellm.h"
#include "support/test_env.h"

namespace edgellm {
namespace {

const char* kTools = R"([
  {"type": "function", "function": {"name": "set_light", "description": "Switch a light",
   "parameters": {"type": "object", "properties": {"room": {"type": "string"}, "on": {"type": "boolean"}},
                  "required": ["room", "on"]}}},
  {"type": "function", "function": {"name": "get_temperature",
   "parameters": {"type": "object", "properties": {"room": {"type": "string"}}, "required": ["room"]}}}])";

struct Events {
  std::string text, finish, error;
  std::vector<nlohmann::json> calls;
  int n_finish = 0;
};

int32_t record(edgellm_event event, const char* text, size_t len, void* user_data) {
  auto* e = static_cast<Events*>(user_data);
  const std::string s(text, len);
  switch (event) {
    case EDGELLM_EVENT_TEXT: e->text += s; break;
    case EDGELLM_EVENT_TOOL_CALL: e->calls.push_back(nlohmann::json::parse(s)); break;
    case EDGELLM_EVENT_FINISH: e->finish = s, ++e->n_finish; break;
    case EDGELLM_EVENT_ERROR: e->error = s; break;
  }
  return 0;
}

class CapiTools : public ::testing::Test {
 protected:
  void SetUp() override {
    edgellm_model_params mp = edgellm_model_default_params();
    mp.n_threads = 2;
    ASSERT_EQ(edgellm_model_load(test::source_path("tests/models/qwen2-tiny").c_str(), &mp, &model_), EDGELLM_OK)
        << edgellm_last_error();
    edgellm_session_params sp = edgellm_session_default_params();
    sp.n_ctx = 1024;
    ASSERT_EQ(edgellm_session_create(model_, &sp, &session_), EDGELLM_OK);
  }
  void TearDown() override {
    edgellm_session_free(session_);
    edgellm_model_free(model_);
  }
  edgellm_generate_params params(uint64_t seed, int32_t n = 400) const {
    edgellm_generate_params gp = edgellm_generate_default_params(model_);
    gp.sampling.temperature = 1.0f;
    gp.sampling.seed = seed;
    gp.max_new_tokens = n;
    return gp;
  }
  edgellm_model* model_ = nullptr;
  edgellm_session* session_ = nullptr;
};

TEST_F(CapiTools, ForcedCallsArriveAsEventsAndResultsGetAnAnswer) {
  ASSERT_EQ(edgellm_session_set_tools(session_, kTools, /*read_calls=*/1), EDGELLM_OK)
      << edgellm_session_last_error(session_);
  for (uint64_t seed = 0; seed < 10; ++seed) {
    ASSERT_EQ(edgellm_session_reset(session_), EDGELLM_OK);
    edgellm_generate_params gp = params(seed);
    gp.tool_choice = "required";
    Events e;
    ASSERT_EQ(edgellm_session_chat(session_, "It is dark in the hall", &gp, record, &e), EDGELLM_OK)
        << edgellm_session_last_error(session_);
    ASSERT_GE(e.calls.size(), 1u) << e.text;
    EXPECT_EQ(e.n_finish, 1);
    for (const auto& c : e.calls) {
      ASSERT_TRUE(c["name"] == "set_light" || c["name"] == "get_temperature") << c.dump();
      EXPECT_TRUE(c["arguments"]["room"].is_string()) << c.dump();
      if (c["name"] == "set_light") {
        EXPECT_TRUE(c["arguments"]["on"].is_boolean()) << c.dump();
      }
      EXPECT_EQ(c["id"].get<std::string>().rfind("call_", 0), 0u);
    }
    EXPECT_EQ(e.text.find("<tool_call>"), std::string::npos);  // calls never leak into the text
    ASSERT_EQ(edgellm_session_history_size(session_), 2);
  }
  // The last call's result, then the model answers in text (auto: it may call again; the fixture does not).
  ASSERT_EQ(edgellm_session_add_tool_result(session_, "call_0", nullptr, "{\"temperature\": 21}"), EDGELLM_OK);
  Events answer;
  edgellm_generate_params gp = params(1, 16);
  ASSERT_EQ(edgellm_session_chat(session_, nullptr, &gp, record, &answer), EDGELLM_OK)
      << edgellm_session_last_error(session_);
  EXPECT_EQ(answer.n_finish, 1);
  EXPECT_FALSE(answer.text.empty());
  ASSERT_EQ(edgellm_session_history_size(session_), 4);
  const char* role = nullptr;
  const char* content = nullptr;
  ASSERT_EQ(edgellm_session_history_message(session_, 2, &role, &content), EDGELLM_OK);
  EXPECT_STREQ(role, "tool");
  edgellm_perf perf{};
  ASSERT_EQ(edgellm_session_get_perf(session_, &perf), EDGELLM_OK);
  EXPECT_GT(perf.reused_tokens, 0);  // the round before the result came from the KV cache
}

TEST_F(CapiTools, NamedChoiceAndCallsLeftInTheText) {
  ASSERT_EQ(edgellm_session_set_tools(session_, kTools, /*read_calls=*/0), EDGELLM_OK);
  edgellm_generate_params gp = params(4);
  gp.tool_choice = "get_temperature";
  Events e;
  ASSERT_EQ(edgellm_session_chat(session_, "How warm is it?", &gp, record, &e), EDGELLM_OK);
  EXPECT_TRUE(e.calls.empty());
  ASSERT_EQ(e.text.rfind("<tool_call>\n{", 0), 0u) << e.text;
  const auto body = nlohmann::json::parse(e.text.substr(12, e.text.find("\n</tool_call>") - 12));
  EXPECT_EQ(body["name"], "get_temperature");
}

TEST_F(CapiTools, GrammarAndSchemaParams) {
  edgellm_generate_params gp = params(2, 40);
  gp.grammar = "root ::= (\"yes\" | \"no\") \".\"\n";
  Events e;
  ASSERT_EQ(edgellm_session_chat(session_, "Is it on?", &gp, record, &e), EDGELLM_OK);
  EXPECT_TRUE(e.finish == "yes." || e.finish == "no.") << e.finish;
  gp = params(3, 200);
  gp.json_schema = R"({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})";
  Events j;
  ASSERT_EQ(edgellm_session_chat(session_, "A number", &gp, record, &j), EDGELLM_OK);
  EXPECT_TRUE(nlohmann::json::parse(j.finish)["n"].is_number_integer()) << j.finish;
}

TEST_F(CapiTools, BadInputIsAnErrorNamingIt) {
  EXPECT_EQ(edgellm_session_set_tools(session_, "{\"type\": \"function\"}", 1), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgellm_session_last_error(session_)).find("not a JSON array"), std::string::npos);
  EXPECT_EQ(edgellm_session_set_tools(session_, "[{\"function\": {}}]", 1), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgellm_session_last_error(session_)).find("tools[0]"), std::string::npos);
  edgellm_generate_params gp = params(1, 8);
  gp.tool_choice = "required";
  Events e;
  EXPECT_NE(edgellm_session_chat(session_, "x", &gp, record, &e), EDGELLM_OK);
  EXPECT_NE(e.error.find("needs tools"), std::string::npos) << e.error;
  ASSERT_EQ(edgellm_session_set_tools(session_, kTools, 1), EDGELLM_OK);
  gp.tool_choice = "open_door";
  Events n;
  EXPECT_NE(edgellm_session_chat(session_, "x", &gp, record, &n), EDGELLM_OK);
  EXPECT_NE(n.error.find("no tool is named 'open_door'"), std::string::npos) << n.error;
  gp = params(1, 8);
  gp.grammar = "root ::= \"a\" b\n";
  Events g;
  EXPECT_EQ(edgellm_session_chat(session_, "x", &gp, record, &g), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(g.error.find("rule 'b' is used but never defined"), std::string::npos) << g.error;
  gp.grammar = "root ::= \"a\"\n";
  gp.json_schema = "{}";
  Events both;
  EXPECT_EQ(edgellm_session_chat(session_, "x", &gp, record, &both), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(edgellm_session_history_size(session_), 0);  // failed turns leave no trace
}

}  // namespace
}  // namespace edgellm
