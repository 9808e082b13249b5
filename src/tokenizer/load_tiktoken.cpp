// Qwen 1's qwen.tiktoken: one "<base64 of the token bytes> <rank>" line per token, ranks are ids
// (openai/tiktoken: tiktoken/load.py, load_tiktoken_bpe). Qwen 1's special tokens follow the ranks:
// <|endoftext|>, <|im_start|>, <|im_end|>, <|extra_0|> .. <|extra_204|> (Qwen tokenization_qwen.py;
// tests/data/reference/qwen1-tiktoken/FACTS.md). Qwen 1 normalizes to NFC and splits with the Qwen2 pattern.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

namespace {

constexpr int kQwen1ExtraTokens = 205;

// Standard base64 (RFC 4648 section 4) with '=' padding; nullopt on any other character.
std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_tiktoken(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  std::vector<std::pair<size_t, std::string>> tokens;  // (rank, bytes) in file order
  size_t max_rank = 0;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    const std::string where = path + ": line " + std::to_string(line_no);
    if (space == std::string::npos) return make_error(ErrorCode::kFormat, where + ": expected '<base64> <rank>'");
    auto bytes = base64_decode(std::string_view(line).substr(0, space));
    if (!bytes || bytes->empty()) return make_error(ErrorCode::kFormat, where + ": invalid base64 token");
    const std::string rank_text = line.substr(space + 1);
    char* end = nullptr;
    const long long rank = std::strtoll(rank_text.c_str(), &end, 10);
    if (rank_text.empty() || *end != '\0' || rank < 0 || rank >= (1LL << 30)) {
      return make_error(ErrorCode::kFormat, where + ": rank '" + rank_text + "' is not a non-negative integer");
    }
    max_rank = std::max(max_rank, static_cast<size_t>(rank));
    tokens.emplace_back(static_cast<size_t>(rank), std::move(*bytes));
  }
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": read failed");
  if (tokens.empty()) return make_error(ErrorCode::kFormat, path + ": no tokens");
  // Ranks are token ids: a few gaps are tolerated, a rank far beyond the file's tokens is a damaged file (and
  // would make the vocabulary as large as the rank).
  if (max_rank >= 2 * tokens.size() + 1024) {
    return make_error(ErrorCode::kFormat, path + ": rank " + std::to_string(max_rank) + " is far beyond the " +
                                              std::to_string(tokens.size()) + " tokens in the file");
  }
  std::vector<std::string> by_rank(max_rank + 1);
  std::vector<uint8_t> seen(max_rank + 1, 0);
  for (auto& [rank, bytes] : tokens) {
    if (seen[rank]) return make_error(ErrorCode::kFormat, path + ": rank " + std::to_string(rank) + " appears twice");
    seen[rank] = 1;
    by_rank[rank] = std::move(bytes);
  }
  // Byte-level BPE encodes any text only when every byte has a token of its own.
  std::vector<bool> single_byte(256, false);
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    if (seen[rank] && by_rank[rank].size() == 1) single_byte[static_cast<uint8_t>(by_rank[rank][0])] = true;
  }
  for (int b = 0; b < 256; ++b) {
    if (!single_byte[b]) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "0x%02x", b);
      return make_error(ErrorCode::kFormat, path + ": no token for the byte " + hex +
                                                " (a byte-level vocabulary needs one token per byte)");
    }
  }

  TokenizerModel m;
  m.kind = TokenizerKind::kTiktoken;
  m.source = path;
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  for (size_t rank = 0; rank < by_rank.size(); ++rank) {
    m.pieces.push_back(seen[rank] ? alphabet.encode(by_rank[rank]) : std::string());
    m.types.push_back(seen[rank] ? TokenType::kNormal : TokenType::kUnused);
  }
  std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  for (int i = 0; i < kQwen1ExtraTokens; ++i) specials.push_back("<|extra_" + std::to_string(i) + "|>");
  for (const std::string& s : specials) {
    AddedToken t;
    t.id = static_cast<int32_t>(m.pieces.size());
    t.content = s;
    m.added_tokens.push_back(t);
    m.pieces.push_back(s);
    m.types.push_back(TokenType::kControl);
  }
  const int32_t endoftext = m.added_tokens[0].id;
  m.bos_id = endoftext;
  m.eos_id = endoftext;
  m.pad_id = endoftext;
  m.add_bos = false;
  m.merge_source = MergeSource::kTokenRanks;
  m.normalizer.push_back({NormalizerStep::Type::kNfc, "", ""});
  PreTokenizerStep split;
  split.type = PreTokenizerStep::Type::kSplit;
  split.pattern = std::string(kQwen2Pattern);
  m.pre_tokenizer.push_back(split);
  PreTokenizerStep bytes;
  bytes.type = PreTokenizerStep::Type::kByteLevel;
  m.pre_tokenizer.push_back(bytes);
  return from_model(std::move(m));
}

}  // namespace edgellm
