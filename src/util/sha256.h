// SHA-256 (OpenSSL's implementation), incremental; hex digests for file provenance and integrity.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "util/expected.h"

namespace edgellm {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t n);
  std::string hex_digest();  // finishes the hash; 64 lowercase hex characters

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// SHA-256 of a whole file, read in chunks (never whole into RAM).
Expected<std::string> sha256_file(const std::string& path);

}  // namespace edgellm
