// Text <-> token ids for Qwen-family and Llama models, byte-identical to Hugging Face `tokenizers`.
//
// Three vocabulary kinds share one pipeline (the Hugging Face order, tokenizers: tokenizer/mod.rs):
//   1. added tokens (special and not) are cut out of the raw text first;
//   2. each remaining chunk is normalized (NFC, Prepend, Replace);
//   3. the pre-tokenizer splits it (regex Split, ByteLevel, Metaspace);
//   4. each piece is turned into initial symbols (bytes, or characters with byte fallback) and merged
//      by BPE (see bpe.h), with a per-tokenizer cache of piece -> ids.
// Loaders (tokenizer.json, qwen.tiktoken, GGUF metadata, synthetic) all fill a TokenizerModel and call
// Tokenizer::from_model, which validates it and builds the lookup tables.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/bpe.h"
#include "tokenizer/string_arena.h"
#include "tokenizer/vocab_index.h"
#include "tokenizer/piece_cache.h"
#include "tokenizer/regex_splitter.h"
#include "util/expected.h"

namespace edgellm {

class GgufFile;
class GgufWriter;

enum class TokenizerKind { kByteLevelBpe, kSentencePieceBpe, kTiktoken };
const char* tokenizer_kind_name(TokenizerKind kind);

// GGUF's numbering (tokenizer.ggml.token_type; llama.cpp: include/llama.h, llama_token_type).
enum class TokenType : int32_t { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct TextSegment {
  std::string_view text;
  bool allow_special;
};

// A token cut out of the text before normalization (tokenizer.json "added_tokens").
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = true;        // a control token: only matched where allowed, dropped by skip_special
  bool lstrip = false;        // the match swallows whitespace on its left
  bool rstrip = false;        // ... and on its right
  bool single_word = false;   // only matched when not inside a word
  bool normalized = false;    // matched in the normalized text instead of the raw text
};

struct NormalizerStep {
  enum class Type { kNfc, kPrepend, kReplace };
  Type type = Type::kNfc;
  std::string pattern;  // kReplace: the literal text to replace
  std::string content;  // kPrepend: the prefix (only for non-empty text); kReplace: the replacement
};

struct PreTokenizerStep {
  enum class Type { kSplit, kByteLevel, kMetaspace };
  enum class PrependScheme { kAlways, kFirst, kNever };
  Type type = Type::kSplit;
  std::string pattern;              // kSplit: regex, "Isolated" behaviour
  bool add_prefix_space = false;    // kByteLevel: prepend ' ' to a piece not starting with one
  bool use_regex = false;           // kByteLevel: also split with the GPT-2 pattern
  std::string replacement = "\xE2\x96\x81";  // kMetaspace: U+2581
  PrependScheme prepend_scheme = PrependScheme::kAlways;  // kMetaspace
  bool split = true;                // kMetaspace: split before each replacement character
};

// Where BPE merge ranks come from (see bpe.h).
enum class MergeSource {
  kMergesList,   // `merges`: explicit pairs, rank = list index (Hugging Face, GGUF gpt2)
  kTokenRanks,   // any split of a token into two tokens, rank = the token's id (tiktoken)
  kPieceScores,  // any split of a normal piece into two normal pieces, by descending score (GGUF llama)
};

// A BPE merge list: pairs of vocabulary strings in rank order, kept in two arenas (a 152k-merge list as
// pairs of std::string took ~10 MB, the largest part of a tokenizer's load peak).
class MergeList {
 public:
  void reserve(size_t n) {
    left_.reserve(n, 0);
    right_.reserve(n, 0);
  }
  void emplace_back(std::string_view left, std::string_view right) {
    left_.push_back(left);
    right_.push_back(right);
  }
  std::pair<std::string_view, std::string_view> operator[](size_t i) const { return {left_[i], right_[i]}; }
  size_t size() const { return left_.size(); }
  bool empty() const { return left_.empty(); }

