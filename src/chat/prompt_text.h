// Building blocks for the chat renderers: a segment builder and the string operations the real
// Jinja templates apply to message content, with Python's exact semantics (the templates run under
// Python jinja2 in transformers, so `trim` and `.strip()` use str.isspace()).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_template.h"

namespace edgellm::chat_detail {

// Appends template text (special tokens allowed) and message text (never special), merging adjacent
// pieces of the same kind and dropping empty ones.
class PromptBuilder {
 public:
  void special(std::string_view text) { append(text, true); }
  void content(std::string_view text) { append(text, false); }
  void append(std::string_view text, bool allow_special);
  void append(const std::vector<PromptSegment>& pieces);
  RenderedPrompt finish() && { return RenderedPrompt{std::move(segments_)}; }

 private:
  std::vector<PromptSegment> segments_;
};

// True for the code points Python's str.isspace() accepts (Unicode White_Space minus a few, plus the
// ASCII information separators U+001C..U+001F).
bool is_python_space(char32_t cp);

// Python str.strip() / lstrip() / rstrip() without arguments. `text` must be valid UTF-8.
std::string_view python_strip(std::string_view text);
std::string_view python_lstrip(std::string_view text);
std::string_view python_rstrip(std::string_view text);

// Python str.strip(chars) etc. for a single ASCII character, as in Qwen3's `.strip('\n')`.
std::string_view strip_char(std::string_view text, char c);
std::string_view lstrip_char(std::string_view text, char c);
std::string_view rstrip_char(std::string_view text, char c);

// Python str.strip() applied to the concatenation of `pieces`, keeping each piece's flag: Llama 2
// strips "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + user as one string. Empty pieces are removed.
void python_strip_pieces(std::vector<PromptSegment>& pieces);

// Byte offset of the first invalid UTF-8 sequence in `text` (overlong forms, surrogates and code
// points above U+10FFFF are invalid, as in Python's decoder), or npos if the text is valid.
size_t find_invalid_utf8(std::string_view text);

}  // namespace edgellm::chat_detail
