#include "grammar/token_trie.h"

#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace edgellm {

std::shared_ptr<const TokenTrie> TokenTrie::build(const Tokenizer& tokenizer, std::vector<int32_t> end_tokens) {
  std::vector<std::string> bytes(static_cast<size_t>(tokenizer.n_vocab()));
  for (int32_t id = 0; id < tokenizer.n_vocab(); ++id) {
    if (tokenizer.is_special(id)) continue;
    const TokenType type = tokenizer.token_type(id);
    if (type == TokenType::kControl || type == TokenType::kUnknown || type == TokenType::kUnused) continue;
    bytes[static_cast<size_t>(id)] = tokenizer.token_bytes(id);
  }
  return build(bytes, std::move(end_tokens));
}

std::shared_ptr<const TokenTrie> TokenTrie::build(const std::vector<std::string>& token_bytes,
                                                  std::vector<int32_t> end_tokens) {
  auto trie = std::make_shared<TokenTrie>();
  trie->bytes_ = token_bytes;
  std::sort(end_tokens.begin(), end_tokens.end());
  end_tokens.erase(std::unique(end_tokens.begin(), end_tokens.end()), end_tokens.end());
  for (int32_t id : end_tokens) {
    if (id >= 0 && static_cast<size_t>(id) < token_bytes.size()) trie->bytes_[static_cast<size_t>(id)].clear();
  }
  trie->end_tokens_ = std::move(end_tokens);

  std::vector<int32_t> order;
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (!trie->bytes_[id].empty()) order.push_back(static_cast<int32_t>(id));
  }
  const auto& b = trie->bytes_;
  std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
    const int c = b[static_cast<size_t>(x)].compare(b[static_cast<size_t>(y)]);
    return c != 0 ? c < 0 : x < y;
  });
  trie->tokens_ = order;

  // Insert in sorted order: each token shares a prefix with the previous one; nodes below that prefix are
  // finished, new nodes follow for the rest. `path[d]` is the node at depth d on the current path.
  auto& nodes = trie->nodes_;
  nodes.push_back(Node{0, 0, 0, 0, 0, 0});
  std::vector<uint32_t> path{0};
  std::string prev;
  auto close_to = [&](size_t depth, uint32_t token_index) {
    while (path.size() > depth + 1) {
      Node& n = nodes[path.back()];
      n.subtree_end = static_cast<uint32_t>(nodes.size());
      n.token_end = token_index;
      path.pop_back();
    }
  };
  for (uint32_t i = 0; i < order.size(); ++i) {
    const std::string& s = b[static_cast<size_t>(order[i])];
    size_t common = 0;
    while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
    common = std::min(common, path.size() - 1);
    close_to(common, i);
    for (size_t d = common; d < s.size(); ++d) {
      const auto id = static_cast<uint32_t>(nodes.size());
      nodes.push_back(Node{0, i, i, 0, static_cast<uint16_t>(std::min<size_t>(d + 1, UINT16_MAX)),
                           static_cast<uint8_t>(s[d])});
      path.push_back(id);
    }
    // Tokens ending exactly here come first in their node's range (shorter strings sort first).
    nodes[path.back()].token_here_end = i + 1;
    trie->max_depth_ = std::max(trie->max_depth_, path.size() - 1);
    prev = s;
  }
  close_to(0, static_cast<uint32_t>(order.size()));
  nodes[0].subtree_end = static_cast<uint32_t>(nodes.size());
  nodes[0].token_end = static_cast<uint32_t>(order.size());
  return trie;
}

}  // namespace edgellm
