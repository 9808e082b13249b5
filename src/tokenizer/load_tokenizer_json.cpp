// Hugging Face tokenizer.json (tokenizers' serialization: tokenizers/src/tokenizer/serialization.rs) and
// the tokenizer_config.json beside it (special tokens, add_bos_token, chat_template).
// Supported: model BPE; normalizers NFC, Prepend, Replace (string pattern), Sequence; pre-tokenizers
// Split (Isolated), ByteLevel, Metaspace, Sequence; decoders ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, Sequence; post-processors TemplateProcessing, ByteLevel, Sequence.
// Anything else is a kUnsupported error naming the component, never silently ignored.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "format/hf_dir.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

struct JsonLoader {
  std::string path;

  Error format(const std::string& where, const std::string& what) const {
    return make_error(ErrorCode::kFormat, path + ": " + where + ": " + what);
  }
  Error unsupported(const std::string& where, const std::string& what) const {
    return make_error(ErrorCode::kUnsupported, path + ": " + where + ": " + what);
  }

  static std::string type_name(const json& j) { return j.type_name(); }

  Expected<std::string> get_string(const json& obj, const char* key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) return format(where, std::string("missing key '") + key + "'");
    if (!it->is_string()) return format(where, std::string("'") + key + "' should be a string, got " + type_name(*it));
    return it->get<std::string>();
  }
  // Optional bool: absent or null gives `fallback`.
  Expected<bool> get_bool(const json& obj, const char* key, bool fallback, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return format(where, std::string("'") + key + "' should be a boolean, got " + type_name(*it));
    return it->get<bool>();
  }

  Status normalizer(const json& j, const std::string& where, TokenizerModel& m) const {
    if (j.is_null()) return {};
    if (!j.is_object()) return format(where, "should be an object, got " + type_name(j));
    EDGELLM_ASSIGN_OR_RETURN(const std::string type, get_string(j, "type", where));
    if (type == "Sequence") {
      auto it = j.find("normalizers");
      if (it == j.end() || !it->is_array()) return format(where, "Sequence without a 'normalizers' array");
      for (size_t i = 0; i < it->size(); ++i) {
        EDGELLM_TRY(normalizer((*it)[i], where + ".normalizers[" + std::to_string(i) + "]", m));
      }
      return {};
    }
    if (type == "NFC") {
      m.normalizer.push_back({NormalizerStep::Type::kNfc, "", ""});
      return {};
    }
    if (type == "Prepend") {
      EDGELLM_ASSIGN_OR_RETURN(std::string prepend, get_string(j, "prepend", where));
      m.normalizer.push_back({NormalizerStep::Type::kPrepend, "", std::move(prepend)});
      return {};
    }
    if (type == "Replace") {
      auto pattern = j.find("pattern");
      if (pattern == j.end() || !pattern->is_object() || !pattern->contains("String") || !(*pattern)["String"].is_string()) {
        return unsupported(where, "Replace normalizer with a non-string pattern (only {\"String\": ...} is supported)");
      }
      EDGELLM_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", where));
      m.normalizer.push_back({NormalizerStep::Type::kReplace, (*pattern)["String"].get<std::string>(), std::move(content)});
      return {};
    }
    return unsupported(where, "normalizer type '" + type + "' (supported: NFC, Prepend, Replace, Sequence)");
  }

  Expected<PreTokenizerStep::PrependScheme> prepend_scheme(const json& j, const std::string& where) const {
    using PS = PreTokenizerStep::PrependScheme;
    if (auto it = j.find("prepend_scheme"); it != j.end() && it->is_string()) {
      const std::string s = it->get<std::string>();
      if (s == "always") return PS::kAlways;
      if (s == "first") return PS::kFirst;
      if (s == "never") return PS::kNever;
      return format(where, "prepend_scheme '" + s + "', expected always, first or never");
    }
    // Older files: add_prefix_space (default true).
    EDGELLM_ASSIGN_OR_RETURN(const bool add, get_bool(j, "add_prefix_space", true, where));
    return add ? PS::kAlways : PS::kNever;
  }

  Status pre_tokenizer(const json& j, const std::string& where, TokenizerModel& m, bool& byte_level) const {
    if (j.is_null()) return {};
    if (!j.is_object()) return format(where, "should be an object, got " + type_name(j));
    EDGELLM_ASSIGN_OR_RETURN(const std::string type, get_string(j, "type", where));
    if (type == "Sequence") {
      auto it = j.find("pretokenizers");
      if (it == j.end() || !it->is_array()) return format(where, "Sequence without a 'pretokenizers' array");
      for (size_t i = 0; i < it->size(); ++i) {
        EDGELLM_TRY(pre_tokenizer((*it)[i], where + ".pretokenizers[" + std::to_string(i) + "]", m, byte_level));
      }
      return {};
    }
    PreTokenizerStep step;
    if (type == "Split") {
      step.type = PreTokenizerStep::Type::kSplit;
      auto pattern = j.find("pattern");
      if (pattern == j.end() || !pattern->is_object()) return format(where, "Split without a 'pattern' object");
      if (pattern->contains("Regex") && (*pattern)["Regex"].is_string()) {
        step.pattern = (*pattern)["Regex"].get<std::string>();
      } else if (pattern->contains("String") && (*pattern)["String"].is_string()) {
        step.pattern = "\\Q" + (*pattern)["String"].get<std::string>() + "\\E";
      } else {
        return format(where, "Split pattern should be {\"Regex\": ...} or {\"String\": ...}");
      }
      EDGELLM_ASSIGN_OR_RETURN(const std::string behavior, get_string(j, "behavior", where));
      if (behavior != "Isolated") return unsupported(where, "Split behavior '" + behavior + "' (only Isolated)");
      EDGELLM_ASSIGN_OR_RETURN(const bool invert, get_bool(j, "invert", false, where));
      if (invert) return unsupported(where, "Split with invert=true");
    } else if (type == "ByteLevel") {
      step.type = PreTokenizerStep::Type::kByteLevel;
      EDGELLM_ASSIGN_OR_RETURN(step.add_prefix_space, get_bool(j, "add_prefix_space", true, where));
      EDGELLM_ASSIGN_OR_RETURN(step.use_regex, get_bool(j, "use_regex", true, where));
      byte_level = true;
    } else if (type == "Metaspace") {
      step.type = PreTokenizerStep::Type::kMetaspace;
      EDGELLM_ASSIGN_OR_RETURN(step.replacement, get_string(j, "replacement", where));
      EDGELLM_ASSIGN_OR_RETURN(step.prepend_scheme, prepend_scheme(j, where));
      EDGELLM_ASSIGN_OR_RETURN(step.split, get_bool(j, "split", true, where));
    } else {
      return unsupported(where, "pre-tokenizer type '" + type + "' (supported: Split, ByteLevel, Metaspace, Sequence)");
    }
    m.pre_tokenizer.push_back(std::move(step));
    return {};
  }

  Status decoder(const json& j, const std::string& where, TokenizerModel& m) const {
    if (j.is_null()) return {};
    if (!j.is_object()) return format(where, "should be an object, got " + type_name(j));
    EDGELLM_ASSIGN_OR_RETURN(const std::string type, get_string(j, "type", where));
    if (type == "Sequence") {
      auto it = j.find("decoders");
      if (it == j.end() || !it->is_array()) return format(where, "Sequence without a 'decoders' array");
      for (size_t i = 0; i < it->size(); ++i) {
        EDGELLM_TRY(decoder((*it)[i], where + ".decoders[" + std::to_string(i) + "]", m));
      }
      return {};
    }
    if (type == "ByteLevel" || type == "ByteFallback" || type == "Fuse") return {};
    if (type == "Replace") {
      // Only the SentencePiece "▁" -> " " is meaningful for decoding; Tokenizer::build does it.
      auto pattern = j.find("pattern");
      const bool ok = pattern != j.end() && pattern->is_object() && pattern->contains("String") &&
                      (*pattern)["String"] == "\xE2\x96\x81" && j.value("content", "") == " ";
      if (!ok) return unsupported(where, "Replace decoder other than \"\xE2\x96\x81\" -> \" \"");
      return {};
    }
    if (type == "Strip") {
      const std::string content = j.value("content", " ");
      const int start = j.value("start", 0), stop = j.value("stop", 0);
      if (content != " " || start > 1 || stop != 0) {
        return unsupported(where, "Strip decoder other than one leading space");
      }
      m.decode_strip_leading_space = start == 1;
      return {};
    }
    if (type == "Metaspace") {
      EDGELLM_ASSIGN_OR_RETURN(auto scheme, prepend_scheme(j, where));
      m.decode_strip_leading_space = scheme != PreTokenizerStep::PrependScheme::kNever;
      return {};
    }
    return unsupported(where, "decoder type '" + type + "'");
  }

  // TemplateProcessing: a SpecialToken before the sequence is BOS, one after it EOS.
  Status post_processor(const json& j, const std::string& where, const std::unordered_map<std::string, int32_t>& ids,
                        TokenizerModel& m, bool& has_template) const {
    if (j.is_null()) return {};
    if (!j.is_object()) return format(where, "should be an object, got " + type_name(j));
    EDGELLM_ASSIGN_OR_RETURN(const std::string type, get_string(j, "type", where));
    if (type == "Sequence") {
      auto it = j.find("processors");
      if (it == j.end() || !it->is_array()) return format(where, "Sequence without a 'processors' array");
      for (size_t i = 0; i < it->size(); ++i) {
        EDGELLM_TRY(post_processor((*it)[i], where + ".processors[" + std::to_string(i) + "]", ids, m, has_template));
      }
      return {};
    }
    if (type != "TemplateProcessing") return {};  // ByteLevel, RobertaProcessing...: no ids added for one sequence
    auto single = j.find("single");
    if (single == j.end() || !single->is_array()) return format(where, "TemplateProcessing without 'single'");
    has_template = true;
    bool seen_sequence = false;
    for (const json& item : *single) {
      if (item.contains("Sequence")) {
        seen_sequence = true;
        continue;
      }
      if (!item.contains("SpecialToken")) continue;
      const std::string name = item["SpecialToken"].value("id", "");
      auto id = ids.find(name);
      if (id == ids.end()) return format(where, "special token '" + name + "' is not in the vocabulary");
      if (!seen_sequence) {
        m.bos_id = id->second;
        m.add_bos = true;
      } else {
        m.eos_id = id->second;
        m.add_eos = true;
      }
    }
    return {};
  }
};

