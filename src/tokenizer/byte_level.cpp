#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace edgellm {

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_cp_.fill(-1);
  uint32_t next_extra = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? b : next_extra++;
    append_utf8(cp, chars_[b]);
    byte_of_cp_[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += chars_[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> ByteLevelAlphabet::decode(std::string_view text) const {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t len = utf8_sequence_length(text, pos);
    if (len == 0) return std::nullopt;
    const uint32_t cp = decode_utf8_at(text, pos, len);
    if (cp >= byte_of_cp_.size() || byte_of_cp_[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(byte_of_cp_[cp]));
    pos += len;
  }
  return out;
}

}  // namespace edgellm
