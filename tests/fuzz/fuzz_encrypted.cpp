// The encrypted-model reader (security/encrypted_model.h): header, sizes, key id, chunk authentication and
// tags, with the fixed key below (the seeds are files encrypted with it, so the fuzzer reaches past the
// header). A file that decrypts must have exactly the header's plaintext size.
#include "fuzz_support.h"

#include <sys/mman.h>

#include "security/encrypted_model.h"

namespace {

const edgellm::ModelKey& fuzz_key() {
  static const edgellm::ModelKey key = [] {
    std::string raw(32, '\0');
    for (int i = 0; i < 32; ++i) raw[i] = static_cast<char>(i + 1);
    return edgellm::ModelKey::parse(raw, "fuzz key").value();
  }();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)edgellm::fuzz::scratch_dir();
  const int fd = ::memfd_create("encrypted", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (size > 0 && ::write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  ::lseek(fd, 0, SEEK_SET);
  uint64_t total = 0;
  edgellm::EncryptedModelInfo info;
  const edgellm::Status st = edgellm::decrypt_model_stream(
      fd, size, "input", fuzz_key(), nullptr,
      [&](const uint8_t*, size_t n) -> edgellm::Status {
        total += n;
        return {};
      },
      &info);
  if (st.ok() && total != info.plaintext_bytes) std::abort();
  ::close(fd);
  return 0;
}
