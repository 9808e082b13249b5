#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <map>

#include "tokenizer/byte_level.h"
#include "tokenizer/unicode_nfc.h"
#include "tokenizer/utf8.h"
#include "util/check.h"

namespace edgellm {

namespace {

// Inputs are addressed with int32 offsets by ICU; nothing real comes close.
constexpr size_t kMaxInputBytes = (size_t{1} << 31) - 1;

// "<0xAB>" -> 0xAB (SentencePiece byte pieces; Hugging Face ByteFallback uses the same spelling).
std::optional<uint8_t> parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]), lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

std::string byte_piece(uint8_t b) {
  static const char* kHex = "0123456789ABCDEF";
  return std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty() || s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Unicode White_Space (what Rust's char::is_whitespace tests), for added tokens' lstrip/rstrip.
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// Start of the character that ends just before `pos`.
size_t prev_char_start(std::string_view s, size_t pos) {
  size_t p = pos - 1;
  while (p > 0 && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
  return p;
}

bool is_word_byte(uint8_t b) { return b >= 0x80 || std::isalnum(b) || b == '_'; }

}  // namespace

const char* tokenizer_kind_name(TokenizerKind kind) {
  switch (kind) {
    case TokenizerKind::kByteLevelBpe: return "byte-level BPE";
    case TokenizerKind::kSentencePieceBpe: return "SentencePiece BPE";
    case TokenizerKind::kTiktoken: return "tiktoken BPE";
  }
  return "?";
}

std::string sanitize_utf8(std::string_view text) { return utf8_lossy(text); }

// ---- construction ----

Tokenizer::Tokenizer(TokenizerModel model) : model_(std::move(model)) {}
Tokenizer::~Tokenizer() = default;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_model(TokenizerModel model) {
  std::unique_ptr<Tokenizer> tok(new Tokenizer(std::move(model)));
  EDGELLM_TRY(tok->build());
  return tok;
}

Status Tokenizer::build() {
  const std::string& src = model_.source;
  const size_t n = model_.pieces.size();
  if (n == 0) return make_error(ErrorCode::kFormat, src + ": empty vocabulary");
  if (n > static_cast<size_t>(INT32_MAX)) return make_error(ErrorCode::kFormat, src + ": vocabulary too large");
  if (model_.types.size() != n) {
    return make_error(ErrorCode::kFormat, src + ": " + std::to_string(model_.types.size()) + " token types for " +
                                              std::to_string(n) + " tokens");
  }
  if (model_.merge_source == MergeSource::kPieceScores && model_.scores.size() != n) {
    return make_error(ErrorCode::kFormat, src + ": " + std::to_string(model_.scores.size()) + " scores for " +
                                              std::to_string(n) + " tokens");
  }
  const auto check_id = [&](const std::optional<int32_t>& id, const char* what) -> Status {
    if (id && (*id < 0 || static_cast<size_t>(*id) >= n)) {
      return make_error(ErrorCode::kFormat, src + ": " + what + " id " + std::to_string(*id) +
                                                " out of range [0, " + std::to_string(n) + ")");
    }
    return {};
  };
  EDGELLM_TRY(check_id(model_.bos_id, "BOS"));
  EDGELLM_TRY(check_id(model_.eos_id, "EOS"));
  EDGELLM_TRY(check_id(model_.pad_id, "padding"));
  EDGELLM_TRY(check_id(model_.unk_id, "unknown-token"));

  // Added tokens.
  is_special_.assign(n, 0);
  std::vector<uint8_t> is_added(n, 0);
  added_by_first_byte_.assign(256, {});
  for (size_t i = 0; i < model_.added_tokens.size(); ++i) {
    const AddedToken& t = model_.added_tokens[i];
    if (t.id < 0 || static_cast<size_t>(t.id) >= n) {
      return make_error(ErrorCode::kFormat, src + ": added token '" + t.content + "' has id " + std::to_string(t.id) +
                                                ", outside the vocabulary [0, " + std::to_string(n) + ")");
    }
    if (t.content.empty()) {
      return make_error(ErrorCode::kFormat, src + ": added token " + std::to_string(t.id) + " has empty content");
    }
    if (find_invalid_utf8(t.content)) {
      return make_error(ErrorCode::kFormat, src + ": added token " + std::to_string(t.id) + " is not valid UTF-8");
    }
    is_special_[t.id] = t.special ? 1 : 0;
    is_added[t.id] = 1;
    added_index_.emplace(t.content, t.id);
    added_by_first_byte_[static_cast<uint8_t>(t.content[0])].push_back(static_cast<uint32_t>(i));
    (t.normalized ? has_normalized_added_ : has_raw_added_) = true;
  }
  for (auto& group : added_by_first_byte_) {
    std::stable_sort(group.begin(), group.end(), [&](uint32_t a, uint32_t b) {
      return model_.added_tokens[a].content.size() > model_.added_tokens[b].content.size();
    });
  }

  // The vocabulary strings move into an arena (152k std::string cost ~5 MB; the arena their bytes and 4 per
  // token).
  size_t piece_bytes = 0;
  for (const std::string& piece : model_.pieces) piece_bytes += piece.size();
  pieces_ = StringArena();
  pieces_.reserve(n, piece_bytes);
  for (const std::string& piece : model_.pieces) pieces_.push_back(piece);
  std::vector<std::string>().swap(model_.pieces);

  // What each token decodes to.
  const bool byte_level = model_.kind != TokenizerKind::kSentencePieceBpe;
  const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
  token_bytes_ = StringArena();
  token_bytes_.reserve(n, piece_bytes);
  for (size_t id = 0; id < n; ++id) {
    const std::string_view piece = pieces_[id];
    if (is_added[id]) {
      token_bytes_.push_back(piece);
    } else if (model_.types[id] == TokenType::kUnused) {
      token_bytes_.push_back({});
    } else if (byte_level) {
      // Like Hugging Face's ByteLevel decoder: a piece outside the alphabet decodes to its own UTF-8.
      auto bytes = alphabet.decode(piece);
      token_bytes_.push_back(bytes ? std::string_view(*bytes) : piece);
    } else if (auto b = parse_byte_piece(piece)) {
      const char byte = static_cast<char>(*b);
      token_bytes_.push_back(std::string_view(&byte, 1));
    } else {
      std::string text(piece);
      replace_all(text, "\xE2\x96\x81", " ");
      token_bytes_.push_back(text);
    }
  }
  token_bytes_.shrink_to_fit();

  // Symbol index: the model vocabulary without added tokens, keyed by what BPE sees.
  symbol_index_ = VocabIndex(byte_level ? &token_bytes_ : &pieces_, n);
  for (size_t id = 0; id < n; ++id) {
    if (is_added[id] || model_.types[id] == TokenType::kUnused) continue;
    if ((byte_level ? token_bytes_[id] : pieces_[id]).empty()) continue;
    symbol_index_.insert(static_cast<int32_t>(id));
  }
  for (int b = 0; b < 256; ++b) {
    const std::string key = byte_level ? std::string(1, static_cast<char>(b)) : byte_piece(static_cast<uint8_t>(b));
    byte_ids_[b] = symbol_index_.find(key);
  }

  // Pre-tokenizer regexes.
  regexes_.resize(model_.pre_tokenizer.size());
  for (size_t i = 0; i < model_.pre_tokenizer.size(); ++i) {
    const PreTokenizerStep& step = model_.pre_tokenizer[i];
    if (step.type == PreTokenizerStep::Type::kSplit ||
        (step.type == PreTokenizerStep::Type::kByteLevel && step.use_regex)) {
      auto re = RegexSplitter::compile(step.type == PreTokenizerStep::Type::kSplit ? std::string_view(step.pattern)
                                                                                  : kGpt2Pattern);
      if (!re.ok()) return make_error(re.error().code, src + ": " + re.error().message);
      regexes_[i] = std::move(re).value();
    }
    if (step.type == PreTokenizerStep::Type::kMetaspace && step.replacement.empty()) {
      return make_error(ErrorCode::kFormat, src + ": Metaspace pre-tokenizer with an empty replacement");
    }
  }
  for (const NormalizerStep& step : model_.normalizer) {
    if (step.type == NormalizerStep::Type::kReplace && step.pattern.empty()) {
      return make_error(ErrorCode::kFormat, src + ": Replace normalizer with an empty pattern");
    }
  }
  return build_merges();
}

Status Tokenizer::build_merges() {
  const std::string& src = model_.source;
  const size_t n = pieces_.size();
  switch (model_.merge_source) {
    case MergeSource::kMergesList: {
      // Merges name vocabulary strings; index them as written (while building).
      VocabIndex by_piece(&pieces_, n);
      for (size_t id = 0; id < n; ++id) {
        if (!pieces_[id].empty()) by_piece.insert(static_cast<int32_t>(id));
      }
      std::string joined;
      pairs_.reserve(model_.merges.size());
      for (size_t rank = 0; rank < model_.merges.size(); ++rank) {
        const auto [a, b] = model_.merges[rank];
        joined = a;
        joined += b;
        const int32_t ia = by_piece.find(a), ib = by_piece.find(b), iab = by_piece.find(joined);
        if (ia < 0 || ib < 0 || iab < 0) {
          const std::string_view missing = ia < 0 ? a : ib < 0 ? b : std::string_view(joined);
          return make_error(ErrorCode::kFormat, src + ": merges[" + std::to_string(rank) + "] '" + std::string(a) + " " +
                                                    std::string(b) + "': '" + std::string(missing) +
                                                    "' is not in the vocabulary");
        }
        pairs_.insert(ia, ib, {static_cast<int32_t>(rank), iab});
      }
      // From here the pair table is the merge list (write_gguf_metadata writes it back in rank order): a
      // 152k-merge list of string pairs held beside it would cost ~10 MB.
      model_.merges = MergeList();
      break;
    }
    case MergeSource::kTokenRanks: {
      for (size_t id = 0; id < n; ++id) {
        if (is_special_[id] || model_.types[id] != TokenType::kNormal) continue;
        const std::string_view bytes = token_bytes_[id];
        for (size_t k = 1; k < bytes.size(); ++k) {
          const int32_t left = symbol_index_.find(bytes.substr(0, k));
          if (left < 0) continue;
          const int32_t right = symbol_index_.find(bytes.substr(k));
          if (right < 0) continue;
          pairs_.insert(left, right, {static_cast<int32_t>(id), static_cast<int32_t>(id)});
        }
      }
      break;
    }
    case MergeSource::kPieceScores: {
      // Dense rank of each distinct score, highest first: equal scores tie and the leftmost pair wins.
      std::vector<float> distinct;
      for (size_t id = 0; id < n; ++id) {
        if (model_.types[id] == TokenType::kNormal) distinct.push_back(model_.scores[id]);
      }
      std::sort(distinct.begin(), distinct.end(), std::greater<float>());
      distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
      const auto rank_of = [&](float score) {
        return static_cast<int32_t>(std::lower_bound(distinct.begin(), distinct.end(), score, std::greater<float>()) -
                                    distinct.begin());
      };
      const auto normal = [&](int32_t id) { return model_.types[id] == TokenType::kNormal; };
      for (size_t id = 0; id < n; ++id) {
        if (model_.types[id] != TokenType::kNormal) continue;
        const std::string_view piece = pieces_[id];
        const int32_t rank = rank_of(model_.scores[id]);
        size_t k = utf8_sequence_length(piece, 0);
        while (k > 0 && k < piece.size()) {
          const int32_t left = symbol_index_.find(piece.substr(0, k));
          const int32_t right = symbol_index_.find(piece.substr(k));
          if (left >= 0 && right >= 0 && normal(left) && normal(right)) {
            pairs_.insert(left, right, {rank, static_cast<int32_t>(id)});
          }
          const size_t len = utf8_sequence_length(piece, k);
          if (len == 0) break;
          k += len;
        }
      }
      break;
    }
  }
  return {};
}

// ---- lookups ----

TokenType Tokenizer::token_type(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return TokenType::kUnused;
  return model_.types[id];
}

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < n_vocab() && is_special_[id]; }

std::string Tokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return std::string(token_bytes_[static_cast<size_t>(id)]);
}

