// A deterministic, valid byte-level BPE vocabulary for synthetic models (edgellm synth): real vocabulary
// sizes without real vocabulary files. Pipeline as Qwen2 (NFC, Qwen2 split pattern, ByteLevel).
#include <unordered_set>

#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

Expected<std::unique_ptr<Tokenizer>> make_synthetic_tokenizer(int32_t n_vocab) {
  const std::vector<std::string> specials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  const int32_t n_min = 256 + static_cast<int32_t>(specials.size());
  if (n_vocab < n_min) {
    return make_error(ErrorCode::kInvalidArgument, "synthetic tokenizer: n_vocab " + std::to_string(n_vocab) +
                                                       ", expected at least " + std::to_string(n_min));
  }
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  TokenizerModel m;
  m.kind = TokenizerKind::kByteLevelBpe;
  m.source = "synthetic tokenizer";
  std::vector<std::string> bytes_of;  // raw bytes of each token, by id
  std::unordered_set<std::string> seen;
  for (int b = 0; b < 256; ++b) {
    bytes_of.emplace_back(1, static_cast<char>(b));
    seen.insert(bytes_of.back());
  }
  // Merges: a random earlier token followed by a letter or a space (an LCG with fixed seed), so that
  // pieces look like words growing from their prefixes and every merge result is new.
  uint64_t state = 0x2545F4914F6CDD1DULL;
  const auto next = [&]() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(state >> 33);
  };
  const auto n_merged = static_cast<size_t>(n_vocab - n_min);
  while (m.merges.size() < n_merged) {
    const size_t left = next() % bytes_of.size();
    const uint32_t r = next() % 27;
    const std::string right = r == 26 ? std::string(" ") : std::string(1, static_cast<char>('a' + r));
    std::string joined = bytes_of[left] + right;
    if (joined.size() > 16 || !seen.insert(joined).second) continue;
    m.merges.emplace_back(alphabet.encode(bytes_of[left]), alphabet.encode(right));
    bytes_of.push_back(std::move(joined));
  }
  for (const std::string& bytes : bytes_of) {
    m.pieces.push_back(alphabet.encode(bytes));
    m.types.push_back(TokenType::kNormal);
  }
  for (const std::string& s : specials) {
    AddedToken t;
    t.id = static_cast<int32_t>(m.pieces.size());
    t.content = s;
    m.added_tokens.push_back(t);
    m.pieces.push_back(s);
    m.types.push_back(TokenType::kControl);
  }
  m.eos_id = m.added_tokens[2].id;  // <|im_end|>, as Qwen2 instruct models
  m.pad_id = m.added_tokens[0].id;
  m.merge_source = MergeSource::kMergesList;
  m.normalizer.push_back({NormalizerStep::Type::kNfc, "", ""});
  PreTokenizerStep split;
  split.type = PreTokenizerStep::Type::kSplit;
  split.pattern = std::string(kQwen2Pattern);
  m.pre_tokenizer.push_back(split);
  PreTokenizerStep byte_level;
  byte_level.type = PreTokenizerStep::Type::kByteLevel;
  m.pre_tokenizer.push_back(byte_level);
  return Tokenizer::from_model(std::move(m));
}

}  // namespace edgellm
