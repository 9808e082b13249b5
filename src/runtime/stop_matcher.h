// Stop strings in streamed text. The detokenizer hands out text in arbitrary chunks, and a stop string can
// span several of them, so text that could be the start of a stop string is held back until it is known
// not to be one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgellm {

class StopMatcher {
 public:
  // Empty strings in `stop_strings` are ignored (they would stop before the first byte). Matching is on
  // bytes, so UTF-8 stop strings work as long as the text is UTF-8.
  explicit StopMatcher(std::vector<std::string> stop_strings);

  struct Result {
    std::string emit;     // text that is safe to show now
    bool stopped = false;  // a stop string completed: generation should end
    std::string matched;   // which one (when stopped)
  };

  // Feeds one decoded chunk. Returns the text safe to emit now: everything except a tail that could still
  // become a stop string, and except an incomplete UTF-8 sequence at the very end (so emitted text always
  // ends on a character boundary when the input is valid UTF-8). When a stop string completes, the text
  // before it is emitted and the stop string and everything after it are dropped. If several complete in
  // the same chunk, the one that ends first wins (then the longest), which is what feeding the text one
  // byte at a time would give, so the result does not depend on how the text was chunked. After a stop,
  // further pushes return nothing and report the same stop.
  Result push(std::string_view chunk);

  // End of generation: returns the held-back text (empty after a stop).
  std::string flush();

  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stop_strings_;
  std::string pending_;  // held-back text: a possible stop-string prefix and/or a partial UTF-8 sequence
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace edgellm
