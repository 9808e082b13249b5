// Tokenizer <-> GGUF metadata, with llama.cpp's keys (ggml-org/llama.cpp: gguf-py/gguf/constants.py,
// Keys.Tokenizer; src/llama-vocab.cpp for their meaning):
//   tokenizer.ggml.model        "gpt2" (byte-level BPE) or "llama" (SentencePiece)
//   tokenizer.ggml.pre          pre-tokenizer name: "qwen2", "qwen35", "llama-bpe", "gpt-2", "default"
//   tokenizer.ggml.tokens       string[n_vocab]: vocabulary strings (added tokens as their content)
//   tokenizer.ggml.token_type   i32[n_vocab]: TokenType
//   tokenizer.ggml.merges       string[]: "left right" (gpt2; edgellm also writes it for llama models
//                               converted from tokenizer.json so the exact merge order survives)
//   tokenizer.ggml.scores       f32[n_vocab] (llama)
//   tokenizer.ggml.{bos,eos,padding,unknown}_token_id, add_bos_token, add_eos_token, add_space_prefix
//   tokenizer.chat_template
// Pipelines llama.cpp has no key for are written under tokenizer.edgellm.* only when the pre name does
// not already imply them: pre_regex (string), nfc (bool), ignore_merges (bool).
#include <algorithm>

#include "format/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

