// `edgellm tokenize`: text -> token ids (and back), for people and for scripts.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::cli {

namespace {

struct TokenizeOptions {
  std::string model_path;
  std::string tokenizer_path;
  std::string text;
  std::string lines_path;
  std::string write_gguf_path;
  bool ids_only = false;
  bool count_only = false;
  bool no_bos = false;
  bool no_special = false;
  bool decode = false;
};

// Printable form of a token's bytes: C-style escapes for control characters, quotes, backslashes and
// bytes that are not valid UTF-8 on their own (half of a character).
std::string escape_bytes(const std::string& bytes) {
  std::string out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const auto b = static_cast<uint8_t>(bytes[pos]);
    char buf[8];
    if (b == '\n') out += "\\n";
    else if (b == '\t') out += "\\t";
    else if (b == '\r') out += "\\r";
    else if (b == '\\') out += "\\\\";
    else if (b == '\'') out += "\\'";
    else if (b < 0x20 || b == 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02X", b);
      out += buf;
    } else if (b < 0x80) {
      out.push_back(static_cast<char>(b));
    } else {
      // Copy one whole valid character, or escape this byte.
      const size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
      if (len > 1 && pos + len <= bytes.size() && sanitize_utf8(bytes.substr(pos, len)) == bytes.substr(pos, len)) {
        out += bytes.substr(pos, len);
        pos += len;
        continue;
      }
      std::snprintf(buf, sizeof(buf), "\\x%02X", b);
      out += buf;
    }
    ++pos;
  }
  return out;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(' ');
    out += std::to_string(ids[i]);
  }
  return out;
}

Expected<std::vector<int32_t>> parse_ids(const std::string& text, const Tokenizer& tok) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    char* end = nullptr;
    const long v = std::strtol(word.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v >= tok.n_vocab()) {
      return make_error(ErrorCode::kInvalidArgument, "'" + word + "' is not a token id in [0, " +
                                                         std::to_string(tok.n_vocab()) + ")");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  return ids;
}

Expected<std::vector<int32_t>> encode_text(const Tokenizer& tok, std::string_view text, const TokenizeOptions& o) {
  EDGELLM_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(text, !o.no_special));
  if (!o.no_bos && tok.add_bos() && tok.bos_id()) ids.insert(ids.begin(), *tok.bos_id());
  return ids;
}

// --lines: each input line is a JSON string; prints one output line per input line.
Status run_lines(const Tokenizer& tok, const TokenizeOptions& o) {
  std::ifstream in(o.lines_path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, o.lines_path + ": cannot open");
  std::string line;
  size_t line_no = 0;
  std::string out;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string where = o.lines_path + ": line " + std::to_string(line_no);
    if (o.decode) {
      EDGELLM_ASSIGN_OR_RETURN(const auto ids, parse_ids(line, tok));
      out += nlohmann::json(tok.decode(ids)).dump();
    } else {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_string()) return make_error(ErrorCode::kFormat, where + ": expected a JSON string");
      auto ids = encode_text(tok, j.get<std::string>(), o);
      if (!ids.ok()) return make_error(ids.error().code, where + ": " + ids.error().message);
      out += o.count_only ? std::to_string(ids->size()) : join_ids(*ids);
    }
    out.push_back('\n');
    if (out.size() > (1 << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return {};
}

Status run_tokenize(const TokenizeOptions& o) {
  if (o.model_path.empty() == o.tokenizer_path.empty()) {
    return make_error(ErrorCode::kInvalidArgument, "give exactly one of -m MODEL or --tokenizer FILE");
  }
  const std::string& path = o.model_path.empty() ? o.tokenizer_path : o.model_path;
  EDGELLM_ASSIGN_OR_RETURN(const auto tok, Tokenizer::from_path(path));

  if (!o.write_gguf_path.empty()) {
    GgufWriter w;
    w.set_string("general.architecture", "tokenizer");
    tok->write_gguf_metadata(w);
    EDGELLM_TRY(w.write(o.write_gguf_path));
    return {};
  }
  if (!o.lines_path.empty()) return run_lines(*tok, o);

  std::string text = o.text;
  if (text == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (o.decode) {
    EDGELLM_ASSIGN_OR_RETURN(const auto ids, parse_ids(text, *tok));
    std::fputs(tok->decode(ids).c_str(), stdout);
    return {};
  }
  EDGELLM_ASSIGN_OR_RETURN(const auto ids, encode_text(*tok, text, o));
  if (o.count_only) {
    std::printf("%zu\n", ids.size());
  } else if (o.ids_only) {
    std::printf("%s\n", join_ids(ids).c_str());
  } else {
    for (int32_t id : ids) {
      std::printf("%8d  '%s'%s\n", id, escape_bytes(tok->token_bytes(id)).c_str(),
                  tok->is_special(id) ? "  (special)" : "");
    }
  }
  return {};
}

}  // namespace

void add_tokenize_command(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize",
      "Text to token ids with a model's tokenizer.\n"
      "Prints one line per token: id and its text. Special-token strings such as <|im_end|> become\n"
      "control tokens unless --no-special; BOS is prepended when the tokenizer's config asks for it\n"
      "unless --no-bos.");
  cmd->add_option("-m,--model", opts->model_path, "model: a GGUF file or a Hugging Face model directory");
  cmd->add_option("--tokenizer", opts->tokenizer_path,
                  "tokenizer file: tokenizer.json, qwen.tiktoken, a GGUF file or a model directory");
  cmd->add_option("text", opts->text, "the text; '-' reads it from standard input");
  cmd->add_flag("--ids", opts->ids_only, "print only the ids, space-separated on one line");
  cmd->add_flag("--count", opts->count_only, "print only the number of tokens");
  cmd->add_flag("--no-bos", opts->no_bos, "never prepend BOS");
  cmd->add_flag("--no-special", opts->no_special, "treat special-token strings as plain text");
  cmd->add_flag("--decode", opts->decode, "the input is space-separated ids; print the decoded text");
  cmd->add_option("--lines", opts->lines_path,
                  "batch mode: each line of FILE is a JSON string (so texts may hold newlines); prints one line "
                  "of space-separated ids per input line (--count: the count). With --decode each line holds "
                  "ids and the output lines are JSON strings");
  cmd->add_option("--write-gguf", opts->write_gguf_path,
                  "write the tokenizer as GGUF metadata (tokenizer.ggml.* keys, no tensors) to FILE");
  cmd->callback([opts, &exit_code]() {
    Status s = run_tokenize(*opts);
    if (!s.ok()) {
      std::fprintf(stderr, "edgellm tokenize: %s\n", s.error().message.c_str());
      exit_code = 1;
    }
  });
}

}  // namespace edgellm::cli
