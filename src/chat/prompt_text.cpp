#include "chat/prompt_text.h"

#include <cstdint>

namespace edgellm::chat_detail {

void PromptBuilder::append(std::string_view text, bool allow_special) {
  if (text.empty()) return;
  if (!segments_.empty() && segments_.back().allow_special == allow_special) {
    segments_.back().text.append(text);
  } else {
    segments_.push_back(PromptSegment{std::string(text), allow_special});
  }
}

void PromptBuilder::append(const std::vector<PromptSegment>& pieces) {
  for (const PromptSegment& piece : pieces) append(piece.text, piece.allow_special);
}

bool is_python_space(char32_t cp) {
  // The full list printed by `[c for c in range(0x110000) if chr(c).isspace()]` (CPython 3.11).
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {

// Decodes the code point starting at text[pos] of valid UTF-8; returns its length in bytes.
size_t decode_at(std::string_view text, size_t pos, char32_t* cp) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  size_t len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  if (pos + len > text.size()) len = 1;  // unreachable for validated input; stay in bounds anyway
  char32_t value = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t i = 1; i < len; ++i) value = (value << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3F);
  *cp = value;
  return len;
}

// Start of the code point that ends just before `end` (valid UTF-8).
size_t previous_start(std::string_view text, size_t end) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

size_t leading_space_bytes(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp = 0;
    const size_t len = decode_at(text, pos, &cp);
    if (!is_python_space(cp)) break;
    pos += len;
  }
  return pos;
}

size_t trailing_space_start(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    const size_t start = previous_start(text, end);
    char32_t cp = 0;
    decode_at(text, start, &cp);
    if (!is_python_space(cp)) break;
    end = start;
  }
  return end;
}

}  // namespace

std::string_view python_lstrip(std::string_view text) { return text.substr(leading_space_bytes(text)); }
std::string_view python_rstrip(std::string_view text) { return text.substr(0, trailing_space_start(text)); }
std::string_view python_strip(std::string_view text) { return python_lstrip(python_rstrip(text)); }

std::string_view lstrip_char(std::string_view text, char c) {
  const size_t pos = text.find_first_not_of(c);
  return pos == std::string_view::npos ? std::string_view() : text.substr(pos);
}

std::string_view rstrip_char(std::string_view text, char c) {
  const size_t pos = text.find_last_not_of(c);
  return pos == std::string_view::npos ? std::string_view() : text.substr(0, pos + 1);
}

std::string_view strip_char(std::string_view text, char c) { return lstrip_char(rstrip_char(text, c), c); }

void python_strip_pieces(std::vector<PromptSegment>& pieces) {
  // Strip from the right across pieces until one keeps a non-space character, then from the left.
  for (size_t i = pieces.size(); i-- > 0;) {
    std::string& text = pieces[i].text;
    text.resize(trailing_space_start(text));
    if (!text.empty()) break;
  }
  for (PromptSegment& piece : pieces) {
    std::string& text = piece.text;
    text.erase(0, leading_space_bytes(text));
    if (!text.empty()) break;
  }
  std::erase_if(pieces, [](const PromptSegment& piece) { return piece.text.empty(); });
}

size_t find_invalid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const auto b0 = static_cast<unsigned char>(text[pos]);
    if (b0 < 0x80) {
      ++pos;
      continue;
    }
    size_t len = 0;
    char32_t min_value = 0;
    char32_t value = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, min_value = 0x80, value = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, min_value = 0x800, value = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, min_value = 0x10000, value = b0 & 0x07;
    } else {
      return pos;  // continuation byte, overlong lead C0/C1, or F5..FF
    }
    if (pos + len > text.size()) return pos;
    for (size_t i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(text[pos + i]);
      if ((b & 0xC0) != 0x80) return pos;
      value = (value << 6) | (b & 0x3F);
    }
    if (value < min_value || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return pos;
    pos += len;
  }
  return std::string_view::npos;
}

}  // namespace edgellm::chat_detail