namespace {

constexpr const char* kKeyModel = "tokenizer.ggml.model";
constexpr const char* kKeyPre = "tokenizer.ggml.pre";
constexpr const char* kKeyTokens = "tokenizer.ggml.tokens";
constexpr const char* kKeyTokenType = "tokenizer.ggml.token_type";
constexpr const char* kKeyMerges = "tokenizer.ggml.merges";
constexpr const char* kKeyScores = "tokenizer.ggml.scores";
constexpr const char* kKeyBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kKeyEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kKeyPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kKeyUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kKeyAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kKeyAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kKeyAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kKeyChatTemplate = "tokenizer.chat_template";
constexpr const char* kKeyPreRegex = "tokenizer.edgellm.pre_regex";
constexpr const char* kKeyNfc = "tokenizer.edgellm.nfc";
constexpr const char* kKeyIgnoreMerges = "tokenizer.edgellm.ignore_merges";

constexpr const char* kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space

struct PreInfo {
  std::string pattern;  // empty: GPT-2 ByteLevel regex
  bool nfc = false;
  bool ignore_merges = false;
};

// What llama.cpp's pre names mean for the vocabularies edgellm supports (src/llama-vocab.cpp).
std::optional<PreInfo> pre_info(const std::string& pre) {
  if (pre == "qwen2") return PreInfo{std::string(kQwen2Pattern), true, false};
  // llama.cpp skips NFC for qwen35; transformers' Qwen3_5Tokenizer (the reference) applies it.
  if (pre == "qwen35") return PreInfo{std::string(kQwen35Pattern), true, false};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") return PreInfo{std::string(kLlama3Pattern), false, true};
  if (pre == "default" || pre == "gpt-2" || pre == "gpt2") return PreInfo{"", false, false};
  return std::nullopt;
}

// The regex of a byte-level pipeline ("" for ByteLevel's own GPT-2 regex), and whether it has NFC.
std::string pipeline_pattern(const TokenizerModel& m) {
  for (const PreTokenizerStep& s : m.pre_tokenizer) {
    if (s.type == PreTokenizerStep::Type::kSplit) return s.pattern;
  }
  return "";
}

bool pipeline_nfc(const TokenizerModel& m) {
  return std::any_of(m.normalizer.begin(), m.normalizer.end(),
                     [](const NormalizerStep& s) { return s.type == NormalizerStep::Type::kNfc; });
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string& src = gguf.path();
  EDGELLM_ASSIGN_OR_RETURN(const std::string model_name, gguf.get_string(kKeyModel));
  TokenizerModel m;
  m.source = src;
  EDGELLM_ASSIGN_OR_RETURN(m.pieces, gguf.get_string_array(kKeyTokens));
  const size_t n = m.pieces.size();
  if (n == 0) return make_error(ErrorCode::kFormat, src + ": " + kKeyTokens + " is empty");
  if (gguf.find(kKeyTokenType)) {
    EDGELLM_ASSIGN_OR_RETURN(const auto types, gguf.get_int_array(kKeyTokenType));
    if (types.size() != n) {
      return make_error(ErrorCode::kFormat, src + ": " + kKeyTokenType + " has " + std::to_string(types.size()) +
                                                " entries, expected " + std::to_string(n) + " (one per token)");
    }
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 1 || types[i] > 6) {
        return make_error(ErrorCode::kFormat, src + ": " + kKeyTokenType + "[" + std::to_string(i) + "] = " +
                                                  std::to_string(types[i]) + ", expected 1..6");
      }
      m.types.push_back(static_cast<TokenType>(types[i]));
    }
  } else {
    m.types.assign(n, TokenType::kNormal);
  }

  const auto opt_id = [&](const char* key, std::optional<int32_t>& out) -> Status {
    if (!gguf.find(key)) return {};
    EDGELLM_ASSIGN_OR_RETURN(const int64_t v, gguf.get_int(key));
    // llama.cpp writes -1 (as u32 0xFFFFFFFF) for "none"
    if (v < 0 || v >= static_cast<int64_t>(n)) {
      if (v == -1 || v == 0xFFFFFFFFLL) return {};
      return make_error(ErrorCode::kFormat, src + ": " + key + " = " + std::to_string(v) + ", outside the vocabulary [0, " +
                                                std::to_string(n) + ")");
    }
    out = static_cast<int32_t>(v);
    return {};
  };
  EDGELLM_TRY(opt_id(kKeyBos, m.bos_id));
  EDGELLM_TRY(opt_id(kKeyEos, m.eos_id));
  EDGELLM_TRY(opt_id(kKeyPad, m.pad_id));
  if (gguf.find(kKeyChatTemplate)) {
    EDGELLM_ASSIGN_OR_RETURN(std::string tmpl, gguf.get_string(kKeyChatTemplate));
    m.chat_template = std::move(tmpl);
  }

  // Control, unknown and user-defined tokens are matched whole in the text, like added tokens.
  for (size_t id = 0; id < n; ++id) {
    const TokenType t = m.types[id];
    if (t != TokenType::kControl && t != TokenType::kUnknown && t != TokenType::kUserDefined) continue;
    if (m.pieces[id].empty()) continue;
    AddedToken a;
    a.id = static_cast<int32_t>(id);
    a.content = m.pieces[id];
    a.special = t != TokenType::kUserDefined;
    m.added_tokens.push_back(std::move(a));
  }

  const auto read_merges = [&]() -> Status {
    // Read in place: a copy of the 152k strings beside the pairs made from them was a fifth of the load's peak.
    EDGELLM_ASSIGN_OR_RETURN(const GgufValue* merges, gguf.get_string_array_value(kKeyMerges));
    m.merges.reserve(merges->array_size());
    for (size_t i = 0; i < merges->array_size(); ++i) {
      const std::string_view merge = merges->string_element(i);
      // The separator is the first space after the first character (llama.cpp: llama-vocab.cpp).
      const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string_view::npos;
      if (space == std::string_view::npos) {
        return make_error(ErrorCode::kFormat, src + ": " + kKeyMerges + "[" + std::to_string(i) + "] = '" +
                                                  std::string(merge) + "', expected 'left right'");
      }
      m.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
    }
    m.merge_source = MergeSource::kMergesList;
    return {};
  };

  if (model_name == "gpt2") {
    m.kind = TokenizerKind::kByteLevelBpe;
    if (!gguf.find(kKeyMerges)) return make_error(ErrorCode::kNotFound, src + ": " + kKeyMerges + " missing (required for gpt2)");
    EDGELLM_TRY(read_merges());
    EDGELLM_ASSIGN_OR_RETURN(const std::string pre, gguf.get_string_or(kKeyPre, "default"));
    auto info = pre_info(pre);
    if (!info && !gguf.find(kKeyPreRegex)) {
      return make_error(ErrorCode::kUnsupported, src + ": " + kKeyPre + " = '" + pre +
                                                     "' is not supported (supported: qwen2, qwen35, llama-bpe, gpt-2, default)");
    }
    PreInfo pi = info ? *info : PreInfo{};
    if (gguf.find(kKeyPreRegex)) {
      EDGELLM_ASSIGN_OR_RETURN(pi.pattern, gguf.get_string(kKeyPreRegex));
    }
    EDGELLM_ASSIGN_OR_RETURN(pi.nfc, gguf.get_bool_or(kKeyNfc, pi.nfc));
    EDGELLM_ASSIGN_OR_RETURN(pi.ignore_merges, gguf.get_bool_or(kKeyIgnoreMerges, pi.ignore_merges));
    if (pi.nfc) m.normalizer.push_back({NormalizerStep::Type::kNfc, "", ""});
    PreTokenizerStep bytes;
    bytes.type = PreTokenizerStep::Type::kByteLevel;
    if (pi.pattern.empty()) {
      bytes.use_regex = true;
    } else {
      PreTokenizerStep split;
      split.type = PreTokenizerStep::Type::kSplit;
      split.pattern = pi.pattern;
      m.pre_tokenizer.push_back(split);
    }
    m.pre_tokenizer.push_back(bytes);
    m.ignore_merges = pi.ignore_merges;
    EDGELLM_ASSIGN_OR_RETURN(m.add_bos, gguf.get_bool_or(kKeyAddBos, false));
  } else if (model_name == "llama") {
    m.kind = TokenizerKind::kSentencePieceBpe;
    if (gguf.find(kKeyMerges)) {
      EDGELLM_TRY(read_merges());
    } else {
      if (!gguf.find(kKeyScores)) return make_error(ErrorCode::kNotFound, src + ": " + kKeyScores + " missing (required for llama)");
      EDGELLM_ASSIGN_OR_RETURN(const auto scores, gguf.get_float_array(kKeyScores));
      if (scores.size() != n) {
        return make_error(ErrorCode::kFormat, src + ": " + kKeyScores + " has " + std::to_string(scores.size()) +
                                                  " entries, expected " + std::to_string(n));
      }
      m.scores.assign(scores.begin(), scores.end());
      m.merge_source = MergeSource::kPieceScores;
    }
    m.byte_fallback = true;
    m.fuse_unk = true;
    std::optional<int32_t> unk;
    EDGELLM_TRY(opt_id(kKeyUnk, unk));
    if (!gguf.find(kKeyUnk)) {
      for (size_t id = 0; id < n && !unk; ++id) {
        if (m.types[id] == TokenType::kUnknown) unk = static_cast<int32_t>(id);
      }
    }
    m.unk_id = unk;
    EDGELLM_ASSIGN_OR_RETURN(const bool add_space_prefix, gguf.get_bool_or(kKeyAddSpacePrefix, true));
    if (add_space_prefix) m.normalizer.push_back({NormalizerStep::Type::kPrepend, "", kSpaceMark});
    m.normalizer.push_back({NormalizerStep::Type::kReplace, " ", kSpaceMark});
    m.decode_strip_leading_space = add_space_prefix;
    EDGELLM_ASSIGN_OR_RETURN(m.add_bos, gguf.get_bool_or(kKeyAddBos, true));
  } else {
    return make_error(ErrorCode::kUnsupported, src + ": " + kKeyModel + " = '" + model_name +
                                                   "' is not supported (supported: gpt2, llama)");
  }
  EDGELLM_ASSIGN_OR_RETURN(m.add_eos, gguf.get_bool_or(kKeyAddEos, false));
  if (m.add_bos && !m.bos_id) m.add_bos = false;
  if (m.add_eos && !m.eos_id) m.add_eos = false;
  return from_model(std::move(m));
}

