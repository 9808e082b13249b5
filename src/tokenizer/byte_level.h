// The GPT-2 "ByteLevel" alphabet: every byte maps to one printable Unicode character so that a byte
// string can be stored as text in a vocabulary. Bytes 0x21..0x7E, 0xA1..0xAC and 0xAE..0xFF map to the
// code point of the same value; the other 68 bytes map, in increasing order, to U+0100, U+0101, ...
// (openai/gpt-2: src/encoder.py, bytes_to_unicode; used by Hugging Face's ByteLevel pre-tokenizer).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgellm {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();

  // UTF-8 of the character for byte `b`.
  const std::string& char_of(uint8_t b) const { return chars_[b]; }
  // Maps every byte of `bytes` to its character.
  std::string encode(std::string_view bytes) const;
  // Inverse of encode; nullopt if a character of `text` is not in the alphabet (or `text` is not
  // valid UTF-8).
  std::optional<std::string> decode(std::string_view text) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> chars_;
  std::array<int16_t, 324> byte_of_cp_;  // code point (< 324) -> byte, -1 if none
};

}  // namespace edgellm
