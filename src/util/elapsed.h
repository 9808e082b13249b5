#pragma once
// Seconds elapsed on the monotonic clock, for the timings the commands print.
#include <chrono>

namespace edgellm {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace edgellm
