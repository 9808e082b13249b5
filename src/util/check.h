// EDGELLM_CHECK: programmer errors only (broken invariants). User input never trips it; it returns an Error.
#pragma once

#include <cstdio>
#include <cstdlib>

#define EDGELLM_CHECK(cond)                                                          \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "edgellm: internal check failed at %s:%d: %s\n", __FILE__, \
                   __LINE__, #cond);                                                 \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)
