// Model files encrypted at rest (security/encrypted_model.h, security/model_key.h): key files, the round trip,
// every way a file can be damaged (each must be an error naming what failed, never other bytes), where the
// runtime finds a key, and models loaded from encrypted files computing exactly what the plain file computes.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "runtime/loaded_model.h"
#include "model/kv_cache.h"
#include "security/encrypted_model.h"
#include "security/model_key.h"
#include "security/open_model_file.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// Decrypts `path` to memory; "ok:" + the bytes, or the error message.
std::string open_plain(const std::string& path, const ModelKey& key) {
  auto plain = decrypt_model_to_memory(path, key);
  if (!plain.ok()) return plain.error().message;
  return "ok:" + std::string(reinterpret_cast<const char*>(plain->data()), plain->size());
}

TEST(ModelKey, KeyFilesRoundTripInEveryForm) {
  test::TempDir dir;
  const ModelKey key = ModelKey::generate();
  const std::string text = format_model_key(key);
  EXPECT_EQ(text.rfind("untrusted comment: edgellm model encryption key ", 0), 0u) << text;
  auto parsed = ModelKey::parse(text, "k");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->id(), key.id());
  // The bare base64 line, hex, and 32 raw bytes name the same key.
  const std::string b64 = text.substr(text.find('\n') + 1);
  EXPECT_EQ(ModelKey::parse(b64, "k")->id(), key.id());
  std::string hex;
  for (size_t i = 0; i < ModelKey::kBytes; ++i) {
    char buf[3];
    std::snprintf(buf, sizeof(buf), "%02x", key.data()[i]);
    hex += buf;
  }
  EXPECT_EQ(ModelKey::parse(hex + "\n", "k")->id(), key.id());
  const std::string raw(reinterpret_cast<const char*>(key.data()), ModelKey::kBytes);
  test::write_file(dir.file("raw.key"), raw);
  EXPECT_EQ(ModelKey::read_file(dir.file("raw.key"))->id(), key.id());
  // Different keys, different ids; the id is not the key.
  EXPECT_NE(ModelKey::generate().id(), key.id());
  EXPECT_EQ(key.id_hex().size(), 32u);
  EXPECT_EQ(b64.find(key.id_hex()), std::string::npos);
}

TEST(ModelKey, MalformedKeysSayWhatIsWrong) {
  test::TempDir dir;
  for (const std::string& bad : {std::string(""), std::string("hello\n"), std::string(31, 'a'),
                                std::string("AAAA\nBBBB\n"), std::string(5000, 'x'),
                                std::string("untrusted comment: x\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")}) {
    auto k = ModelKey::parse(bad, "bad.key");
    ASSERT_FALSE(k.ok()) << bad;
    EXPECT_EQ(k.error().message.rfind("bad.key: ", 0), 0u) << k.error().message;
  }
  auto missing = ModelKey::read_file(dir.file("absent.key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.key: cannot open the model key"), std::string::npos);
}

TEST(ModelKey, FoundInTheOrderTheDocsGive) {
  test::TempDir dir;
  const ModelKey a = ModelKey::generate(), b = ModelKey::generate(), c = ModelKey::generate(), d = ModelKey::generate();
  test::write_file(dir.file("a.key"), format_model_key(a));
  test::write_file(dir.file("b.key"), format_model_key(b));
  std::filesystem::create_directories(dir.file("creds"));
  test::write_file(dir.file("creds/edgellm-model-key"), format_model_key(d));
  const std::string c_text = format_model_key(c);
  const std::string c_line = c_text.substr(c_text.find('\n') + 1);

  ::unsetenv("EDGELLM_MODEL_KEY_FILE");
  ::unsetenv("EDGELLM_MODEL_KEY");
  ::unsetenv("CREDENTIALS_DIRECTORY");
  auto none = find_model_key("");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_NE(none.error().message.find("EDGELLM_MODEL_KEY_FILE"), std::string::npos);

  ScopedEnv creds("CREDENTIALS_DIRECTORY", dir.file("creds"));
  EXPECT_EQ(find_model_key("")->id(), d.id());
  {
    ScopedEnv text("EDGELLM_MODEL_KEY", c_line);
    EXPECT_EQ(find_model_key("")->id(), c.id());
    {
      ScopedEnv file("EDGELLM_MODEL_KEY_FILE", dir.file("b.key"));
      EXPECT_EQ(find_model_key("")->id(), b.id());
      EXPECT_EQ(find_model_key(dir.file("a.key"))->id(), a.id());  // an explicit file wins
    }
    ScopedEnv bad("EDGELLM_MODEL_KEY", "not a key");
    auto k = find_model_key("");
    ASSERT_FALSE(k.ok());
    EXPECT_NE(k.error().message.find("EDGELLM_MODEL_KEY: not a model key"), std::string::npos) << k.error().message;
  }
}

