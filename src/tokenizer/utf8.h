// UTF-8 helpers for the tokenizer: validation, lossy decoding, code point iteration.
// Lossy decoding follows the Unicode "maximal subpart" practice (Unicode 15, section 3.9, U+FFFD
// substitution), which is also what Rust's String::from_utf8_lossy and Python's errors="replace" do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgellm {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[pos]: 1..4, or 0 if the bytes there are not a
// complete valid sequence. `*maximal_subpart` (optional) receives, for an invalid or truncated
// sequence, the number of bytes that form its maximal subpart (>= 1); for a truncated but so far
// valid sequence at the end of `s` it equals the remaining byte count.
size_t utf8_sequence_length(std::string_view s, size_t pos, size_t* maximal_subpart = nullptr);

// Byte offset of the first invalid UTF-8 byte, or nullopt if `s` is entirely valid.
std::optional<size_t> find_invalid_utf8(std::string_view s);

// Appends `s` to `out`, replacing each maximal invalid subpart by U+FFFD.
void append_utf8_lossy(std::string_view s, std::string& out);
inline std::string utf8_lossy(std::string_view s) {
  std::string out;
  append_utf8_lossy(s, out);
  return out;
}

// Length of the longest prefix of `s` that can be emitted now by a streaming decoder: everything
// except a trailing sequence that is a valid but incomplete start of a character.
size_t utf8_complete_prefix_length(std::string_view s);

// Appends the UTF-8 encoding of code point `cp` (must be <= 0x10FFFF and not a surrogate).
void append_utf8(uint32_t cp, std::string& out);

// Decodes the valid sequence at s[pos] of length `len` (from utf8_sequence_length).
uint32_t decode_utf8_at(std::string_view s, size_t pos, size_t len);

}  // namespace edgellm