 private:
  StringArena left_, right_;
};

// Everything a loader knows about a vocabulary. Ids index `pieces` and `types` (same length).
struct TokenizerModel {
  TokenizerKind kind = TokenizerKind::kByteLevelBpe;
  std::string source;                  // file name for error messages
  // Vocabulary strings as written in the vocabulary: ByteLevel text for kByteLevelBpe/kTiktoken
  // (e.g. "Ġworld"), SentencePiece pieces for kSentencePieceBpe (e.g. "▁world", "<0x0A>"); added
  // tokens hold their content. Empty strings mark unused ids. A built Tokenizer keeps them in an arena
  // (model().pieces is then empty; token_piece(id) reads them).
  std::vector<std::string> pieces;
  std::vector<TokenType> types;
  std::vector<float> scores;           // kPieceScores only, one per id
  MergeSource merge_source = MergeSource::kMergesList;
  // kMergesList: pairs of pieces. A built Tokenizer keeps them as its pair table only (model().merges is
  // then empty; write_gguf_metadata writes the list back from the table).
  MergeList merges;
  std::vector<AddedToken> added_tokens;
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  bool byte_fallback = false;          // unknown characters become <0xXX> tokens
  std::optional<int32_t> unk_id;       // otherwise unknown characters become this (or are dropped)
  bool fuse_unk = false;               // consecutive unknowns become one unk
  bool ignore_merges = false;          // a piece that is itself in the vocabulary is not merged (Llama 3)
  bool decode_strip_leading_space = false;  // SentencePiece decoders drop the space they prepended
  std::optional<int32_t> bos_id, eos_id, pad_id;
  bool add_bos = false;
  bool add_eos = false;
  std::optional<std::string> chat_template;  // from tokenizer_config.json or GGUF, if present
};

class Tokenizer {
 public:
  // Loaders. Errors name the file and the key/line/offset at fault, expected vs got.
  static Expected<std::unique_ptr<Tokenizer>> from_tokenizer_json(const std::string& path);
  static Expected<std::unique_ptr<Tokenizer>> from_tiktoken(const std::string& path);  // Qwen 1
  static Expected<std::unique_ptr<Tokenizer>> from_gguf(const GgufFile& gguf);
  // A file: tokenizer.json, *.tiktoken, a .gguf, or a Hugging Face model directory.
  static Expected<std::unique_ptr<Tokenizer>> from_path(const std::string& path);
  // Validates `model` and builds the lookup tables.
  static Expected<std::unique_ptr<Tokenizer>> from_model(TokenizerModel model);

  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // Writes the llama.cpp-compatible tokenizer.ggml.* keys (model, pre, tokens, token_type,
  // merges/scores, bos/eos/padding/unknown ids, add_bos_token, add_space_prefix) and
  // tokenizer.chat_template, so a GGUF written by edgellm loads in llama.cpp and back in edgellm.
  // `min_n_vocab` pads the token list with unused "[PAD<id>]" tokens up to a model's embedding rows.
  void write_gguf_metadata(GgufWriter& w, int32_t min_n_vocab = 0) const;

  // Plain text; special-token strings are parsed as control tokens only if allow_special.
  // Non-special added tokens (e.g. Qwen3's <think>) are always recognised, as in Hugging Face with
  // `split_special_tokens=True`. Errors: invalid UTF-8 (kInvalidArgument, naming the byte offset),
  // text over 2 GiB. Thread-safe. Adds no BOS (see add_bos()).
  Expected<std::vector<int32_t>> encode(std::string_view text, bool allow_special) const;
  // Several segments encoded as if concatenated (so results equal encoding the whole string when no
  // special token appears), but special tokens are recognised only inside allow_special segments.
  // Chat prompts: template text allow_special=true, user message content false.
  Expected<std::vector<int32_t>> encode_segments(const std::vector<TextSegment>& segments) const;

