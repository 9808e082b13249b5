#include "server/input_filters.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

namespace edgellm::server {
namespace {

// A word as a literal inside a pattern: every character that is not a letter or digit escaped (\Q...\E
// would end early at a "\E" inside the word).
std::string literal_pattern(const std::string& word) {
  std::string out;
  for (unsigned char c : word) {
    const bool plain = c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!plain) out += '\\';
    out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

int64_t utf8_length(const std::string& text) {
  int64_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

Expected<std::shared_ptr<const InputFilters>> InputFilters::compile(const InputFilterConfig& config) {
  std::shared_ptr<InputFilters> filters(new InputFilters());
  filters->config_ = config;
  for (const BlockRule& rule : config.block) {
    if (rule.words.empty() == rule.regex.empty()) {
      return make_error(ErrorCode::kInvalidArgument,
                        "filter rule '" + rule.name + "' needs either words or regex (one of them)");
    }
    std::string pattern = rule.regex;
    if (pattern.empty()) {
      for (const std::string& w : rule.words) {
        if (w.empty()) {
          return make_error(ErrorCode::kInvalidArgument, "filter rule '" + rule.name + "' has an empty word");
        }
        if (!pattern.empty()) pattern.push_back('|');
        pattern.append(literal_pattern(w));
      }
    }
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // Case-folded with Unicode's rules (PCRE2_UCP), the subject and pattern UTF-8 (checked at compile time
    // for the pattern; subjects come from parsed JSON, which is valid UTF-8).
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &error_code, &error_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof message);
      return make_error(ErrorCode::kInvalidArgument, "filter rule '" + rule.name + "': the regex does not compile at " +
                                                         "offset " + std::to_string(error_offset) + ": " +
                                                         reinterpret_cast<const char*>(message));
    }
    // Falls back to the interpreter if JIT is unavailable. Output rules also match partially (OutputScreen).
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE | (rule.on_output ? PCRE2_JIT_PARTIAL_HARD : 0));
    filters->patterns_.push_back(code);
  }
  return std::shared_ptr<const InputFilters>(std::move(filters));
}

InputFilters::~InputFilters() {
  for (void* p : patterns_) pcre2_code_free(static_cast<pcre2_code*>(p));
}

const BlockRule* InputFilters::find_blocked(const std::string& text) const {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (!config_.block[i].on_input) continue;
    auto* code = static_cast<pcre2_code*>(patterns_[i]);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    if (rc >= 0) return &config_.block[i];
  }
  return nullptr;
}

bool InputFilters::screens_output() const {
  for (const BlockRule& rule : config_.block) {
    if (rule.on_output) return true;
  }
  return false;
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 if the bytes there are not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  const bool overlong = (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  return overlong || surrogate || cp > 0x10FFFF ? 0 : n;
}

}  // namespace

OutputScreen::OutputScreen(std::shared_ptr<const InputFilters> filters) : filters_(std::move(filters)) {
  match_data_ = pcre2_match_data_create(1, nullptr);  // the whole match's offsets are all we read
}

OutputScreen::~OutputScreen() { pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_)); }

OutputScreen::Verdict OutputScreen::append(std::string_view piece) {
  for (size_t i = 0; i < piece.size();) {
    const size_t n = utf8_sequence_length(piece, i);
    if (n == 0) {
      text_ += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      text_.append(piece.substr(i, n));
      i += n;
    }
  }
  return screen(/*at_end=*/false);
}

OutputScreen::Verdict OutputScreen::finish() { return screen(/*at_end=*/true); }

OutputScreen::Verdict OutputScreen::screen(bool at_end) {
  auto* md = static_cast<pcre2_match_data*>(match_data_);
  Verdict v;
  size_t hold_from = text_.size();
  size_t blocked_at = text_.size() + 1;
  for (size_t i = 0; i < filters_->patterns_.size(); ++i) {
    const BlockRule& rule = filters_->config_.block[i];
    if (!rule.on_output) continue;
    auto* code = static_cast<pcre2_code*>(filters_->patterns_[i]);
    // While the reply goes on, a match that reaches the end of the text so far is partial: more text
    // could complete it (or, for a pattern like \d{13,16}, lengthen it), so it is held back.
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text_.data()), text_.size(), safe_end_,
                               (at_end ? 0 : PCRE2_PARTIAL_HARD) | PCRE2_NO_UTF_CHECK, md, nullptr);
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md);
    if (rc >= 0 && ovector[0] < blocked_at) {
      blocked_at = ovector[0];
      v.blocked = &rule;
    } else if (rc == PCRE2_ERROR_PARTIAL) {
      hold_from = std::min<size_t>(hold_from, ovector[0]);
    }
  }
  if (v.blocked != nullptr) {
    v.safe_end = blocked_at;
  } else {
    v.safe_end = at_end ? text_.size() : hold_from;
  }
  safe_end_ = v.safe_end;
  return v;
}

}  // namespace edgellm::server
