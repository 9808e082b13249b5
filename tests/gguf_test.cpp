// GGUF reader/writer: round trips of every value type, and clear errors for corrupt files.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "format/gguf.h"
#include "support/test_env.h"

namespace edgellm {
namespace {

using test::TempDir;

GgufWriter make_sample_writer() {
  GgufWriter w;
  w.set("u8", GgufValue::u8(200));
  w.set("i8", GgufValue::i8(-100));
  w.set("u16", GgufValue::u16(60000));
  w.set("i16", GgufValue::i16(-30000));
  w.set("u32", GgufValue::u32(4000000000u));
  w.set("i32", GgufValue::i32(-2000000000));
  w.set("u64", GgufValue::u64(0xffffffffffffull));
  w.set("i64", GgufValue::i64(-0x7fffffffffffll));
  w.set("f32", GgufValue::f32(1.5f));
  w.set("f64", GgufValue::f64(-2.25));
  w.set("bool", GgufValue::boolean(true));
  w.set("str", GgufValue::string("héllo \xe4\xbd\xa0\xe5\xa5\xbd"));
  w.set("strs", GgufValue::string_array({"a", "", "<|im_end|>"}));
  w.set("ints", GgufValue::i32_array({1, -2, 3}));
  w.set("floats", GgufValue::f32_array({0.5f, -1.0f}));
  w.set("nested", GgufValue::array(GgufType::kArray, {GgufValue::i32_array({1, 2}), GgufValue::i32_array({3})}));
  // Arrays of every scalar type, built element by element (kept packed like the typed constructors').
  w.set("u16s", GgufValue::array(GgufType::kUint16, {GgufValue::u16(1), GgufValue::u16(65535)}));
  w.set("i64s", GgufValue::array(GgufType::kInt64, {GgufValue::i64(-5), GgufValue::i64(int64_t{1} << 40)}));
  w.set("f64s", GgufValue::array(GgufType::kFloat64, {GgufValue::f64(0.125)}));
  w.set("bools", GgufValue::array(GgufType::kBool, {GgufValue::boolean(true), GgufValue::boolean(false)}));
  w.set("nostrs", GgufValue::string_array({}));
  return w;
}

TEST(Gguf, RoundTripsEveryValueTypeAndTensors) {
  TempDir dir;
  GgufWriter w = make_sample_writer();
  std::vector<float> a = {1, 2, 3, 4, 5, 6};
  std::vector<uint16_t> b(64, 0x3c00);  // f16 ones
  ASSERT_TRUE(w.add_tensor("a", DType::kF32, {3, 2}, a.data(), a.size() * 4).ok());
  ASSERT_TRUE(w.add_tensor("b", DType::kF16, {64}, b.data(), b.size() * 2).ok());
  const std::string path = dir.file("x.gguf");
  ASSERT_TRUE(w.write(path).ok());

  auto g = GgufFile::open(path);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(*g->get_int("u8"), 200);
  EXPECT_EQ(*g->get_int("i8"), -100);
  EXPECT_EQ(*g->get_int("u16"), 60000);
  EXPECT_EQ(*g->get_int("i16"), -30000);
  EXPECT_EQ(*g->get_int("u32"), 4000000000ll);
  EXPECT_EQ(*g->get_int("i32"), -2000000000);
  EXPECT_EQ(*g->get_int("u64"), 0xffffffffffffll);
  EXPECT_EQ(*g->get_int("i64"), -0x7fffffffffffll);
  EXPECT_EQ(*g->get_float("f32"), 1.5);
  EXPECT_EQ(*g->get_float("f64"), -2.25);
  EXPECT_TRUE(*g->get_bool("bool"));
  EXPECT_EQ(*g->get_string("str"), "héllo \xe4\xbd\xa0\xe5\xa5\xbd");
  EXPECT_EQ(*g->get_string_array("strs"), (std::vector<std::string>{"a", "", "<|im_end|>"}));
  EXPECT_EQ(*g->get_int_array("ints"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*g->get_float_array("floats"), (std::vector<double>{0.5, -1.0}));
  const GgufValue* nested = g->find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->array_size(), 2u);
  EXPECT_EQ(nested->element(0).array_size(), 2u);
  EXPECT_EQ(*nested->element(1).element(0).as_int(), 3);
  EXPECT_EQ(*g->get_int_array("u16s"), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(*g->get_int_array("i64s"), (std::vector<int64_t>{-5, int64_t{1} << 40}));
  EXPECT_EQ(*g->get_float_array("f64s"), (std::vector<double>{0.125}));
  const GgufValue* bools = g->find("bools");
  ASSERT_EQ(bools->array_size(), 2u);
  EXPECT_EQ(bools->element(0).as_bool(), true);
  EXPECT_EQ(bools->element(1).as_bool(), false);
  EXPECT_FALSE(g->get_int_array("bools").ok());  // bools are not integers, in an array too
  EXPECT_EQ(g->find("strs")->string_element(2), "<|im_end|>");
  EXPECT_EQ(g->find("strs")->string_element(1), "");
  EXPECT_EQ(*g->find("strs")->element(0).as_string(), "a");
  EXPECT_TRUE(g->get_string_array("nostrs")->empty());
  EXPECT_EQ(g->find("strs")->to_display_string(), "[string x 3] [\"a\", \"\", \"<|im_end|>\"]");
  EXPECT_EQ(g->find("u16s")->to_display_string(1), "[u16 x 2] [1, ...]");

  ASSERT_EQ(g->tensors().size(), 2u);
  const GgufTensorInfo* ta = g->find_tensor("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->ne, (std::vector<int64_t>{3, 2}));
  TensorRef ra = g->tensor_ref(*ta);
  EXPECT_EQ(std::memcmp(ra.data, a.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(ra.data) % 32, 0u);
  TensorRef rb = g->tensor_ref(*g->find_tensor("b"));
  EXPECT_EQ(std::memcmp(rb.data, b.data(), 128), 0);

  // Metadata keeps insertion order.
  EXPECT_EQ(g->metadata().front().first, "u8");
}

TEST(Gguf, TypedGettersNameTheKeyOnMismatch) {
  TempDir dir;
  GgufWriter w = make_sample_writer();
  ASSERT_TRUE(w.write(dir.file("x.gguf")).ok());
  auto g = GgufFile::open(dir.file("x.gguf"));
  ASSERT_TRUE(g.ok());
  auto s = g->get_string("u32");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("'u32'"), std::string::npos);
  EXPECT_NE(s.error().message.find("expected a string"), std::string::npos);
  auto missing = g->get_int("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(*g->get_int_or("nope", 7), 7);
  EXPECT_FALSE(g->get_int_or("str", 7).ok());  // present but mistyped is still an error
}

TEST(Gguf, CustomAlignmentIsWrittenAndHonoured) {
  TempDir dir;
  GgufWriter w(64);
  std::vector<float> a(5, 1.0f);
  ASSERT_TRUE(w.add_tensor("a", DType::kF32, {5}, a.data(), 20).ok());
  ASSERT_TRUE(w.add_tensor("b", DType::kF32, {5}, a.data(), 20).ok());
  ASSERT_TRUE(w.write(dir.file("x.gguf")).ok());
  auto g = GgufFile::open(dir.file("x.gguf"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(g->find_tensor("b")->offset, 64u);
}

TEST(Gguf, WriterRejectsSizeMismatch) {
  GgufWriter w;
  std::vector<float> a(4);
  auto st = w.add_tensor("a", DType::kF32, {5}, a.data(), 16);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'a'"), std::string::npos);
  EXPECT_FALSE(w.add_tensor("q", DType::kQ4_0, {31}, a.data(), 16).ok());  // not a block multiple
}

TEST(Gguf, FailedProducerLeavesNoFile) {
  TempDir dir;
  GgufWriter w;
  ASSERT_TRUE(w.add_tensor("a", DType::kF32, {4},
                           [](std::vector<uint8_t>&) -> Status {
                             return make_error(ErrorCode::kIo, "simulated failure");
                           })
                  .ok());
  const std::string path = dir.file("x.gguf");
  auto st = w.write(path);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("simulated failure"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) ADD_FAILURE() << "left behind: " << e.path();
}

TEST(Gguf, ContentDigestIsStoredAndDetectsCorruption) {
  TempDir dir;
  GgufWriter w;
  w.set_content_digest_key("edgellm.content.sha256");
  std::vector<float> a(100, 3.0f);
  ASSERT_TRUE(w.add_tensor("a", DType::kF32, {100}, a.data(), 400).ok());
  const std::string path = dir.file("d.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto g = GgufFile::open(path);
  ASSERT_TRUE(g.ok());
  const std::string stored = *g->get_string("edgellm.content.sha256");
  EXPECT_EQ(stored.size(), 64u);
  EXPECT_NE(stored, std::string(64, '0'));
  EXPECT_EQ(*gguf_content_digest(*g), stored);
  std::string bytes = test::read_file(path);
  bytes[bytes.size() - 10] ^= 1;
  test::write_file(path, bytes);
  auto corrupted = GgufFile::open(path);
  ASSERT_TRUE(corrupted.ok());
  EXPECT_NE(*gguf_content_digest(*corrupted), stored);
}

TEST(Gguf, OverwritesAnExistingFileAtomically) {
  TempDir dir;
  const std::string path = dir.file("x.gguf");
  test::write_file(path, "old contents");
  GgufWriter w;
  w.set_string("k", "v");
  ASSERT_TRUE(w.write(path).ok());
  EXPECT_TRUE(GgufFile::open(path).ok());
  GgufWriter failing;
  ASSERT_TRUE(failing.add_tensor("a", DType::kF32, {4}, [](std::vector<uint8_t>&) -> Status {
    return make_error(ErrorCode::kIo, "disk full (simulated)");
  }).ok());
  EXPECT_FALSE(failing.write(path).ok());
  EXPECT_TRUE(GgufFile::open(path).ok());  // the previous file is untouched
}

// ---- corrupt files ----

std::string write_valid(const TempDir& dir) {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  std::vector<float> a(8, 2.0f);
  EXPECT_TRUE(w.add_tensor("t", DType::kF32, {8}, a.data(), 32).ok());
  const std::string path = dir.file("ok.gguf");
  EXPECT_TRUE(w.write(path).ok());
  return test::read_file(path);
}

Error open_bytes(const TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("bad.gguf");
  test::write_file(path, bytes);
  auto g = GgufFile::open(path);
  EXPECT_FALSE(g.ok());
  return g.ok() ? Error{} : g.error();
}

TEST(GgufCorrupt, WrongMagic) {
  TempDir dir;
  std::string bytes = write_valid(dir);
  bytes[0] = 'X';
  Error e = open_bytes(dir, bytes);
  EXPECT_NE(e.message.find("not a GGUF file"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("bad.gguf"), std::string::npos);
}

TEST(GgufCorrupt, UnknownVersion) {
  TempDir dir;
  std::string bytes = write_valid(dir);
  bytes[4] = 99;
  Error e = open_bytes(dir, bytes);
  EXPECT_EQ(e.code, ErrorCode::kUnsupported);
  EXPECT_NE(e.message.find("version 99"), std::string::npos) << e.message;
}

TEST(GgufCorrupt, BadBoolInAnArray) {
  TempDir dir;
  GgufWriter w;
  w.set("flags", GgufValue::array(GgufType::kBool, {GgufValue::boolean(false), GgufValue::boolean(true)}));
  ASSERT_TRUE(w.write(dir.file("ok.gguf")).ok());
  std::string bytes = test::read_file(dir.file("ok.gguf"));
  const size_t key = bytes.find("flags");
  ASSERT_NE(key, std::string::npos);
  // After the key: value type (4), element type (4), count (8), then the elements.
  bytes[key + 5 + 4 + 4 + 8 + 1] = 2;
  Error e = open_bytes(dir, bytes);
  EXPECT_NE(e.message.find("bad bool value 2 in value of key 'flags'"), std::string::npos) << e.message;
}

TEST(GgufCorrupt, EveryTruncationIsAnError) {
  TempDir dir;
  const std::string bytes = write_valid(dir);
  for (size_t len = 0; len < bytes.size(); ++len) {
    Error e = open_bytes(dir, bytes.substr(0, len));
    EXPECT_FALSE(e.message.empty()) << "length " << len;
  }
}

TEST(GgufCorrupt, TensorOffsetPastTheEnd) {
  TempDir dir;
  std::string bytes = write_valid(dir);
  // The tensor info's u64 offset sits right before the alignment padding: find it by its value 0 after
  // the type field; simpler: patch the last 8 bytes of the header, located via the name "t".
  const size_t name_pos = bytes.rfind(std::string("\x01\x00\x00\x00\x00\x00\x00\x00t", 9));
  ASSERT_NE(name_pos, std::string::npos);
  const size_t offset_pos = name_pos + 9 + 4 + 8 + 4;  // name, n_dims, ne[0], type
  const uint64_t far = 1 << 20;
  std::memcpy(&bytes[offset_pos], &far, 8);
  Error e = open_bytes(dir, bytes);
  EXPECT_NE(e.message.find("tensor 't'"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("past the end"), std::string::npos) << e.message;
}

TEST(GgufCorrupt, HugeCountsAreRejectedWithoutAllocating) {
  TempDir dir;
  std::string bytes = write_valid(dir);
  const uint64_t huge = ~0ull;
  std::memcpy(&bytes[16], &huge, 8);  // n_kv
  Error e = open_bytes(dir, bytes);
  EXPECT_NE(e.message.find("more than"), std::string::npos) << e.message;
}

TEST(GgufCorrupt, UnknownTensorType) {
  TempDir dir;
  std::string bytes = write_valid(dir);
  const size_t name_pos = bytes.rfind(std::string("\x01\x00\x00\x00\x00\x00\x00\x00t", 9));
  const size_t type_pos = name_pos + 9 + 4 + 8;
  const uint32_t bogus = 77;
  std::memcpy(&bytes[type_pos], &bogus, 4);
  Error e = open_bytes(dir, bytes);
  EXPECT_NE(e.message.find("unknown tensor type 77"), std::string::npos) << e.message;
}

TEST(GgufCorrupt, RandomByteFlipsNeverCrash) {
  TempDir dir;
  const std::string bytes = write_valid(dir);
  uint64_t state = 12345;
  for (int trial = 0; trial < 300; ++trial) {
    std::string mutated = bytes;
    for (int k = 0; k < 3; ++k) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      mutated[(state >> 33) % mutated.size()] = static_cast<char>(state >> 56);
    }
    test::write_file(dir.file("m.gguf"), mutated);
    auto g = GgufFile::open(dir.file("m.gguf"));  // either loads or fails cleanly
    if (g.ok()) {
      for (const auto& t : g->tensors()) EXPECT_LE(t.offset + t.size_bytes + g->data_offset(), g->file_size());
    }
  }
}

}  // namespace
}  // namespace edgellm
