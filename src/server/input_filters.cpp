#include "server/input_filters.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

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
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    filters->patterns_.push_back(code);
  }
  return std::shared_ptr<const InputFilters>(std::move(filters));
}

InputFilters::~InputFilters() {
  for (void* p : patterns_) pcre2_code_free(static_cast<pcre2_code*>(p));
}

const BlockRule* InputFilters::find_blocked(const std::string& text) const {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    auto* code = static_cast<pcre2_code*>(patterns_[i]);
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md, nullptr);
    pcre2_match_data_free(md);
    if (rc >= 0) return &config_.block[i];
  }
  return nullptr;
}

}  // namespace edgellm::server
