#include "tokenizer/regex_splitter.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "util/log.h"

namespace edgellm {

Expected<std::unique_ptr<RegexSplitter>> RegexSplitter::compile(std::string_view pattern) {
  std::unique_ptr<RegexSplitter> re(new RegexSplitter());
  re->pattern_ = std::string(pattern);
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    return make_error(ErrorCode::kFormat, "pre-tokenizer regex '" + re->pattern_ + "': " +
                                              reinterpret_cast<char*>(message) + " at offset " +
                                              std::to_string(error_offset));
  }
  re->code_ = code;
  // PCRE2's default match limit (10 million backtracking steps) stops `\s*[\r\n]+` on a 10 MB run of
  // spaces; the split patterns backtrack at most once over each run, so no limit is needed.
  auto* context = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(context, UINT32_MAX);
  re->context_ = context;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  if (!re->jit_) EDGELLM_LOG_WARN("tokenizer: PCRE2 JIT unavailable, pre-tokenizer regex runs interpreted");
  return re;
}

RegexSplitter::~RegexSplitter() {
  pcre2_match_context_free(static_cast<pcre2_match_context*>(context_));
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

RegexSplitter::Matcher::Matcher(const RegexSplitter& re, std::string_view text) : re_(re), text_(text) {
  match_data_ = pcre2_match_data_create_from_pattern(static_cast<pcre2_code*>(re.code_), nullptr);
}

RegexSplitter::Matcher::~Matcher() { pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_)); }

bool RegexSplitter::Matcher::next(size_t& start, size_t& end) {
  auto* code = static_cast<pcre2_code*>(re_.code_);
  auto* md = static_cast<pcre2_match_data*>(match_data_);
  while (offset_ < text_.size()) {
    // The caller validated the UTF-8 once for the whole input, so PCRE2 need not re-check it.
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text_.data());
    auto* context = static_cast<pcre2_match_context*>(re_.context_);
    const int rc = re_.jit_ ? pcre2_jit_match(code, subject, text_.size(), offset_, PCRE2_NO_UTF_CHECK, md, context)
                            : pcre2_match(code, subject, text_.size(), offset_, PCRE2_NO_UTF_CHECK, md, context);
    if (rc < 0) {
      if (rc != PCRE2_ERROR_NOMATCH) error_code_ = rc;
      else offset_ = text_.size();
      return false;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
    start = ovector[0];
    end = ovector[1];
    if (end > start) {
      offset_ = end;
      return true;
    }
    // An empty match: step over one character and search again (never produced by the known patterns).
    size_t step = 1;
    while (start + step < text_.size() && (static_cast<uint8_t>(text_[start + step]) & 0xC0) == 0x80) ++step;
    offset_ = start + step;
  }
  return false;
}

Error RegexSplitter::Matcher::error() const {
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(error_code_, message, sizeof(message));
  return make_error(ErrorCode::kInternal, "pre-tokenizer regex failed at byte " + std::to_string(offset_) +
                                              " of a " + std::to_string(text_.size()) + "-byte text: " +
                                              reinterpret_cast<char*>(message));
}

}  // namespace edgellm