std::string Tokenizer::token_piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return {};
  return std::string(pieces_[static_cast<size_t>(id)]);
}

std::optional<int32_t> Tokenizer::token_id(std::string_view piece) const {
  if (auto it = added_index_.find(piece); it != added_index_.end()) return it->second;
  if (model_.kind == TokenizerKind::kSentencePieceBpe) {
    if (const int32_t id = symbol_index_.find(piece); id >= 0) return id;
    return std::nullopt;
  }
  auto bytes = ByteLevelAlphabet::get().decode(piece);
  if (bytes) {
    if (const int32_t id = symbol_index_.find(*bytes); id >= 0 && pieces_[static_cast<size_t>(id)] == piece) {
      return id;
    }
  }
  // Pieces outside the alphabet (possible in hand-made vocabularies) are found by a scan.
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (pieces_[id] == piece && model_.types[id] != TokenType::kUnused) return static_cast<int32_t>(id);
  }
  return std::nullopt;
}

// ---- encoding ----

struct Tokenizer::EncodeState {
  std::vector<int32_t>* out = nullptr;
  bool allow_special_normalized = false;  // the chunk came only from allow_special segments
  BpeScratch scratch;
  std::vector<int32_t> ids;
  Status error;  // first error raised inside a split callback
};

bool Tokenizer::find_added(std::string_view text, size_t from, bool allow_special, bool normalized, size_t& start,
                           size_t& end, int32_t& id) const {
  for (size_t pos = from; pos < text.size(); ++pos) {
    const auto& group = added_by_first_byte_[static_cast<uint8_t>(text[pos])];
    if (group.empty()) continue;
    for (uint32_t idx : group) {
      const AddedToken& t = model_.added_tokens[idx];
      if (t.normalized != normalized || (t.special && !allow_special)) continue;
      if (text.size() - pos < t.content.size() || text.compare(pos, t.content.size(), t.content) != 0) continue;
      size_t s = pos, e = pos + t.content.size();
      if (t.single_word) {
        const bool word_before = s > 0 && is_word_byte(static_cast<uint8_t>(text[s - 1]));
        const bool word_after = e < text.size() && is_word_byte(static_cast<uint8_t>(text[e]));
        if (word_before || word_after) continue;
      }
      if (t.lstrip) {
        while (s > from) {
          const size_t p = prev_char_start(text, s);
          const size_t len = utf8_sequence_length(text, p);
          if (len == 0 || !is_white_space(decode_utf8_at(text, p, len))) break;
          s = p;
        }
      }
      if (t.rstrip) {
        while (e < text.size()) {
          const size_t len = utf8_sequence_length(text, e);
          if (len == 0 || !is_white_space(decode_utf8_at(text, e, len))) break;
          e += len;
        }
      }
      start = s;
      end = e;
      id = t.id;
      return true;
    }
  }
  return false;
}

