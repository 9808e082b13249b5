#include "runtime/stop_matcher.h"

#include <algorithm>
#include <utility>

namespace edgellm {
namespace {

// Length of an incomplete UTF-8 sequence at the end of `text` (0 if the text ends on a character boundary
// or the tail is not valid UTF-8, which is passed through rather than held forever).
size_t incomplete_utf8_tail(std::string_view text) {
  const size_t max_back = std::min<size_t>(text.size(), 3);
  for (size_t back = 1; back <= max_back; ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    size_t needed = 0;
    if ((byte & 0xE0) == 0xC0) needed = 2;
    else if ((byte & 0xF0) == 0xE0) needed = 3;
    else if ((byte & 0xF8) == 0xF0) needed = 4;
    return needed > back ? back : 0;  // ASCII or invalid lead bytes: nothing to wait for
  }
  return 0;
}

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
size_t partial_match_tail(std::string_view text, std::string_view stop) {
  const size_t longest = std::min(text.size(), stop.size() - 1);
  for (size_t len = longest; len > 0; --len) {
    if (text.substr(text.size() - len) == stop.substr(0, len)) return len;
  }
  return 0;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stop_strings) {
  for (std::string& s : stop_strings) {
    if (!s.empty()) stop_strings_.push_back(std::move(s));
  }
}

StopMatcher::Result StopMatcher::push(std::string_view chunk) {
  Result result;
  if (stopped_) {
    result.stopped = true;
    result.matched = matched_;
    return result;
  }
  pending_.append(chunk);

  // Earliest-ending match, then the longest: what byte-at-a-time feeding would report first. The held
  // text never contained a complete match, so any match here uses new bytes.
  const std::string* best = nullptr;
  size_t best_end = std::string::npos;
  for (const std::string& stop : stop_strings_) {
    const size_t pos = pending_.find(stop);
    if (pos == std::string::npos) continue;
    const size_t end = pos + stop.size();
    if (end < best_end || (end == best_end && stop.size() > best->size())) {
      best = &stop;
      best_end = end;
    }
  }
  if (best != nullptr) {
    result.emit = pending_.substr(0, best_end - best->size());
    result.stopped = true;
    result.matched = *best;
    stopped_ = true;
    matched_ = *best;
    pending_.clear();
    return result;
  }

  size_t hold = incomplete_utf8_tail(pending_);
  for (const std::string& stop : stop_strings_) hold = std::max(hold, partial_match_tail(pending_, stop));
  result.emit = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return result;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, std::string());
}

}  // namespace edgellm
