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
//   applies_to = ["input", "output"]   # default ["input"]; "output": also the model's reply
//
// Blocklists look at the text users write: user messages (and system ones: a client controls both) of a
// chat, the prompt of a completion; not at earlier assistant turns. A request that breaks a rule gets 400
// with the rule's reason (code "input_filtered"), counted in edgellm_filter_blocks_total{rule}.
//
// Rules that apply to the output screen the reply as it is generated (OutputScreen): text that could be the
// start of a match is held back until the next tokens decide it, so a blocked phrase never reaches the
// client, not even in part; a match ends the generation, and the reply ends with finish reason
// "content_filter", counted in edgellm_output_filter_blocks_total{rule}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.h"

namespace edgellm::server {

struct BlockRule {
  std::string name;
  std::vector<std::string> words;  // or
  std::string regex;
  std::string reason;
  bool on_input = true;    // applies_to has "input"
  bool on_output = false;  // applies_to has "output"
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

  // The first input rule whose pattern occurs in `text` (valid UTF-8), or nullptr.
  const BlockRule* find_blocked(const std::string& text) const;
  // Whether any rule applies to the model's output.
  bool screens_output() const;

  InputFilters(const InputFilters&) = delete;
  InputFilters& operator=(const InputFilters&) = delete;

 private:
  InputFilters() = default;
  InputFilterConfig config_;
  std::vector<void*> patterns_;  // pcre2_code*, one per rule
  friend class OutputScreen;
};

// Screens one reply against the output rules while it is generated (one per request; not thread-safe).
// Text goes in piece by piece; the screen says how much of it is decided: either safe to send (no output
// rule can match text that ends there, whatever comes next) or blocked (a rule matched; the text before
// the match is safe). Invalid UTF-8 in the pieces is screened as U+FFFD.
class OutputScreen {
 public:
  explicit OutputScreen(std::shared_ptr<const InputFilters> filters);
  ~OutputScreen();

  struct Verdict {
    size_t safe_end = 0;                // bytes of text() that can be sent
    const BlockRule* blocked = nullptr;  // the rule that matched (then safe_end is where its match starts)
  };
  // Adds the next piece of the reply.
  Verdict append(std::string_view piece);
  // The reply has ended: text held back for a match that might have continued is decided now.
  Verdict finish();
  // The reply so far, as screened (bytes of the pieces, invalid UTF-8 replaced).
  const std::string& text() const { return text_; }

  OutputScreen(const OutputScreen&) = delete;
  OutputScreen& operator=(const OutputScreen&) = delete;

 private:
  Verdict screen(bool at_end);
  std::shared_ptr<const InputFilters> filters_;
  std::string text_;
  std::string utf8_carry_;   // the start of a character split between pieces
  size_t safe_end_ = 0;
  void* match_data_ = nullptr;  // pcre2_match_data*, large enough for every rule
};

// Characters (code points) of UTF-8 text.
int64_t utf8_length(const std::string& text);

}  // namespace edgellm::server
