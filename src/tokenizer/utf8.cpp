#include "tokenizer/utf8.h"

namespace edgellm {

namespace {

// Table 3-7 of the Unicode standard ("Well-Formed UTF-8 Byte Sequences"): the allowed range of the
// second byte depends on the lead byte; later bytes are always 80..BF.
struct LeadInfo {
  uint8_t length;  // 0 = not a valid lead byte
  uint8_t second_lo, second_hi;
};

LeadInfo lead_info(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b < 0xC2) return {0, 0, 0};
  if (b < 0xE0) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b < 0xF0) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b < 0xF4) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

size_t utf8_sequence_length(std::string_view s, size_t pos, size_t* maximal_subpart) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  const LeadInfo info = lead_info(b0);
  if (info.length == 1) return 1;
  if (info.length == 0) {
    if (maximal_subpart) *maximal_subpart = 1;
    return 0;
  }
  size_t n_ok = 1;  // bytes of the sequence that are valid so far
  for (size_t i = 1; i < info.length; ++i) {
    if (pos + i >= s.size()) break;
    const auto b = static_cast<uint8_t>(s[pos + i]);
    const uint8_t lo = i == 1 ? info.second_lo : 0x80;
    const uint8_t hi = i == 1 ? info.second_hi : 0xBF;
    if (b < lo || b > hi) break;
    ++n_ok;
  }
  if (n_ok == info.length) return n_ok;
  if (maximal_subpart) *maximal_subpart = n_ok;
  return 0;
}

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    // ASCII fast path, 8 bytes at a time.
    while (pos + 8 <= s.size()) {
      uint64_t word;
      __builtin_memcpy(&word, s.data() + pos, 8);
      if (word & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    const size_t len = utf8_sequence_length(s, pos);
    if (len == 0) return pos;
    pos += len;
  }
  return std::nullopt;
}

void append_utf8_lossy(std::string_view s, std::string& out) {
  size_t pos = 0;
  size_t run_start = 0;  // start of the pending valid run
  while (pos < s.size()) {
    size_t subpart = 0;
    const size_t len = utf8_sequence_length(s, pos, &subpart);
    if (len > 0) {
      pos += len;
      continue;
    }
    out.append(s.substr(run_start, pos - run_start));
    out.append(kReplacementChar);
    pos += subpart;
    run_start = pos;
  }
  out.append(s.substr(run_start));
}

size_t utf8_complete_prefix_length(std::string_view s) {
  // Only the last (up to) 3 bytes can be an unfinished character.
  const size_t n = s.size();
  const size_t lookback = n < 3 ? n : 3;
  for (size_t back = 1; back <= lookback; ++back) {
    const size_t pos = n - back;
    const auto b = static_cast<uint8_t>(s[pos]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte: its lead may be further back
    const LeadInfo info = lead_info(b);
    if (info.length <= back) return n;  // ASCII, invalid lead, or a complete sequence
    size_t subpart = 0;
    if (utf8_sequence_length(s, pos, &subpart) == 0 && subpart == back) return pos;  // truncated, valid so far
    return n;
  }
  return n;
}

void append_utf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

uint32_t decode_utf8_at(std::string_view s, size_t pos, size_t len) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data() + pos);
  switch (len) {
    case 1: return p[0];
    case 2: return ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    case 3: return ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    default: return ((p[0] & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
  }
}

}  // namespace edgellm
