#include "server/reasoning_splitter.h"

#include <algorithm>

namespace edgellm::server {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest suffix of `s` that is a proper prefix of `tag` (a tag that may still complete).
size_t partial_tag_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ReasoningSplitter::ReasoningSplitter(bool starts_in_reasoning)
    : state_(starts_in_reasoning ? State::kReasoning : State::kStart) {}

ReasoningSplitter::Pieces ReasoningSplitter::push(std::string_view text) {
  pending_ += text;
  Pieces out;
  step(out, false);
  return out;
}

ReasoningSplitter::Pieces ReasoningSplitter::flush() {
  Pieces out;
  step(out, true);
  return out;
}

void ReasoningSplitter::step(Pieces& out, bool final) {
  for (;;) {
    switch (state_) {
      case State::kStart: {
        // Leading whitespace, then "<think>" opens the reasoning; anything else is the answer.
        size_t i = 0;
        while (i < pending_.size() && is_space(pending_[i])) ++i;
        const std::string_view rest = std::string_view(pending_).substr(i);
        if (rest.substr(0, kOpen.size()) == kOpen) {
          pending_.erase(0, i + kOpen.size());
          state_ = State::kReasoning;
          continue;
        }
        if (!final && kOpen.substr(0, rest.size()) == rest) return;  // may still become "<think>"
        state_ = State::kAnswer;
        continue;
      }
      case State::kReasoning: {
        const size_t close = pending_.find(kClose);
        if (close != std::string::npos) {
          out.reasoning += pending_.substr(0, close);
          pending_.erase(0, close + kClose.size());
          state_ = State::kAnswerStart;
          continue;
        }
        const size_t keep = final ? 0 : partial_tag_suffix(pending_, kClose);
        out.reasoning += pending_.substr(0, pending_.size() - keep);
        pending_.erase(0, pending_.size() - keep);
        return;
      }
      case State::kAnswerStart: {
        // The newlines between "</think>" and the answer belong to neither.
        size_t i = 0;
        while (i < pending_.size() && is_space(pending_[i])) ++i;
        pending_.erase(0, i);
        if (pending_.empty()) return;
        state_ = State::kAnswer;
        continue;
      }
      case State::kAnswer:
        out.content += pending_;
        pending_.clear();
        return;
    }
  }
}

}  // namespace edgellm::server
