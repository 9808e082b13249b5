// Signed model files (security/minisign.h): key and signature formats, what a failed check says, and the
// loader refusing an unsigned or tampered model when a public key is required. The real `minisign` tool
// checks the formats in tests/python/test_signatures.py.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "runtime/loaded_model.h"
#include "security/minisign.h"
#include "support/test_env.h"
#include "support/tiny_models.h"

namespace edgellm {
namespace {

void flip_byte(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

class Signatures : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.file("model.bin");
    std::string data(300000, '\0');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
    test::write_file(file_, data);
    key_ = generate_minisign_key();
  }
  std::string sign(const std::string& comment = "file:model.bin") {
    auto sig = sign_file(file_, key_, comment);
    EXPECT_TRUE(sig.ok()) << sig.error().message;
    return *sig;
  }
  std::string check(const std::string& sig, const MinisignPublicKey& pk) {
    const Status st = verify_file(file_, sig, pk);
    return st.ok() ? std::string("ok") : st.error().message;
  }
  test::TempDir dir_;
  std::string file_;
  MinisignSecretKey key_;
};

TEST_F(Signatures, KeysRoundTripThroughTheirFiles) {
  const MinisignPublicKey pk = key_.public_key();
  auto parsed = parse_public_key(format_public_key(pk));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->key, pk.key);
  EXPECT_EQ(parsed->key_id, pk.key_id);
  EXPECT_EQ(pk.key_id_hex().size(), 16u);
  // The bare base64 line (minisign -P) is a public key too.
  const std::string text = format_public_key(pk);
  const std::string line = text.substr(text.find('\n') + 1, text.size() - text.find('\n') - 2);
  EXPECT_TRUE(parse_public_key(line).ok());
  test::write_file(dir_.file("k.key"), format_secret_key(key_));
  auto sk = read_secret_key(dir_.file("k.key"));
  ASSERT_TRUE(sk.ok()) << sk.error().message;
  EXPECT_EQ(sk->key, key_.key);
  // A damaged secret key fails its checksum instead of signing with garbage.
  std::string damaged = format_secret_key(key_);
  const size_t at = damaged.find('\n') + 150;
  damaged[at] = damaged[at] == 'A' ? 'B' : 'A';
  test::write_file(dir_.file("bad.key"), damaged);
  auto bad = read_secret_key(dir_.file("bad.key"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("checksum mismatch"), std::string::npos) << bad.error().message;
}

TEST_F(Signatures, VerifyNamesWhatFailed) {
  const std::string sig = sign();
  const MinisignPublicKey pk = key_.public_key();
  EXPECT_EQ(check(sig, pk), "ok");
  std::string comment;
  ASSERT_TRUE(verify_file(file_, sig, pk, &comment).ok());
  EXPECT_EQ(comment, "file:model.bin");

  const MinisignPublicKey other = generate_minisign_key().public_key();
  EXPECT_EQ(check(sig, other), "signed with key " + pk.key_id_hex() + ", not with the trusted key " + other.key_id_hex());

  std::string edited = sig;
  edited.replace(edited.find("file:model.bin"), 14, "file:other.bin");
  EXPECT_EQ(check(edited, pk), "the trusted comment does not match its signature (it was edited)");
  // The untrusted comment is free to change.
  std::string relabelled = sig;
  relabelled.replace(0, relabelled.find('\n'), "untrusted comment: anything");
  EXPECT_EQ(check(relabelled, pk), "ok");

  EXPECT_NE(check("untrusted comment: x\nAAAA\n", pk).find("expected 4 lines"), std::string::npos);
  std::string broken = sig;
  broken[broken.find('\n') + 5] = '*';
  EXPECT_EQ(check(broken, pk), "signature: a base64 line is damaged");

  flip_byte(file_, 123456);
  EXPECT_EQ(check(sig, pk),
            "the signature does not match the file's contents (the file was modified, truncated or replaced)");
  EXPECT_NE(sign_file(file_, key_, "two\nlines").error().message.find("one line"), std::string::npos);
}

TEST(SignedModels, TheLoaderRefusesUnsignedAndTamperedModels) {
  test::TempDir dir;
  const std::string model = test::write_tiny_gguf(dir.path(), test::tiny_config(Arch::kQwen2), DType::kF32);
  const MinisignSecretKey key = generate_minisign_key();
  test::write_file(dir.file("trusted.pub"), format_public_key(key.public_key()));
  LoadOptions o;
  o.require_signature = dir.file("trusted.pub");

  auto unsigned_model = LoadedModel::load(model, o);
  ASSERT_FALSE(unsigned_model.ok());
  EXPECT_NE(unsigned_model.error().message.find("not signed (no " + model + ".minisig)"), std::string::npos)
      << unsigned_model.error().message;

  test::write_file(model + ".minisig", *sign_file(model, key, "release 1"));
  auto signed_model = LoadedModel::load(model, o);
  EXPECT_TRUE(signed_model.ok()) << signed_model.error().message;
  EXPECT_TRUE(LoadedModel::load(model).ok());  // no key required: loads either way

  flip_byte(model, 100);  // inside the GGUF header's metadata
  auto tampered = LoadedModel::load(model, o);
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.error().message.find("signature check failed: the signature does not match the file's contents"),
            std::string::npos)
      << tampered.error().message;

  // The environment variable is the same requirement for programs that do not pass one.
  ::setenv("EDGELLM_REQUIRE_SIGNATURE", dir.file("trusted.pub").c_str(), 1);
  auto from_env = LoadedModel::load(model);
  ::unsetenv("EDGELLM_REQUIRE_SIGNATURE");
  ASSERT_FALSE(from_env.ok());
  EXPECT_NE(from_env.error().message.find("signature check failed"), std::string::npos);

  LoadOptions missing_key;
  missing_key.require_signature = dir.file("missing.pub");
  auto no_key = LoadedModel::load(model, missing_key);
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.error().message.find("missing.pub: cannot open"), std::string::npos) << no_key.error().message;
}

}  // namespace
}  // namespace edgellm