Expected<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool allow_special) const {
  return encode_segments({TextSegment{text, allow_special}});
}

struct Tokenizer::Chunk {
  std::string text;       // plain text gathered across segments
  size_t input_offset = 0;  // where it starts in the concatenated input
  bool all_allow_special = true;
};

Expected<std::vector<int32_t>> Tokenizer::encode_segments(const std::vector<TextSegment>& segments) const {
  size_t total = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (auto bad = find_invalid_utf8(segments[i].text)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "tokenizer: invalid UTF-8 at byte " + std::to_string(total + *bad) + " of the input" +
                            (segments.size() > 1 ? " (segment " + std::to_string(i) + ")" : std::string()));
    }
    total += segments[i].text.size();
    if (total > kMaxInputBytes) {
      return make_error(ErrorCode::kInvalidArgument, "tokenizer: input of " + std::to_string(total) +
                                                         " bytes exceeds the limit of " +
                                                         std::to_string(kMaxInputBytes));
    }
  }
  std::vector<int32_t> out;
  out.reserve(total / 3 + 4);
  EncodeState st;
  st.out = &out;

  Chunk chunk;
  size_t offset = 0;  // of the current segment in the concatenated input
  const auto flush = [&]() -> Status {
    if (!chunk.text.empty()) {
      st.allow_special_normalized = chunk.all_allow_special;
      EDGELLM_TRY(encode_chunk(chunk.text, chunk.input_offset == 0, st));
    }
    chunk.text.clear();
    chunk.all_allow_special = true;
    return {};
  };
  for (const TextSegment& seg : segments) {
    const std::string_view text = seg.text;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t start = 0, end = 0;
      int32_t id = -1;
      const bool found = has_raw_added_ && find_added(text, pos, seg.allow_special, false, start, end, id);
      const size_t plain_end = found ? start : text.size();
      if (plain_end > pos) {
        if (chunk.text.empty()) chunk.input_offset = offset + pos;
        chunk.text.append(text.substr(pos, plain_end - pos));
        chunk.all_allow_special = chunk.all_allow_special && seg.allow_special;
      }
      if (!found) break;
      EDGELLM_TRY(flush());
      out.push_back(id);
      pos = end;
    }
    offset += text.size();
  }
  EDGELLM_TRY(flush());
  return out;
}