class EncryptedFiles : public ::testing::Test {
 protected:
  std::string encrypt(const std::string& data, uint32_t chunk = 4096) {
    const std::string in = dir_.file("plain.bin"), out = dir_.file("plain.bin.enc");
    test::write_file(in, data);
    const Status st = encrypt_model_file(in, out, key_, chunk);
    EXPECT_TRUE(st.ok()) << st.error().message;
    return out;
  }
  test::TempDir dir_;
  ModelKey key_ = ModelKey::generate();
};

TEST_F(EncryptedFiles, RoundTripAtEverySizeAroundTheChunkBoundaries) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{3 * 4096 + 5}, size_t{100000}}) {
    const std::string data = random_bytes(n, static_cast<uint32_t>(n));
    const std::string enc = encrypt(data);
    auto info = read_encrypted_model_info(enc);
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->plaintext_bytes, n);
    EXPECT_EQ(info->n_chunks, n == 0 ? 1 : (n + 4095) / 4096);
    EXPECT_EQ(std::filesystem::file_size(enc), kEncryptedHeaderBytes + n + info->n_chunks * kEncryptedChunkOverhead);
    EXPECT_EQ(open_plain(enc, key_), "ok:" + data) << n;
    // The file form, written atomically.
    const Status st = decrypt_model_file(enc, dir_.file("back.bin"), key_);
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_EQ(test::read_file(dir_.file("back.bin")), data);
    EXPECT_FALSE(std::filesystem::exists(dir_.file("back.bin.tmp")));
  }
  // The same data encrypted twice differs (a random stream header): nothing about equal models leaks.
  const std::string data = random_bytes(10000, 1);
  const std::string first = test::read_file(encrypt(data));
  EXPECT_NE(first, test::read_file(encrypt(data)));
}

TEST_F(EncryptedFiles, EveryFlippedBitIsAnErrorNamingItsPlace) {
  const std::string data = random_bytes(3 * 4096 + 100, 7);
  const std::string enc = encrypt(data);
  const std::string original = test::read_file(enc);
  const std::string damaged = dir_.file("damaged.enc");
  // Every byte of the file, one bit each (a different bit per byte): header, stream header, MACs, ciphertext.
  for (size_t i = 0; i < original.size(); ++i) {
    std::string bytes = original;
    bytes[i] = static_cast<char>(bytes[i] ^ (1 << (i % 8)));
    test::write_file(damaged, bytes);
    const std::string got = open_plain(damaged, key_);
    ASSERT_NE(got.rfind("ok:", 0), 0u) << "a flipped bit at byte " << i << " was not detected";
    ASSERT_EQ(got.rfind(damaged + ": ", 0), 0u) << got;
  }
  // In the ciphertext, the error names the chunk.
  std::string bytes = original;
  bytes[kEncryptedHeaderBytes + 4096 + 17 + 50] ^= 0x10;
  test::write_file(damaged, bytes);
  EXPECT_NE(open_plain(damaged, key_).find("chunk 1 of 4"), std::string::npos) << open_plain(damaged, key_);
}

