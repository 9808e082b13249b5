// safetensors reader: single file, sharded index, dtypes, and corrupt headers.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "support/test_env.h"
#include "util/half.h"

namespace edgellm {
namespace {

using test::TempDir;

std::string header_file(const std::string& json, const std::string& data) {
  std::string bytes(8, '\0');
  const uint64_t n = json.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + json + data;
}

TEST(Safetensors, WriterRoundTripAndShapesInGgmlOrder) {
  TempDir dir;
  SafetensorsWriter w;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b = {f32_to_bf16(1.5f), f32_to_bf16(-2.0f)};
  ASSERT_TRUE(w.add("a", DType::kF32, {2, 3}, a.data(), 24).ok());
  ASSERT_TRUE(w.add("b", DType::kBF16, {2}, b.data(), 4).ok());
  ASSERT_TRUE(w.write(dir.file("model.safetensors")).ok());
  auto st = Safetensors::open(dir.path());
  ASSERT_TRUE(st.ok()) << st.error().message;
  const SafetensorsTensor* ta = st->find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(ta->ref.ne, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(std::memcmp(ta->ref.data, a.data(), 24), 0);
  const SafetensorsTensor* tb = st->find("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(tb->ref.type, DType::kBF16);
  EXPECT_EQ(bf16_to_f32(static_cast<const uint16_t*>(tb->ref.data)[1]), -2.0f);
}

TEST(Safetensors, ShardedIndex) {
  TempDir dir;
  std::vector<float> a = {1, 2}, b = {3, 4, 5};
  SafetensorsWriter w1, w2;
  ASSERT_TRUE(w1.add("x.a", DType::kF32, {2}, a.data(), 8).ok());
  ASSERT_TRUE(w2.add("x.b", DType::kF32, {3}, b.data(), 12).ok());
  ASSERT_TRUE(w1.write(dir.file("model-00001-of-00002.safetensors")).ok());
  ASSERT_TRUE(w2.write(dir.file("model-00002-of-00002.safetensors")).ok());
  test::write_file(dir.file("model.safetensors.index.json"),
                   R"({"metadata": {}, "weight_map": {"x.a": "model-00001-of-00002.safetensors",
                       "x.b": "model-00002-of-00002.safetensors"}})");
  auto st = Safetensors::open(dir.path());
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->files().size(), 2u);
  ASSERT_NE(st->find("x.b"), nullptr);
  EXPECT_EQ(static_cast<const float*>(st->find("x.b")->ref.data)[2], 5.0f);
}

TEST(Safetensors, IndexNamingAMissingTensorIsAnError) {
  TempDir dir;
  std::vector<float> a = {1, 2};
  SafetensorsWriter w;
  ASSERT_TRUE(w.add("x.a", DType::kF32, {2}, a.data(), 8).ok());
  ASSERT_TRUE(w.write(dir.file("s1.safetensors")).ok());
  test::write_file(dir.file("model.safetensors.index.json"),
                   R"({"weight_map": {"x.a": "s1.safetensors", "x.zz": "s1.safetensors"}})");
  auto st = Safetensors::open(dir.path());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'x.zz'"), std::string::npos) << st.error().message;
}

struct CorruptCase {
  const char* name;
  std::string bytes;
  const char* expect;
};

TEST(Safetensors, CorruptFilesGiveClearErrors) {
  TempDir dir;
  const std::vector<CorruptCase> cases = {
      {"empty", "", "truncated"},
      {"short header length", std::string("\x05\x00\x00\x00", 4), "truncated"},
      {"header length past end", header_file("{}", "").substr(0, 8) + "{", "header length"},
      {"malformed json", header_file("{\"a\": ", ""), "malformed"},
      {"not an object", header_file("[1,2]", ""), "not a JSON object"},
      {"missing keys", header_file(R"({"a": {"dtype": "F32"}})", ""), "tensor 'a'"},
      {"offsets past end", header_file(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", "12345678"),
       "outside"},
      {"size mismatch", header_file(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678"),
       "expected 12"},
      {"negative shape", header_file(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "1234"),
       "non-integer"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.file("bad.safetensors");
    test::write_file(path, c.bytes);
    auto st = Safetensors::open(path);
    ASSERT_FALSE(st.ok()) << c.name;
    EXPECT_NE(st.error().message.find(c.expect), std::string::npos) << c.name << ": " << st.error().message;
    EXPECT_NE(st.error().message.find("bad.safetensors"), std::string::npos) << c.name;
  }
}

}  // namespace
}  // namespace edgellm