void Tokenizer::write_gguf_metadata(GgufWriter& w, int32_t min_n_vocab) const {
  const TokenizerModel& m = model_;
  const bool spm = m.kind == TokenizerKind::kSentencePieceBpe;
  w.set_string(kKeyModel, spm ? "llama" : "gpt2");

  std::vector<std::string> tokens;
  tokens.reserve(std::max<size_t>(pieces_.size(), static_cast<size_t>(std::max(min_n_vocab, 0))));
  for (size_t id = 0; id < pieces_.size(); ++id) tokens.emplace_back(pieces_[id]);
  std::vector<int32_t> types;
  types.reserve(tokens.size());
  for (TokenType t : m.types) types.push_back(static_cast<int32_t>(t));
  for (auto id = static_cast<int32_t>(tokens.size()); id < min_n_vocab; ++id) {
    tokens.push_back("[PAD" + std::to_string(id) + "]");
    types.push_back(static_cast<int32_t>(TokenType::kUnused));
  }

  // Merges as "left right", in rank order.
  std::vector<std::string> merges;
  if (m.merge_source == MergeSource::kMergesList) {
    // The list as the pair table holds it (Tokenizer::build_merges): by rank; a pair listed twice once, at
    // the rank that takes effect (the later one).
    std::vector<std::pair<int32_t, std::string>> ranked;
    ranked.reserve(pairs_.size());
    pairs_.for_each([&](int32_t left, int32_t right, const PairMerge& merge) {
      std::string text(pieces_[static_cast<size_t>(left)]);
      text += ' ';
      text += pieces_[static_cast<size_t>(right)];
      ranked.emplace_back(merge.rank, std::move(text));
    });
    std::sort(ranked.begin(), ranked.end());
    merges.reserve(ranked.size());
    for (auto& [rank, text] : ranked) merges.push_back(std::move(text));
  } else if (m.merge_source == MergeSource::kTokenRanks) {
    // tiktoken has no merge list: a token's merge is the last step of BPE-encoding its own bytes with
    // only lower-ranked merges allowed (as tiktoken's and llama.cpp's converters derive it).
    PairTable lower;
    BpeScratch scratch;
    std::vector<int32_t> ids;
    for (size_t id = 0; id < pieces_.size(); ++id) {
      if (is_special_[id] || m.types[id] != TokenType::kNormal || token_bytes_[id].size() < 2) continue;
      ids.clear();
      for (char c : token_bytes_[id]) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
      bpe_merge(lower, ids, scratch);
      if (ids.size() == 2) {
        merges.push_back(std::string(pieces_[static_cast<size_t>(ids[0])]) + " " +
                         std::string(pieces_[static_cast<size_t>(ids[1])]));
        lower.insert(ids[0], ids[1], {static_cast<int32_t>(id), static_cast<int32_t>(id)});
      }
    }
  }

  if (spm) {
    w.set_string(kKeyPre, "default");
    // llama.cpp ranks SentencePiece merges by score: a piece scores minus the rank of its first merge.
    std::vector<float> scores(tokens.size(), 0.0f);
    if (m.merge_source == MergeSource::kPieceScores) {
      std::copy(m.scores.begin(), m.scores.end(), scores.begin());
    } else {
      std::vector<int32_t> first_rank(pieces_.size(), -1);
      pairs_.for_each([&](int32_t, int32_t, const PairMerge& pm) {
        int32_t& r = first_rank[pm.merged_id];
        if (r < 0 || pm.rank < r) r = pm.rank;
      });
      for (size_t id = 0; id < pieces_.size(); ++id) {
        scores[id] = first_rank[id] >= 0 ? -static_cast<float>(first_rank[id]) : -1e9f;
      }
    }
    w.set(kKeyScores, GgufValue::f32_array(scores));
    const bool prefix = std::any_of(m.normalizer.begin(), m.normalizer.end(),
                                    [](const NormalizerStep& s) { return s.type == NormalizerStep::Type::kPrepend; }) ||
                        std::any_of(m.pre_tokenizer.begin(), m.pre_tokenizer.end(), [](const PreTokenizerStep& s) {
                          return s.type == PreTokenizerStep::Type::kMetaspace &&
                                 s.prepend_scheme != PreTokenizerStep::PrependScheme::kNever;
                        });
    w.set_bool(kKeyAddSpacePrefix, prefix);
    if (m.merge_source == MergeSource::kMergesList) w.set(kKeyMerges, GgufValue::string_array(merges));
  } else {
    const std::string pattern = pipeline_pattern(m);
    std::string pre = "default";
    if (pattern == kQwen2Pattern) pre = "qwen2";
    else if (pattern == kQwen35Pattern) pre = "qwen35";
    else if (pattern == kLlama3Pattern) pre = "llama-bpe";
    else if (pattern.empty()) pre = "gpt-2";
    w.set_string(kKeyPre, pre);
    const PreInfo implied = *pre_info(pre);
    if (pre == "default") w.set_string(kKeyPreRegex, pattern);
    if (pipeline_nfc(m) != implied.nfc) w.set_bool(kKeyNfc, pipeline_nfc(m));
    if (m.ignore_merges != implied.ignore_merges) w.set_bool(kKeyIgnoreMerges, m.ignore_merges);
    w.set(kKeyMerges, GgufValue::string_array(merges));
  }
  w.set(kKeyTokens, GgufValue::string_array(tokens));
  w.set(kKeyTokenType, GgufValue::i32_array(types));
  if (m.bos_id) w.set_u32(kKeyBos, static_cast<uint32_t>(*m.bos_id));
  if (m.eos_id) w.set_u32(kKeyEos, static_cast<uint32_t>(*m.eos_id));
  if (m.pad_id) w.set_u32(kKeyPad, static_cast<uint32_t>(*m.pad_id));
  if (m.unk_id) w.set_u32(kKeyUnk, static_cast<uint32_t>(*m.unk_id));
  w.set_bool(kKeyAddBos, m.add_bos);
  w.set_bool(kKeyAddEos, m.add_eos);
  if (m.chat_template) w.set_string(kKeyChatTemplate, *m.chat_template);
}

}  // namespace edgellm
