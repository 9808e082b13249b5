// Splits text with a pre-tokenizer regex, PCRE2 in UTF + UCP mode (JIT-compiled when available).
// Hugging Face tokenizers compiles these patterns with Oniguruma, tiktoken with Rust's fancy-regex;
// for the patterns used by GPT-2, Llama 3, Qwen 1/2/2.5/3/3.5 the three engines agree (the conformance
// test in tests/python/test_tokenizer_conformance.py checks this on the whole corpus).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/expected.h"

namespace edgellm {

// The split patterns of the vocabularies edgellm knows, as written in their tokenizer.json files.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen 1 (qwen.tiktoken PAT_STR) and Qwen2/2.5/3: like Llama 3 but one digit per piece.
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen3.5 (transformers' tokenization_qwen3_5.py): combining marks (\p{M}) join letter runs and are no
// longer punctuation; llama.cpp's pre-tokenizer name "qwen35".
inline constexpr std::string_view kQwen35Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

class RegexSplitter {
 public:
  // Compiles `pattern`; a pattern PCRE2 rejects is a kFormat error quoting PCRE2's message and offset.
  static Expected<std::unique_ptr<RegexSplitter>> compile(std::string_view pattern);
  ~RegexSplitter();
  RegexSplitter(const RegexSplitter&) = delete;
  RegexSplitter& operator=(const RegexSplitter&) = delete;

  const std::string& pattern() const { return pattern_; }

  // Calls sink(piece) for every match and for every non-empty gap between matches, in order
  // (Hugging Face's "Isolated" split behaviour). `text` must be valid UTF-8. Thread-safe.
  // Fails only if PCRE2 itself reports an error (such as a resource limit), naming the byte offset.
  template <class Sink>
  Status split(std::string_view text, Sink&& sink) const {
    Matcher m(*this, text);
    size_t start = 0, end = 0;
    size_t pos = 0;
    while (m.next(start, end)) {
      if (start > pos) sink(text.substr(pos, start - pos));
      sink(text.substr(start, end - start));
      pos = end;
    }
    if (m.failed()) return m.error();
    if (pos < text.size()) sink(text.substr(pos));
    return {};
  }

 private:
  // Iterates over the non-empty matches of the pattern in `text`.
  class Matcher {
   public:
    Matcher(const RegexSplitter& re, std::string_view text);
    ~Matcher();
    bool next(size_t& start, size_t& end);
    bool failed() const { return error_code_ != 0; }
    Error error() const;

   private:
    const RegexSplitter& re_;
    std::string_view text_;
    size_t offset_ = 0;
    void* match_data_ = nullptr;  // pcre2_match_data_8*
    int error_code_ = 0;          // a PCRE2 match error other than "no match"
  };

  RegexSplitter() = default;
  std::string pattern_;
  void* code_ = nullptr;     // pcre2_code_8*
  void* context_ = nullptr;  // pcre2_match_context_8*: lifts the backtracking limit
  bool jit_ = false;
};

}  // namespace edgellm