Status Tokenizer::encode_chunk(std::string_view text, bool at_input_start, EncodeState& st) const {
  if (model_.normalizer.empty()) return encode_normalized(text, at_input_start, st);
  std::string cur(text);
  std::string tmp;
  for (const NormalizerStep& step : model_.normalizer) {
    switch (step.type) {
      case NormalizerStep::Type::kNfc:
        if (nfc_normalize(cur, tmp)) cur.swap(tmp);
        break;
      case NormalizerStep::Type::kPrepend:
        if (!cur.empty()) cur.insert(0, step.content);
        break;
      case NormalizerStep::Type::kReplace:
        replace_all(cur, step.pattern, step.content);
        break;
    }
  }
  return encode_normalized(cur, at_input_start, st);
}

Status Tokenizer::encode_normalized(std::string_view text, bool at_input_start, EncodeState& st) const {
  if (!has_normalized_added_) return pre_tokenize(0, text, at_input_start, st);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t start = 0, end = 0;
    int32_t id = -1;
    const bool found = find_added(text, pos, st.allow_special_normalized, true, start, end, id);
    const size_t plain_end = found ? start : text.size();
    if (plain_end > pos) EDGELLM_TRY(pre_tokenize(0, text.substr(pos, plain_end - pos), at_input_start && pos == 0, st));
    if (!found) break;
    st.out->push_back(id);
    pos = end;
  }
  return {};
}