  // Concatenated token bytes as UTF-8, invalid sequences replaced by U+FFFD; out-of-range ids
  // decode to nothing. skip_special drops special (control) tokens.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const;
  std::string token_bytes(int32_t id) const;       // raw bytes of one token (as it decodes)
  std::string token_piece(int32_t id) const;       // the vocabulary string (for display)
  std::optional<int32_t> token_id(std::string_view piece) const;  // exact vocab/special lookup
  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  TokenizerKind kind() const { return model_.kind; }
  TokenType token_type(int32_t id) const;
  bool is_special(int32_t id) const;  // a special added token (skipped by decode(skip_special))
  std::optional<int32_t> bos_id() const { return model_.bos_id; }
  std::optional<int32_t> eos_id() const { return model_.eos_id; }
  std::optional<int32_t> pad_id() const { return model_.pad_id; }
  bool add_bos() const { return model_.add_bos; }  // whether a prompt should start with BOS
  bool add_eos() const { return model_.add_eos; }
  const std::optional<std::string>& chat_template() const { return model_.chat_template; }
  const std::vector<AddedToken>& added_tokens() const { return model_.added_tokens; }
  const TokenizerModel& model() const { return model_; }
  // Empties the piece cache (benchmarks measure encoding from scratch with it).
  void clear_cache() const;
  // True if the decoder drops one leading space of the text (SentencePiece); streaming needs it.
  bool decode_strips_leading_space() const { return model_.decode_strip_leading_space; }

 private:
  explicit Tokenizer(TokenizerModel model);
  Status build();
  Status build_merges();

  struct EncodeState;
  struct Chunk;
  Status encode_chunk(std::string_view text, bool at_input_start, EncodeState& st) const;
  Status encode_normalized(std::string_view text, bool at_input_start, EncodeState& st) const;
  Status pre_tokenize(size_t step, std::string_view text, bool at_input_start, EncodeState& st) const;
  void encode_piece(std::string_view piece, EncodeState& st) const;
  void initial_symbols(std::string_view piece, std::vector<int32_t>& ids) const;
  // Finds the leftmost-longest added token in text[from, end) of kind `normalized`; special
  // tokens only if allow_special. Returns false if none.
  bool find_added(std::string_view text, size_t from, bool allow_special, bool normalized, size_t& start,
                  size_t& end, int32_t& id) const;

  TokenizerModel model_;
  StringArena pieces_;                    // per id, the vocabulary string (model_.pieces, moved here by build())
  StringArena token_bytes_;               // per id, what it decodes to
  std::vector<uint8_t> is_special_;       // per id
  // Raw bytes (kByteLevelBpe, kTiktoken: keys in token_bytes_) or piece text (kSentencePieceBpe: keys in
  // pieces_) -> id, for the model vocab (not added tokens).
  VocabIndex symbol_index_;
  std::unordered_map<std::string_view, int32_t> added_index_;  // added token content -> id
  std::vector<std::unique_ptr<RegexSplitter>> regexes_;        // per pre-tokenizer step (null if none)
  PairTable pairs_;
  int32_t byte_ids_[256];   // initial symbol of each byte (byte-level) or <0xXX> (byte fallback), -1 if none
  // Added tokens grouped by first byte, longest first (indices into model_.added_tokens).
  std::vector<std::vector<uint32_t>> added_by_first_byte_;
  bool has_normalized_added_ = false;
  bool has_raw_added_ = false;

  mutable PieceCache cache_;
};

// Streaming detokenizer: push ids one by one; returns only complete, valid UTF-8; bytes of an unfinished
// character wait for the next token; invalid sequences become U+FFFD. The concatenation of all push()
// results and flush() equals Tokenizer::decode of the same ids. Not thread-safe; the Tokenizer must
// outlive it.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special = false);
  std::string push(int32_t id);
  // Emits whatever is pending (an unfinished character becomes U+FFFD) and resets the decoder.
  std::string flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool at_start_ = true;  // nothing emitted yet (for the SentencePiece leading-space rule)
  std::string pending_;   // bytes of an unfinished character
};

// A valid byte-level BPE vocabulary of exactly n_vocab tokens (256 byte tokens + generated merges + the
// specials <|endoftext|>, <|im_start|>, <|im_end|> at the end), for synthetic models at real dimensions.
// Deterministic. n_vocab must be at least 259 (kInvalidArgument otherwise).
Expected<std::unique_ptr<Tokenizer>> make_synthetic_tokenizer(int32_t n_vocab);

// Replaces each invalid UTF-8 sequence of `text` by U+FFFD, for callers that prefer that to an error.
std::string sanitize_utf8(std::string_view text);

}  // namespace edgellm