// tokenizer_config.json writes a special token as a string or as {"content": "..."}.
std::optional<std::string> config_token(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_tokenizer_json(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(const json root, read_json_file(path));
  JsonLoader L{path};
  if (!root.is_object()) return L.format("top level", "should be an object, got " + std::string(root.type_name()));
  auto model_it = root.find("model");
  if (model_it == root.end() || !model_it->is_object()) return L.format("model", "missing or not an object");
  const json& jm = *model_it;
  const std::string model_type = jm.value("type", "BPE");
  if (model_type != "BPE") {
    return L.unsupported("model.type", "'" + model_type + "' (only BPE vocabularies are supported)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (auto it = jm.find(key); it != jm.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty())) {
      return L.unsupported(std::string("model.") + key, "must be empty");
    }
  }
  if (auto it = jm.find("dropout"); it != jm.end() && !it->is_null() && it->is_number() && it->get<double>() > 0) {
    return L.unsupported("model.dropout", "BPE dropout is for training only");
  }

  TokenizerModel m;
  m.source = path;
  auto vocab_it = jm.find("vocab");
  if (vocab_it == jm.end() || !vocab_it->is_object()) return L.format("model.vocab", "missing or not an object");
  auto merges_it = jm.find("merges");
  if (merges_it == jm.end() || !merges_it->is_array()) return L.format("model.merges", "missing or not an array");

  // Ids may leave gaps; n_vocab covers the model vocabulary and the added tokens.
  std::unordered_map<std::string, int32_t> ids;
  int64_t max_id = -1;
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > INT32_MAX) {
      return L.format("model.vocab['" + it.key() + "']", "id should be a non-negative integer");
    }
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    ids.emplace(it.key(), id);
    max_id = std::max<int64_t>(max_id, id);
  }
  auto added_it = root.find("added_tokens");
  if (added_it != root.end() && !added_it->is_null()) {
    if (!added_it->is_array()) return L.format("added_tokens", "should be an array");
    for (size_t i = 0; i < added_it->size(); ++i) {
      const json& t = (*added_it)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer()) return L.format(where, "missing integer 'id'");
      AddedToken a;
      const int64_t id = t["id"].get<int64_t>();
      if (id < 0 || id > INT32_MAX) return L.format(where, "id " + std::to_string(id) + " out of range");
      a.id = static_cast<int32_t>(id);
      EDGELLM_ASSIGN_OR_RETURN(a.content, L.get_string(t, "content", where));
      EDGELLM_ASSIGN_OR_RETURN(a.special, L.get_bool(t, "special", false, where));
      EDGELLM_ASSIGN_OR_RETURN(a.lstrip, L.get_bool(t, "lstrip", false, where));
      EDGELLM_ASSIGN_OR_RETURN(a.rstrip, L.get_bool(t, "rstrip", false, where));
      EDGELLM_ASSIGN_OR_RETURN(a.single_word, L.get_bool(t, "single_word", false, where));
      EDGELLM_ASSIGN_OR_RETURN(a.normalized, L.get_bool(t, "normalized", !a.special, where));
      max_id = std::max<int64_t>(max_id, a.id);
      ids.emplace(a.content, a.id);
      m.added_tokens.push_back(std::move(a));
    }
  }
  if (max_id < 0) return L.format("model.vocab", "empty vocabulary");
  m.pieces.assign(static_cast<size_t>(max_id) + 1, std::string());
  m.types.assign(m.pieces.size(), TokenType::kUnused);
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    const auto id = static_cast<int32_t>(it.value().get<int64_t>());
    m.pieces[id] = it.key();
    m.types[id] = TokenType::kNormal;
  }

  bool byte_level = false;
  EDGELLM_TRY(L.normalizer(root.value("normalizer", json()), "normalizer", m));
  EDGELLM_TRY(L.pre_tokenizer(root.value("pre_tokenizer", json()), "pre_tokenizer", m, byte_level));
  EDGELLM_TRY(L.decoder(root.value("decoder", json()), "decoder", m));
  if (!byte_level) {
    if (auto dec = root.find("decoder"); dec != root.end() && dec->is_object() && dec->value("type", "") == "ByteLevel") {
      byte_level = true;
    }
  }
  m.kind = byte_level ? TokenizerKind::kByteLevelBpe : TokenizerKind::kSentencePieceBpe;

  EDGELLM_ASSIGN_OR_RETURN(m.byte_fallback, L.get_bool(jm, "byte_fallback", false, "model"));
  EDGELLM_ASSIGN_OR_RETURN(m.fuse_unk, L.get_bool(jm, "fuse_unk", false, "model"));
  EDGELLM_ASSIGN_OR_RETURN(m.ignore_merges, L.get_bool(jm, "ignore_merges", false, "model"));
  if (auto it = jm.find("unk_token"); it != jm.end() && it->is_string()) {
    auto id = ids.find(it->get<std::string>());
    if (id == ids.end()) return L.format("model.unk_token", "'" + it->get<std::string>() + "' is not in the vocabulary");
    m.unk_id = id->second;
  }

  m.merge_source = MergeSource::kMergesList;
  m.merges.reserve(merges_it->size());
  for (size_t i = 0; i < merges_it->size(); ++i) {
    const json& mj = (*merges_it)[i];
    const std::string where = "model.merges[" + std::to_string(i) + "]";
    if (mj.is_string()) {
      // "a b": exactly one space (tokenizers: models/bpe/serialization.rs).
      const std::string s = mj.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return L.format(where, "'" + s + "' should be two tokens separated by one space");
      }
      m.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
      m.merges.emplace_back(mj[0].get<std::string>(), mj[1].get<std::string>());
    } else {
      return L.format(where, "should be \"a b\" or [\"a\", \"b\"], got " + mj.dump().substr(0, 80));
    }
  }

  // Token types, as llama.cpp's converter assigns them (convert_hf_to_gguf.py).
  for (const AddedToken& a : m.added_tokens) {
    m.pieces[a.id] = a.content;
    m.types[a.id] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  if (m.unk_id) m.types[*m.unk_id] = TokenType::kUnknown;
  if (m.byte_fallback) {
    for (size_t id = 0; id < m.pieces.size(); ++id) {
      const std::string& p = m.pieces[id];
      if (m.types[id] == TokenType::kNormal && p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        m.types[id] = TokenType::kByte;
      }
    }
  }

  bool has_template = false;
  EDGELLM_TRY(L.post_processor(root.value("post_processor", json()), "post_processor", ids, m, has_template));

  // tokenizer_config.json beside it: special tokens, add_bos_token, chat template.
  const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(config_path, ec)) {
    EDGELLM_ASSIGN_OR_RETURN(const json config, read_json_file(config_path.string()));
    if (config.is_object()) {
      const auto lookup = [&](const char* key, std::optional<int32_t>& out) -> Status {
        auto name = config_token(config, key);
        if (!name) return {};
        auto id = ids.find(*name);
        if (id == ids.end()) {
          return make_error(ErrorCode::kFormat, config_path.string() + ": " + key + " '" + *name + "' is not in the vocabulary");
        }
        out = id->second;
        return {};
      };
      EDGELLM_TRY(lookup("bos_token", m.bos_id));
      EDGELLM_TRY(lookup("eos_token", m.eos_id));
      EDGELLM_TRY(lookup("pad_token", m.pad_id));
      if (auto it = config.find("add_bos_token"); it != config.end() && it->is_boolean()) m.add_bos = it->get<bool>();
      if (auto it = config.find("add_eos_token"); it != config.end() && it->is_boolean()) m.add_eos = it->get<bool>();
      if (auto it = config.find("chat_template"); it != config.end()) {
        if (it->is_string()) {
          m.chat_template = it->get<std::string>();
        } else if (it->is_array()) {
          // A list of named templates: the "default" one is used for chat.
          for (const json& t : *it) {
            if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string()) {
              m.chat_template = t["template"].get<std::string>();
            }
          }
        }
      }
    }
  }
  if (m.add_bos && !m.bos_id) m.add_bos = false;
  if (m.add_eos && !m.eos_id) m.add_eos = false;
  return from_model(std::move(m));
}

}  // namespace edgellm