Status Tokenizer::pre_tokenize(size_t step_idx, std::string_view text, bool at_input_start, EncodeState& st) const {
  if (text.empty()) return {};
  if (step_idx == model_.pre_tokenizer.size()) {
    encode_piece(text, st);
    return {};
  }
  const PreTokenizerStep& step = model_.pre_tokenizer[step_idx];
  // Runs the next step on each piece; the first error is kept in st.error.
  const auto next = [&](std::string_view piece) {
    if (!st.error.ok()) return;
    const bool first = at_input_start && piece.data() == text.data();
    Status s = pre_tokenize(step_idx + 1, piece, first, st);
    if (!s.ok()) st.error = std::move(s);
  };
  switch (step.type) {
    case PreTokenizerStep::Type::kSplit: {
      EDGELLM_TRY(regexes_[step_idx]->split(text, next));
      break;
    }
    case PreTokenizerStep::Type::kByteLevel: {
      std::string prefixed;
      std::string_view cur = text;
      if (step.add_prefix_space && text[0] != ' ') {
        prefixed = " ";
        prefixed += text;
        cur = prefixed;
      }
      const auto next_cur = [&](std::string_view piece) {
        if (!st.error.ok()) return;
        Status s = pre_tokenize(step_idx + 1, piece, at_input_start && piece.data() == cur.data(), st);
        if (!s.ok()) st.error = std::move(s);
      };
      if (step.use_regex) {
        EDGELLM_TRY(regexes_[step_idx]->split(cur, next_cur));
      } else {
        next_cur(cur);
      }
      break;
    }
    case PreTokenizerStep::Type::kMetaspace: {
      std::string cur(text);
      replace_all(cur, " ", step.replacement);
      const bool starts = cur.compare(0, step.replacement.size(), step.replacement) == 0;
      const bool prepend = !starts && (step.prepend_scheme == PreTokenizerStep::PrependScheme::kAlways ||
                                       (step.prepend_scheme == PreTokenizerStep::PrependScheme::kFirst && at_input_start));
      if (prepend) cur.insert(0, step.replacement);
      const std::string_view view = cur;
      const auto emit = [&](std::string_view piece) {
        if (!st.error.ok() || piece.empty()) return;
        Status s = pre_tokenize(step_idx + 1, piece, at_input_start && piece.data() == view.data(), st);
        if (!s.ok()) st.error = std::move(s);
      };
      if (!step.split) {
        emit(view);
        break;
      }
      // "MergedWithNext": each replacement character starts a new piece.
      size_t piece_start = 0;
      size_t hit = view.find(step.replacement, 1);
      while (hit != std::string_view::npos) {
        emit(view.substr(piece_start, hit - piece_start));
        piece_start = hit;
        hit = view.find(step.replacement, hit + step.replacement.size());
      }
      emit(view.substr(piece_start));
      break;
    }
  }
  if (!st.error.ok()) return std::move(st.error);
  return {};
}

