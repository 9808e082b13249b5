// SHA-256 (OpenSSL's implementation), incremental; hex digests for file provenance and integrity.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
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

// SHA-256 of `n` bytes in one call (no allocation).
std::array<uint8_t, 32> sha256_digest(const void* data, size_t n);

// SHA-256 of a whole file, read in chunks (never whole into RAM).
Expected<std::string> sha256_file(const std::string& path);

}  // namespace edgellm
