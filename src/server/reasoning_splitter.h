// Splits a reasoning model's reply (Qwen3: "<think>\n...\n</think>\n\nanswer") into its reasoning and its
// answer as the text streams in, the way llama-server and vLLM return `reasoning_content` beside
// `content`. A tag split across pieces is held back until it is complete (or known not to be one).
#pragma once

#include <string>
#include <string_view>

namespace edgellm::server {

class ReasoningSplitter {
 public:
  // starts_in_reasoning: the prompt already opened the think block (a template whose generation prompt
  // ends with "<think>\n"), so the reply starts with reasoning and only "</think>" closes it.
  explicit ReasoningSplitter(bool starts_in_reasoning = false);

  struct Pieces {
    std::string reasoning;
    std::string content;
  };
  Pieces push(std::string_view text);
  // End of the reply: whatever is held back.
  Pieces flush();

 private:
  enum class State { kStart, kReasoning, kAnswerStart, kAnswer };
  void step(Pieces& out, bool final);
  State state_;
  std::string pending_;
};

}  // namespace edgellm::server