TEST_F(EncryptedFiles, TruncatedExtendedReorderedAndWrongKeyFilesAreRefused) {
  const std::string data = random_bytes(3 * 4096 + 100, 9);
  const std::string enc = encrypt(data);
  const std::string original = test::read_file(enc);
  const std::string damaged = dir_.file("damaged.enc");
  for (size_t n = 0; n < original.size(); n += 97) {
    test::write_file(damaged, original.substr(0, n));
    const std::string got = open_plain(damaged, key_);
    ASSERT_NE(got.rfind("ok:", 0), 0u) << n;
    if (n >= kEncryptedHeaderBytes) {
      EXPECT_NE(got.find("truncated"), std::string::npos) << got;
    }
  }
  test::write_file(damaged, original + "x");
  EXPECT_NE(open_plain(damaged, key_).find("1 unexpected bytes after the last chunk"), std::string::npos);
  // Chunks 0 and 1 swapped: each is authentic alone, the order is not.
  const size_t c = 4096 + kEncryptedChunkOverhead, h = kEncryptedHeaderBytes;
  test::write_file(damaged, original.substr(0, h) + original.substr(h + c, c) + original.substr(h, c) + original.substr(h + 2 * c));
  EXPECT_NE(open_plain(damaged, key_).find("chunk 0 of 4"), std::string::npos) << open_plain(damaged, key_);
  // The last chunk dropped and the header's size edited to match: the final tag is missing.
  std::string shorter = original.substr(0, original.size() - (100 + kEncryptedChunkOverhead));
  const uint64_t plain = 3 * 4096;
  for (int i = 0; i < 8; ++i) shorter[24 + i] = static_cast<char>(plain >> (8 * i));
  test::write_file(damaged, shorter);
  EXPECT_NE(open_plain(damaged, key_).find("fails authentication"), std::string::npos) << open_plain(damaged, key_);
  // Another key.
  const std::string other = open_plain(enc, ModelKey::generate());
  EXPECT_NE(other.find("encrypted with another key (the file names key " + key_.id_hex()), std::string::npos) << other;
  // A damaged file never leaves a partial decrypted file behind.
  std::string flipped = original;
  flipped[original.size() - 5] ^= 1;
  test::write_file(damaged, flipped);
  EXPECT_FALSE(decrypt_model_file(damaged, dir_.file("out.bin"), key_).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out.bin")));
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out.bin.tmp")));
}

TEST_F(EncryptedFiles, BadChunkSizesAndHeadersAreRefused) {
  EXPECT_FALSE(encrypt_model_file(dir_.file("x"), dir_.file("y"), key_, 100).ok());
  const std::string enc = encrypt(random_bytes(5000, 3));
  std::string bytes = test::read_file(enc);
  bytes[16] = 2;  // version
  test::write_file(dir_.file("v2.enc"), bytes);
  EXPECT_NE(open_plain(dir_.file("v2.enc"), key_).find("encrypted-file version 2"), std::string::npos);
  bytes = test::read_file(enc);
  bytes[0] = 'E';
  test::write_file(dir_.file("magic.enc"), bytes);
  EXPECT_FALSE(is_encrypted_model_file(dir_.file("magic.enc")));
  EXPECT_NE(open_plain(dir_.file("magic.enc"), key_).find("not an edgellm-encrypted file"), std::string::npos);
}

TEST(EncryptedModels, LoadAndComputeExactlyAsThePlainFile) {
  test::TempDir dir;
  // Q4_0 weights are repacked at load (on ISAs with packed kernels), which releases the decrypted bytes:
  // the logits must still equal the plain file's, token by token.
  for (DType type : {DType::kF32, DType::kQ4_0, DType::kQ8_0}) {
    const std::string plain = test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2, true), type);
    const ModelKey key = ModelKey::generate();
    test::write_file(dir.file("model.key"), format_model_key(key));
    const std::string enc = dir.file("model.enc");
    ASSERT_TRUE(encrypt_model_file(plain, enc, key).ok());

    auto no_key = LoadedModel::load(enc);
    ASSERT_FALSE(no_key.ok());
    EXPECT_NE(no_key.error().message.find("an encrypted model file: give its key"), std::string::npos);

    LoadOptions o;
    o.key_file = dir.file("model.key");
    auto a = LoadedModel::load(plain);
    auto b = LoadedModel::load(enc, o);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_TRUE((*b)->model().gguf()->in_memory());
    EXPECT_FALSE((*b)->weights_digest().empty());
    const auto logits_of = [](const LoadedModel& lm) {
      auto kv = KvCache::create(lm.config(), 32, DType::kF32);
      EXPECT_TRUE(kv.ok());
      ForwardScratch scratch(lm.config(), 16, 32, lm.pool().n_threads());
      const std::vector<int32_t> tokens = {1, 5, 9, 200, 17, 33, 64, 3};
      std::vector<float> logits;
      EXPECT_TRUE(lm.transformer().forward(tokens.data(), 8, *kv, scratch, lm.pool(), LogitsMode::kAll, logits).ok());
      return logits;
    };
    const std::vector<float> expected = logits_of(**a);
    ASSERT_FALSE(expected.empty());
    EXPECT_EQ(logits_of(**b), expected) << dtype_name(type);
    // The C-level entry points find the key in the environment too (RKLLM applications).
    ScopedEnv env("EDGELLM_MODEL_KEY_FILE", dir.file("model.key"));
    EXPECT_TRUE(LoadedModel::load(enc).ok());
    EXPECT_TRUE(open_model_gguf(enc).ok());
  }
}

TEST(EncryptedModels, TheMemoryCheckCountsTheDecryptedModelBeforeDecrypting) {
  test::TempDir dir;
  ModelConfig c = test::tiny_config(Arch::kQwen2);
  c.n_vocab = 8192;  // 4 MiB of f32 embedding and output: more than the 1 MiB said to be available below
  const std::string plain = test::write_tiny_gguf(dir.path(), c, DType::kF32);
  const ModelKey key = ModelKey::generate();
  test::write_file(dir.file("model.key"), format_model_key(key));
  ASSERT_TRUE(encrypt_model_file(plain, dir.file("m.enc"), key).ok());
  LoadOptions o;
  o.key_file = dir.file("model.key");
  {
    ScopedEnv small("EDGELLM_MEM_AVAILABLE_MB", "1");
    auto refused = LoadedModel::load(dir.file("m.enc"), o);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kOutOfMemory);
    EXPECT_NE(refused.error().message.find("the decrypted model needs 4 MiB but only 1 MiB"), std::string::npos)
        << refused.error().message;
  }
  ScopedEnv enough("EDGELLM_MEM_AVAILABLE_MB", "6");
  EXPECT_TRUE(LoadedModel::load(dir.file("m.enc"), o).ok());
}

TEST(EncryptedModels, AGgufReaderOpeningAnEncryptedFileAsksForItsKey) {
  test::TempDir dir;
  const std::string plain = test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2), DType::kF32);
  const ModelKey key = ModelKey::generate();
  ASSERT_TRUE(encrypt_model_file(plain, dir.file("m.enc"), key).ok());
  auto g = GgufFile::open(dir.file("m.enc"));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.error().message.find("m.enc: an encrypted model file: give its key"), std::string::npos);
}

}  // namespace
}  // namespace edgellm
