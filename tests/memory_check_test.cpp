// Memory control: loading refuses a model larger than the available memory (and says how much it
// needs), a session refuses a KV cache that does not fit before allocating it, and a prompt longer than
// the context is an error, not an out-of-memory crash. EDGELLM_MEM_AVAILABLE_MB stands in for MemAvailable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "edgellm/edgellm.h"
#include "runtime/loaded_model.h"
#include "runtime/session.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

// A tiny model with 2 MiB f32 token embedding and output matrices (4 MiB): a 1 MiB budget cannot hold it.
std::string write_model(const test::TempDir& dir) {
  ModelConfig c = test::tiny_config(Arch::kQwen2);
  c.n_vocab = 8192;
  return test::write_tiny_gguf(dir.path(), c, DType::kF32);
}

TEST(MemoryCheck, AvailableMemoryOverrideIsRead) {
  ScopedEnv env("EDGELLM_MEM_AVAILABLE_MB", "7");
  EXPECT_EQ(available_memory_bytes(), size_t{7} << 20);
}

TEST(MemoryCheck, LoadRefusesWeightsLargerThanAvailableMemory) {
  test::TempDir dir;
  const std::string path = write_model(dir);
  ScopedEnv env("EDGELLM_MEM_AVAILABLE_MB", "1");
  auto lm = LoadedModel::load(path);
  ASSERT_FALSE(lm.ok());
  EXPECT_EQ(lm.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(lm.error().message.find("the weights need 4 MiB but only 1 MiB"), std::string::npos)
      << lm.error().message;
  LoadOptions unchecked;
  unchecked.check_memory = false;
  EXPECT_TRUE(LoadedModel::load(path, unchecked).ok());
}

TEST(MemoryCheck, SessionRefusesAKvCacheThatDoesNotFitBeforeAllocating) {
  test::TempDir dir;
  const std::string path = write_model(dir);
  ScopedEnv env("EDGELLM_MEM_AVAILABLE_MB", "64");
  auto lm = LoadedModel::load(path);
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  SessionOptions options;
  options.n_ctx = int64_t{1} << 22;  // 2 layers x 2 x 32 values x 2 bytes = 256 bytes a position: 1 GiB
  auto session = Session::create(*lm, options);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(session.error().message.find("f16 KV cache for 4194304 positions needs 1024 MiB but only 64 MiB"),
            std::string::npos)
      << session.error().message;
  options.n_ctx = 1024;
  EXPECT_TRUE(Session::create(*lm, options).ok());
}

TEST(MemoryCheck, PromptLongerThanTheContextIsAClearError) {
  test::TempDir dir;
  auto lm = LoadedModel::load(write_model(dir));
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  for (DType kv_type : {DType::kF16, DType::kF32}) {
    SessionOptions options;
    options.n_ctx = 16;
    options.kv_type = kv_type;
    auto session = Session::create(*lm, options);
    ASSERT_TRUE(session.ok()) << session.error().message;
    std::vector<int32_t> prompt(17, 5);
    auto r = (*session)->prefill(prompt);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kContextFull);
    EXPECT_NE(r.error().message.find("17 tokens but the context holds 16"), std::string::npos) << r.error().message;
    prompt.resize(16);
    EXPECT_TRUE((*session)->prefill(prompt).ok());  // exactly full is fine
  }
}

TEST(MemoryCheck, CApiAcceptsQ8_0KvAndRejectsUnknownTypes) {
  test::TempDir dir;
  ModelConfig c = test::tiny_config(Arch::kQwen2);
  c.n_embd = 128;
  c.head_dim = 32;
  c.n_rot = 32;
  const std::string path = test::write_tiny_gguf(dir.path(), c, DType::kF32);
  edgellm_model* m = nullptr;
  ASSERT_EQ(edgellm_model_load(path.c_str(), nullptr, &m), EDGELLM_OK) << edgellm_last_error();
  edgellm_session_params sp = edgellm_session_default_params();
  sp.n_ctx = 64;
  sp.kv_type = EDGELLM_KV_Q8_0;
  edgellm_session* s = nullptr;
  EXPECT_EQ(edgellm_session_create(m, &sp, &s), EDGELLM_OK) << edgellm_model_last_error(m);
  edgellm_session_free(s);
  s = nullptr;
  const int bad = 3;
  std::memcpy(&sp.kv_type, &bad, sizeof bad);
  EXPECT_EQ(edgellm_session_create(m, &sp, &s), EDGELLM_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(edgellm_model_last_error(m)).find("EDGELLM_KV_Q8_0"), std::string::npos);
  edgellm_model_free(m);
}

}  // namespace
}  // namespace edgellm