void Tokenizer::initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const {
  ids.clear();
  bool last_was_unk = false;
  const auto push_unk = [&]() {
    if (!model_.unk_id) return;  // Hugging Face BPE drops unknown characters when there is no unk token
    if (!(model_.fuse_unk && last_was_unk)) ids.push_back(*model_.unk_id);
    last_was_unk = true;
  };
  if (model_.kind != TokenizerKind::kSentencePieceBpe) {
    for (char c : piece) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        ids.push_back(id);
        last_was_unk = false;
      } else {
        push_unk();
      }
    }
    return;
  }
  size_t pos = 0;
  while (pos < piece.size()) {
    size_t len = utf8_sequence_length(piece, pos);
    if (len == 0) len = 1;  // unreachable: input was validated
    const std::string_view ch = piece.substr(pos, len);
    pos += len;
    if (const int32_t id = symbol_index_.find(ch); id >= 0) {
      ids.push_back(id);
      last_was_unk = false;
      continue;
    }
    if (model_.byte_fallback) {
      bool all = true;
      for (char c : ch) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {
        for (char c : ch) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        last_was_unk = false;
        continue;
      }
    }
    push_unk();
  }
}

void Tokenizer::encode_piece(std::string_view piece, EncodeState& st) const {
  const bool cacheable = piece.size() <= PieceCache::kMaxPieceBytes;
  if (cacheable && cache_.lookup(piece, *st.out)) return;
  st.ids.clear();
  if (model_.ignore_merges) {
    if (const int32_t id = symbol_index_.find(piece); id >= 0) st.ids.push_back(id);
  }
  if (st.ids.empty()) {
    initial_symbols(piece, st.ids);
    bpe_merge(pairs_, st.ids, st.scratch);
  }
  st.out->insert(st.out->end(), st.ids.begin(), st.ids.end());
  if (cacheable) cache_.insert(piece, st.ids);
}

void Tokenizer::clear_cache() const { cache_.clear(); }

// ---- decoding ----

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab()) continue;
    if (skip_special && is_special_[id]) continue;
    bytes += token_bytes_[id];
  }
  if (model_.decode_strip_leading_space && !bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
  return utf8_lossy(bytes);
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::push(int32_t id) {
  if (id < 0 || id >= tokenizer_.n_vocab()) return {};
  if (skip_special_ && tokenizer_.is_special(id)) return {};
  std::string bytes = tokenizer_.token_bytes(id);
  if (bytes.empty()) return {};
  if (at_start_) {
    if (tokenizer_.decode_strips_leading_space() && bytes[0] == ' ') bytes.erase(0, 1);
    at_start_ = false;
  }
  pending_ += bytes;
  const size_t n = utf8_complete_prefix_length(pending_);
  std::string out = utf8_lossy(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out = utf8_lossy(pending_);
  pending_.clear();
  at_start_ = true;
  return out;
}

}  // namespace edgellm
