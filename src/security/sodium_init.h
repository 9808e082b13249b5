// libsodium's one-time initialisation, for every file in src/security/ that calls it.
#pragma once

#include <sodium.h>

#include <cstdlib>

namespace edgellm {

// Thread-safe and idempotent; fails only without a random source, which nothing here could work around.
inline void init_sodium() {
  if (sodium_init() < 0) std::abort();
}

}  // namespace edgellm
