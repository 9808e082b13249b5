// The vocabulary as a byte trie, for finding every token a grammar state allows in one walk: tokens that share
// a prefix share the work of matching it, and a prefix the grammar rejects removes its whole subtree at once.
//
// Nodes are numbered in depth-first order, so a node's subtree is the id range [id, subtree_end) and the
// tokens below it are a contiguous range of `tokens()`. Built once per tokenizer (~0.1 s and ~15 MB for
// Qwen's 151,936 tokens) and shared by every grammar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace edgellm {

class Tokenizer;

class TokenTrie {
 public:
  struct Node {
    uint32_t subtree_end;  // one past the last node of this subtree
    uint32_t token_begin;  // tokens()[token_begin, token_here_end): tokens whose bytes end at this node
    uint32_t token_here_end;
    uint32_t token_end;    // tokens()[token_begin, token_end): every token in the subtree
    uint16_t depth;        // bytes from the root
    uint8_t byte;          // the byte on the edge into this node
  };

  // Every token that decodes to text, i.e. not special or control tokens and not empty. `end_tokens` are the
  // model's end-of-generation tokens: a grammar allows them only where it may finish.
  static std::shared_ptr<const TokenTrie> build(const Tokenizer& tokenizer, std::vector<int32_t> end_tokens);
  // From raw token bytes (tests); tokens with empty bytes are left out.
  static std::shared_ptr<const TokenTrie> build(const std::vector<std::string>& token_bytes,
                                                std::vector<int32_t> end_tokens);

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  const std::string& token_bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
  const std::vector<int32_t>& end_tokens() const { return end_tokens_; }
  int32_t n_vocab() const { return static_cast<int32_t>(bytes_.size()); }
  size_t max_depth() const { return max_depth_; }  // bytes of the longest token
  size_t n_mask_words() const { return (bytes_.size() + 63) / 64; }

 private:
  std::vector<Node> nodes_;
  std::vector<int32_t> tokens_;
  std::vector<std::string> bytes_;  // by id; empty for tokens a grammar never produces
  std::vector<int32_t> end_tokens_;
  size_t max_depth_ = 0;
};

}  // namespace edgellm
