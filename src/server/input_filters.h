// Input filters of `edgellm serve` ([filters] in the config file): limits on a request's size and
// blocklists on what users write.
//
//   [filters]
//   max_prompt_chars = 20000     # characters (code points) of the messages' text, or of the prompt
//   max_prompt_tokens = 3000     # tokens of the rendered prompt
//   max_messages = 64
//   [[filters.block]]
//   name = "weapons"             # metrics label and log
//   words = ["bomb", "炸弹"]      # any of these, case-folded (Unicode), anywhere in the text
//   reason = "questions about weapons are not answered here"   # what the client is told
//   [[filters.block]]
//   name = "card-numbers"
//   regex = '\b(?:\d[ -]?){13,16}\b'   # PCRE2, UTF and Unicode properties on, case-insensitive
//   reason = "do not send card numbers"
//
// Blocklists look at the text users write: user messages (and system ones: a client controls both) of a
// chat, the prompt of a completion; not at earlier assistant turns. A request that breaks a rule gets 400
// with the rule's reason (code "input_filtered"), counted in edgellm_filter_blocks_total{rule}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "util/expected.h"

namespace edgellm::server {

struct BlockRule {
  std::string name;
  std::vector<std::string> words;  // or
  std::string regex;
  std::string reason;
};

struct InputFilterConfig {
  int64_t max_prompt_chars = 0;   // 0: no limit
  int64_t max_prompt_tokens = 0;
  int64_t max_messages = 0;
  std::vector<BlockRule> block;
  bool any() const { return max_prompt_chars > 0 || max_prompt_tokens > 0 || max_messages > 0 || !block.empty(); }
};

// The compiled blocklists. Thread-safe to use from many requests at once.
class InputFilters {
 public:
  // Errors: a regex that does not compile (with PCRE2's message and offset), a rule with neither words nor
  // regex or with both, an empty word.
  static Expected<std::shared_ptr<const InputFilters>> compile(const InputFilterConfig& config);
  ~InputFilters();

  const InputFilterConfig& config() const { return config_; }

  // The first rule whose pattern occurs in `text` (valid UTF-8), or nullptr.
  const BlockRule* find_blocked(const std::string& text) const;

  InputFilters(const InputFilters&) = delete;
  InputFilters& operator=(const InputFilters&) = delete;

 private:
  InputFilters() = default;
  InputFilterConfig config_;
  std::vector<void*> patterns_;  // pcre2_code*, one per rule
};

// Characters (code points) of UTF-8 text.
int64_t utf8_length(const std::string& text);

}  // namespace edgellm::server
