#include "chat/jinja/parser.h"

#include <algorithm>
#include <cstdlib>
#include <set>

namespace edgellm::jinja {
namespace {

// ---------------------------------------------------------------------------------------------------
// Lexer: the template text and the tokens inside its tags.

enum class T { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };

struct Token {
  T type = T::kEof;
  std::string text;
  int64_t i = 0;
  double f = 0;
  int line = 1, col = 1;
};

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src.size(); ++i) {
      if (src[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  Expected<std::vector<Token>> run() {
    size_t pos = 0;
    bool strip_next = false, trim_newline_next = false;
    while (pos <= src_.size()) {
      const size_t start = next_tag(pos);
      std::string text(src_.substr(pos, start - pos));
      if (strip_next) {
        text.erase(0, text.find_first_not_of(" \t\r\n\f\v") == std::string::npos ? text.size()
                                                                                   : text.find_first_not_of(" \t\r\n\f\v"));
      } else if (trim_newline_next && !text.empty() && text[0] == '\n') {
        text.erase(0, 1);
      } else if (trim_newline_next && text.size() >= 2 && text[0] == '\r' && text[1] == '\n') {
        text.erase(0, 2);
      }
      strip_next = trim_newline_next = false;
      if (start == src_.size()) {
        emit_text(std::move(text), pos);
        break;
      }
      const char kind = src_[start + 1];
      size_t p = start + 2;
      const bool minus = p < src_.size() && src_[p] == '-';
      const bool plus = p < src_.size() && src_[p] == '+';
      if (minus || plus) ++p;
      if (minus) {
        const size_t keep = text.find_last_not_of(" \t\r\n\f\v");
        text.erase(keep == std::string::npos ? 0 : keep + 1);
      } else if ((kind == '%' || kind == '#') && !plus) {
        // lstrip_blocks: spaces and tabs between the start of the line and a block or comment tag go.
        size_t b = start;
        while (b > 0 && (src_[b - 1] == ' ' || src_[b - 1] == '\t')) --b;
        if (b == 0 || src_[b - 1] == '\n') {
          size_t n = start - b;
          while (n > 0 && !text.empty() && (text.back() == ' ' || text.back() == '\t')) {
            text.pop_back();
            --n;
          }
        }
      }
      emit_text(std::move(text), pos);

      if (kind == '#') {
        const size_t end = src_.find("#}", p);
        if (end == std::string_view::npos) return error_at(start, "unterminated comment: no '#}'");
        if (end > p && src_[end - 1] == '-') {
          strip_next = true;
        } else {
          trim_newline_next = true;
        }
        pos = end + 2;
        continue;
      }
      const bool block = kind == '%';
      tokens_.push_back(make(block ? T::kBlockBegin : T::kVarBegin, start));
      const size_t first_token = tokens_.size();
      size_t after = 0;
      bool close_minus = false;
      EDGELLM_TRY(lex_tag(p, block, &after, &close_minus));
      tokens_.push_back(make(block ? T::kBlockEnd : T::kVarEnd, after - 2));
      pos = after;
      if (close_minus) {
        strip_next = true;
      } else if (block) {
        trim_newline_next = true;
      }
      // {% raw %}: everything up to {% endraw %} is text.
      if (block && tokens_.size() == first_token + 2 && tokens_[first_token].type == T::kName &&
          tokens_[first_token].text == "raw") {
        tokens_.resize(first_token - 1);
        size_t search = pos;
        for (;;) {
          const size_t tag = src_.find("{%", search);
          if (tag == std::string_view::npos) return error_at(start, "unterminated raw block: no '{% endraw %}'");
          size_t q = tag + 2;
          const bool end_minus_open = q < src_.size() && src_[q] == '-';
          if (end_minus_open || (q < src_.size() && src_[q] == '+')) ++q;
          while (q < src_.size() && (src_[q] == ' ' || src_[q] == '\t')) ++q;
          if (src_.substr(q, 6) == "endraw") {
            q += 6;
            while (q < src_.size() && (src_[q] == ' ' || src_[q] == '\t')) ++q;
            const bool end_minus = q < src_.size() && src_[q] == '-';
            if (end_minus) ++q;
            if (src_.substr(q, 2) == "%}") {
              std::string body(src_.substr(pos, tag - pos));
              if (strip_next) body.erase(0, std::min(body.size(), body.find_first_not_of(" \t\r\n")));
              else if (trim_newline_next && !body.empty() && body[0] == '\n') body.erase(0, 1);
              if (end_minus_open) {
                const size_t keep = body.find_last_not_of(" \t\r\n");
                body.erase(keep == std::string::npos ? 0 : keep + 1);
              }
              emit_text(std::move(body), pos);
              pos = q + 2;
              strip_next = end_minus;
              trim_newline_next = !end_minus;
              break;
            }
          }
          search = tag + 2;
        }
      }
    }
    tokens_.push_back(make(T::kEof, src_.size()));
    return std::move(tokens_);
  }

 private:
  size_t next_tag(size_t from) const {
    size_t p = from;
    for (;;) {
      p = src_.find('{', p);
      if (p == std::string_view::npos || p + 1 >= src_.size()) return src_.size();
      const char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      ++p;
    }
  }

  void position(size_t offset, int* line, int* col) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(index + 1);
    *col = static_cast<int>(offset - line_starts_[index] + 1);
  }

  Token make(T type, size_t offset) const {
    Token t;
    t.type = type;
    position(offset, &t.line, &t.col);
    return t;
  }

  Error error_at(size_t offset, const std::string& message) const {
    int line = 0, col = 0;
    position(offset, &line, &col);
    return Error(ErrorCode::kInvalidArgument,
                 "template line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + message);
  }

  void emit_text(std::string text, size_t offset) {
    if (text.empty()) return;
    Token t = make(T::kText, offset);
    t.text = std::move(text);
    tokens_.push_back(std::move(t));
  }

  Status lex_tag(size_t p, bool block, size_t* after, bool* close_minus) {
    const std::string_view closer = block ? "%}" : "}}";
    const size_t open = p;
    int depth = 0;  // brackets: a '}' inside {{ {'a': 1} }} does not close the tag
    for (;;) {
      while (p < src_.size() && std::isspace(static_cast<unsigned char>(src_[p]))) ++p;
      if (p >= src_.size()) {
        return error_at(open - 2, std::string("unterminated tag: no '") + std::string(closer) + "'");
      }
      if (depth == 0 && src_[p] == '-' && src_.substr(p + 1, 2) == closer) {
        *close_minus = true;
        *after = p + 3;
        return {};
      }
      if (depth == 0 && src_.substr(p, 2) == closer) {
        *close_minus = false;
        *after = p + 2;
        return {};
      }
      const char c = src_[p];
      Token t = make(T::kOp, p);
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        size_t e = p;
        while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        t.type = T::kName;
        t.text = std::string(src_.substr(p, e - p));
        p = e;
      } else if (std::isdigit(static_cast<unsigned char>(c))) {
        size_t e = p;
        bool is_float = false;
        while (e < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(static_cast<unsigned char>(src_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          size_t q = e + 1;
          if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
          if (q < src_.size() && std::isdigit(static_cast<unsigned char>(src_[q]))) {
            is_float = true;
            e = q;
            while (e < src_.size() && std::isdigit(static_cast<unsigned char>(src_[e]))) ++e;
          }
        }
        std::string digits;
        for (char d : src_.substr(p, e - p)) {
          if (d != '_') digits += d;
        }
        if (is_float) {
          t.type = T::kFloat;
          t.f = std::strtod(digits.c_str(), nullptr);
        } else {
          t.type = T::kInt;
          errno = 0;
          t.i = std::strtoll(digits.c_str(), nullptr, 10);
          if (errno == ERANGE) return error_at(p, "integer literal out of range");
        }
        p = e;
      } else if (c == '\'' || c == '"') {
        t.type = T::kString;
        EDGELLM_TRY(lex_string(&p, &t.text));
      } else {
        static const char* const kTwo[] = {"**", "//", "==", "!=", "<=", ">="};
        std::string op(1, c);
        for (const char* two : kTwo) {
          if (src_.substr(p, 2) == two) op = two;
        }
        if (op.size() == 1 && std::string_view("+-*/%~<>=()[]{},.:|").find(c) == std::string_view::npos) {
          return error_at(p, std::string("unexpected character '") + c + "'");
        }
        if (c == '(' || c == '[' || c == '{') ++depth;
        if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        t.text = op;
        p += op.size();
      }
      tokens_.push_back(std::move(t));
    }
  }

  Status lex_string(size_t* pos, std::string* out) {
    const size_t start = *pos;
    const char quote = src_[start];
    size_t p = start + 1;
    while (p < src_.size() && src_[p] != quote) {
      char c = src_[p];
      if (c != '\\') {
        *out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) break;
      const char e = src_[p + 1];
      p += 2;
      switch (e) {
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'v': *out += '\v'; break;
        case 'a': *out += '\a'; break;
        case '0': *out += '\0'; break;
        case '\\': *out += '\\'; break;
        case '\'': *out += '\''; break;
        case '"': *out += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (p + n > src_.size()) return error_at(p - 2, "truncated \\" + std::string(1, e) + " escape");
          const std::string hex(src_.substr(p, n));
          char* end = nullptr;
          const unsigned long cp = std::strtoul(hex.c_str(), &end, 16);
          if (end != hex.c_str() + n || cp > 0x10FFFF) return error_at(p - 2, "bad \\" + std::string(1, e) + " escape");
          append_utf8(static_cast<uint32_t>(cp), out);
          p += n;
          break;
        }
        default:
          *out += '\\';
          *out += e;
      }
    }
    if (p >= src_.size()) return error_at(start, "unterminated string literal");
    *pos = p + 1;
    return {};
  }

  static void append_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

// ---------------------------------------------------------------------------------------------------
// Parser

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Expected<Body> run() {
    Body body;
    std::string end;
    EDGELLM_TRY(parse_body({}, &body, &end));
    if (!end.empty()) return err(peek(), "unexpected '{% " + end + " %}'");
    return body;
  }

 private:
  const Token& peek(size_t ahead = 0) const { return t_[std::min(pos_ + ahead, t_.size() - 1)]; }
  const Token& next() { return t_[std::min(pos_++, t_.size() - 1)]; }
  bool is_op(const char* op, size_t ahead = 0) const { return peek(ahead).type == T::kOp && peek(ahead).text == op; }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).type == T::kName && peek(ahead).text == name;
  }

  static Error err(const Token& at, const std::string& message) {
    return Error(ErrorCode::kInvalidArgument, "template line " + std::to_string(at.line) + ", column " +
                                                  std::to_string(at.col) + ": " + message);
  }
  static std::string describe(const Token& t) {
    switch (t.type) {
      case T::kEof: return "the end of the template";
      case T::kBlockEnd: return "'%}'";
      case T::kVarEnd: return "'}}'";
      case T::kName: return "'" + t.text + "'";
      case T::kString: return "a string";
      case T::kInt:
      case T::kFloat: return "a number";
      case T::kOp: return "'" + t.text + "'";
      default: return "text";
    }
  }

  Status expect_op(const char* op) {
    if (!is_op(op)) return err(peek(), std::string("expected '") + op + "', found " + describe(peek()));
    ++pos_;
    return {};
  }
  Status expect_block_end() {
    if (peek().type != T::kBlockEnd) return err(peek(), "expected '%}', found " + describe(peek()));
    ++pos_;
    return {};
  }
  Expected<std::string> expect_name(const char* what) {
    if (peek().type != T::kName) return err(peek(), std::string("expected ") + what + ", found " + describe(peek()));
    return next().text;
  }

  struct DepthGuard {
    int& d;
    explicit DepthGuard(int& depth) : d(depth) { ++d; }
    ~DepthGuard() { --d; }
  };
  Status check_depth(const Token& at) const {
    if (depth_ > kMaxParseDepth) return err(at, "nesting deeper than " + std::to_string(kMaxParseDepth) + " levels");
    return {};
  }

  // Parses nodes until a block tag whose keyword is in `ends` (returned in *end, the tag's keyword consumed
  // but not its '%}'), or the end of the template (*end empty).
  Status parse_body(const std::set<std::string>& ends, Body* body, std::string* end) {
    DepthGuard guard(depth_);
    EDGELLM_TRY(check_depth(peek()));
    for (;;) {
      const Token& tok = peek();
      switch (tok.type) {
        case T::kEof:
          end->clear();
          if (!ends.empty()) {
            std::string list;
            for (const auto& e : ends) list += (list.empty() ? "" : " or ") + ("'{% " + e + " %}'");
            return err(tok, "the template ended before " + list);
          }
          return {};
        case T::kText: {
          auto node = std::make_unique<Node>();
          node->kind = Node::Kind::kText;
          node->line = tok.line;
          node->col = tok.col;
          node->text = next().text;
          body->push_back(std::move(node));
          break;
        }
        case T::kVarBegin: {
          ++pos_;
          auto node = std::make_unique<Node>();
          node->kind = Node::Kind::kOutput;
          node->line = tok.line;
          node->col = tok.col;
          EDGELLM_ASSIGN_OR_RETURN(node->expr, parse_expr());
          if (peek().type != T::kVarEnd) return err(peek(), "expected '}}', found " + describe(peek()));
          ++pos_;
          body->push_back(std::move(node));
          break;
        }
        case T::kBlockBegin: {
          if (peek(1).type == T::kName && ends.count(peek(1).text)) {
            pos_ += 2;
            *end = t_[pos_ - 1].text;
            return {};
          }
          ++pos_;
          EDGELLM_TRY(parse_statement(body));
          break;
        }
        default: return err(tok, "unexpected " + describe(tok));
      }
    }
  }

  Status parse_statement(Body* body) {
    const Token& kw = peek();
    if (kw.type != T::kName) return err(kw, "expected a statement keyword, found " + describe(kw));
    const std::string word = next().text;
    auto node = std::make_unique<Node>();
    node->line = kw.line;
    node->col = kw.col;
    if (word == "if") {
      node->kind = Node::Kind::kIf;
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr cond, parse_expr());
      EDGELLM_TRY(expect_block_end());
      for (;;) {
        Body branch;
        std::string end;
        EDGELLM_TRY(parse_body({"elif", "else", "endif"}, &branch, &end));
        node->branches.emplace_back(std::move(cond), std::move(branch));
        if (end == "endif") {
          EDGELLM_TRY(expect_block_end());
          break;
        }
        if (end == "else") {
          EDGELLM_TRY(expect_block_end());
          Body last;
          EDGELLM_TRY(parse_body({"endif"}, &last, &end));
          EDGELLM_TRY(expect_block_end());
          node->branches.emplace_back(nullptr, std::move(last));
          break;
        }
        EDGELLM_ASSIGN_OR_RETURN(cond, parse_expr());  // elif
        EDGELLM_TRY(expect_block_end());
      }
    } else if (word == "for") {
      node->kind = Node::Kind::kFor;
      EDGELLM_TRY(parse_targets(&node->targets));
      if (!is_name("in")) return err(peek(), "expected 'in' in the for statement, found " + describe(peek()));
      ++pos_;
      EDGELLM_ASSIGN_OR_RETURN(node->expr, parse_ternary_free());
      if (is_name("if")) {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(node->filter, parse_expr());
      }
      if (is_name("recursive")) return err(peek(), "recursive for loops are not supported");
      EDGELLM_TRY(expect_block_end());
      std::string end;
      EDGELLM_TRY(parse_body({"else", "endfor"}, &node->body, &end));
      EDGELLM_TRY(expect_block_end());
      if (end == "else") {
        EDGELLM_TRY(parse_body({"endfor"}, &node->else_body, &end));
        EDGELLM_TRY(expect_block_end());
      }
    } else if (word == "set") {
      EDGELLM_ASSIGN_OR_RETURN(std::string first, expect_name("a variable name"));
      node->targets.push_back(first);
      if (is_op(".")) {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(std::string attr, expect_name("an attribute name"));
        node->targets.push_back(attr);
        node->attr_target = true;
      } else {
        while (is_op(",")) {
          ++pos_;
          EDGELLM_ASSIGN_OR_RETURN(std::string more, expect_name("a variable name"));
          node->targets.push_back(more);
        }
      }
      if (is_op("=")) {
        ++pos_;
        node->kind = Node::Kind::kSet;
        EDGELLM_ASSIGN_OR_RETURN(node->expr, parse_tuple_or_expr());
        EDGELLM_TRY(expect_block_end());
      } else {
        if (node->targets.size() != 1 || node->attr_target) return err(peek(), "expected '=' in the set statement");
        node->kind = Node::Kind::kSetBlock;
        EDGELLM_TRY(expect_block_end());
        std::string end;
        EDGELLM_TRY(parse_body({"endset"}, &node->body, &end));
        EDGELLM_TRY(expect_block_end());
      }
    } else if (word == "macro") {
      node->kind = Node::Kind::kMacro;
      EDGELLM_ASSIGN_OR_RETURN(node->text, expect_name("the macro's name"));
      EDGELLM_TRY(parse_params(&node->params));
      EDGELLM_TRY(expect_block_end());
      std::string end;
      EDGELLM_TRY(parse_body({"endmacro"}, &node->body, &end));
      EDGELLM_TRY(expect_block_end());
    } else if (word == "call") {
      node->kind = Node::Kind::kCallBlock;
      if (is_op("(")) EDGELLM_TRY(parse_params(&node->params));
      EDGELLM_ASSIGN_OR_RETURN(node->expr, parse_expr());
      if (node->expr->kind != Expr::Kind::kCall) return err(kw, "expected a macro call after 'call'");
      EDGELLM_TRY(expect_block_end());
      std::string end;
      EDGELLM_TRY(parse_body({"endcall"}, &node->body, &end));
      EDGELLM_TRY(expect_block_end());
    } else if (word == "filter") {
      node->kind = Node::Kind::kFilterBlock;
      // `filter name(args) | more`: the first filter has no '|' before it.
      auto first = make(Expr::Kind::kFilter, peek());
      EDGELLM_ASSIGN_OR_RETURN(first->name, expect_name("a filter name"));
      auto placeholder = std::make_unique<Expr>();
      placeholder->kind = Expr::Kind::kLiteral;
      first->children.push_back(std::move(placeholder));
      if (is_op("(")) EDGELLM_TRY(parse_call_args(first.get()));
      EDGELLM_ASSIGN_OR_RETURN(node->filter, parse_filter_chain(std::move(first), true));
      EDGELLM_TRY(expect_block_end());
      std::string end;
      EDGELLM_TRY(parse_body({"endfilter"}, &node->body, &end));
      EDGELLM_TRY(expect_block_end());
    } else if (word == "break" || word == "continue") {
      node->kind = word == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      EDGELLM_TRY(expect_block_end());
    } else if (word == "generation") {
      // transformers' assistant-mask marker: renders its body.
      EDGELLM_TRY(expect_block_end());
      std::string end;
      Body inner;
      EDGELLM_TRY(parse_body({"endgeneration"}, &inner, &end));
      EDGELLM_TRY(expect_block_end());
      for (auto& n : inner) body->push_back(std::move(n));
      return {};
    } else if (word == "do") {
      // jinja2.ext.do: evaluate for effect ({% do list.append(x) %}).
      node->kind = Node::Kind::kSet;
      EDGELLM_ASSIGN_OR_RETURN(node->expr, parse_expr());
      EDGELLM_TRY(expect_block_end());
    } else if (word.rfind("end", 0) == 0 || word == "elif" || word == "else") {
      return err(kw, "unexpected '{% " + word + " %}': no open block it could close");
    } else {
      return err(kw, "unknown statement '" + word + "'");
    }
    body->push_back(std::move(node));
    return {};
  }

  Status parse_targets(std::vector<std::string>* targets) {
    const bool paren = is_op("(");
    if (paren) ++pos_;
    for (;;) {
      EDGELLM_ASSIGN_OR_RETURN(std::string name, expect_name("a loop variable"));
      targets->push_back(name);
      if (!is_op(",")) break;
      ++pos_;
    }
    if (paren) EDGELLM_TRY(expect_op(")"));
    return {};
  }

  Status parse_params(std::vector<std::pair<std::string, ExprPtr>>* params) {
    EDGELLM_TRY(expect_op("("));
    while (!is_op(")")) {
      EDGELLM_ASSIGN_OR_RETURN(std::string name, expect_name("a parameter name"));
      ExprPtr def;
      if (is_op("=")) {
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(def, parse_expr());
      }
      params->emplace_back(name, std::move(def));
      if (!is_op(",")) break;
      ++pos_;
    }
    return expect_op(")");
  }

  ExprPtr make(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->col = at.col;
    return e;
  }

  // `a, b` without parentheses (set x = 1, 2) makes a tuple.
  Expected<ExprPtr> parse_tuple_or_expr() {
    const Token& at = peek();
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr first, parse_expr());
    if (!is_op(",")) return first;
    ExprPtr tuple = make(Expr::Kind::kTuple, at);
    tuple->children.push_back(std::move(first));
    while (is_op(",")) {
      ++pos_;
      if (peek().type == T::kBlockEnd) break;
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr e, parse_expr());
      tuple->children.push_back(std::move(e));
    }
    return tuple;
  }

  Expected<ExprPtr> parse_expr() {
    DepthGuard guard(depth_);
    EDGELLM_TRY(check_depth(peek()));
    const Token& at = peek();
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr value, parse_or());
    if (!is_name("if")) return value;
    ++pos_;
    ExprPtr e = make(Expr::Kind::kTernary, at);
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr cond, parse_or());
    ExprPtr other;
    if (is_name("else")) {
      ++pos_;
      EDGELLM_ASSIGN_OR_RETURN(other, parse_expr());
    }
    e->children.push_back(std::move(value));
    e->children.push_back(std::move(cond));
    e->children.push_back(std::move(other));
    return e;
  }
  // The iterable of a for loop: no conditional expression (its `if` is the loop filter).
  Expected<ExprPtr> parse_ternary_free() { return parse_or(); }

  Expected<ExprPtr> parse_or() {
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
    while (is_name("or")) {
      const Token& at = next();
      ExprPtr e = make(Expr::Kind::kOr, at);
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
      e->children.push_back(std::move(left));
      e->children.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  Expected<ExprPtr> parse_and() {
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
    while (is_name("and")) {
      const Token& at = next();
      ExprPtr e = make(Expr::Kind::kAnd, at);
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
      e->children.push_back(std::move(left));
      e->children.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  Expected<ExprPtr> parse_not() {
    if (is_name("not")) {
      DepthGuard guard(depth_);
      EDGELLM_TRY(check_depth(peek()));
      const Token& at = next();
      ExprPtr e = make(Expr::Kind::kNot, at);
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
      e->children.push_back(std::move(operand));
      return e;
    }
    return parse_compare();
  }
  Expected<ExprPtr> parse_compare() {
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr left, parse_math1());
    for (;;) {
      const Token& at = peek();
      std::string op;
      bool negated = false;
      if (at.type == T::kOp && (at.text == "==" || at.text == "!=" || at.text == "<" || at.text == "<=" ||
                                at.text == ">" || at.text == ">=")) {
        op = at.text;
        ++pos_;
      } else if (is_name("in")) {
        op = "in";
        ++pos_;
      } else if (is_name("not") && is_name("in", 1)) {
        op = "in";
        negated = true;
        pos_ += 2;
      } else {
        return left;
      }
      ExprPtr e = make(Expr::Kind::kBinary, at);
      e->name = op;
      e->negated = negated;
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr right, parse_math1());
      e->children.push_back(std::move(left));
      e->children.push_back(std::move(right));
      left = std::move(e);
    }
  }
  Expected<ExprPtr> binary_chain(Expected<ExprPtr> (Parser::*sub)(), std::initializer_list<const char*> ops) {
    EDGELLM_ASSIGN_OR_RETURN(ExprPtr left, (this->*sub)());
    for (;;) {
      const Token& at = peek();
      bool match = false;
      for (const char* op : ops) match = match || (at.type == T::kOp && at.text == op);
      if (!match) return left;
      ++pos_;
      ExprPtr e = make(Expr::Kind::kBinary, at);
      e->name = at.text;
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr right, (this->*sub)());
      e->children.push_back(std::move(left));
      e->children.push_back(std::move(right));
      left = std::move(e);
    }
  }
  Expected<ExprPtr> parse_math1() { return binary_chain(&Parser::parse_concat, {"+", "-"}); }
  Expected<ExprPtr> parse_concat() { return binary_chain(&Parser::parse_math2, {"~"}); }
  Expected<ExprPtr> parse_math2() { return binary_chain(&Parser::parse_pow, {"*", "/", "//", "%"}); }
  Expected<ExprPtr> parse_pow() { return binary_chain(&Parser::parse_unary_filtered, {"**"}); }
  Expected<ExprPtr> parse_unary_filtered() { return parse_unary(true); }

  // As jinja2: `-x|f` is f(-x); the operand of a sign takes no filters itself.
  Expected<ExprPtr> parse_unary(bool with_filter) {
    DepthGuard guard(depth_);
    EDGELLM_TRY(check_depth(peek()));
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& at = next();
      node = make(at.text == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, at);
      EDGELLM_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
      node->children.push_back(std::move(operand));
    } else {
      EDGELLM_ASSIGN_OR_RETURN(node, parse_primary());
      EDGELLM_ASSIGN_OR_RETURN(node, parse_postfix(std::move(node)));
    }
    return with_filter ? parse_filter_chain(std::move(node), false) : Expected<ExprPtr>(std::move(node));
  }

  Expected<ExprPtr> parse_primary() {
    const Token& tok = peek();
    switch (tok.type) {
      case T::kName: {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kLiteral, tok);
        if (tok.text == "true" || tok.text == "True") {
          e->literal = Value::boolean(true);
        } else if (tok.text == "false" || tok.text == "False") {
          e->literal = Value::boolean(false);
        } else if (tok.text == "none" || tok.text == "None") {
          e->literal = Value::none();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = tok.text;
        }
        return e;
      }
      case T::kString: {
        ExprPtr e = make(Expr::Kind::kLiteral, tok);
        std::string s;
        while (peek().type == T::kString) s += next().text;  // adjacent literals concatenate
        e->literal = Value::string(std::move(s));
        return e;
      }
      case T::kInt: {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kLiteral, tok);
        e->literal = Value::integer(tok.i);
        return e;
      }
      case T::kFloat: {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kLiteral, tok);
        e->literal = Value::number(tok.f);
        return e;
      }
      case T::kOp:
        if (tok.text == "(") {
          ++pos_;
          if (is_op(")")) {
            ++pos_;
            return make(Expr::Kind::kTuple, tok);
          }
          EDGELLM_ASSIGN_OR_RETURN(ExprPtr first, parse_expr());
          if (is_op(")")) {
            ++pos_;
            return first;
          }
          ExprPtr tuple = make(Expr::Kind::kTuple, tok);
          tuple->children.push_back(std::move(first));
          while (is_op(",")) {
            ++pos_;
            if (is_op(")")) break;
            EDGELLM_ASSIGN_OR_RETURN(ExprPtr e, parse_expr());
            tuple->children.push_back(std::move(e));
          }
          EDGELLM_TRY(expect_op(")"));
          return tuple;
        }
        if (tok.text == "[") {
          ++pos_;
          ExprPtr list = make(Expr::Kind::kList, tok);
          while (!is_op("]")) {
            EDGELLM_ASSIGN_OR_RETURN(ExprPtr e, parse_expr());
            list->children.push_back(std::move(e));
            if (!is_op(",")) break;
            ++pos_;
          }
          EDGELLM_TRY(expect_op("]"));
          return list;
        }
        if (tok.text == "{") {
          ++pos_;
          ExprPtr dict = make(Expr::Kind::kDict, tok);
          while (!is_op("}")) {
            EDGELLM_ASSIGN_OR_RETURN(ExprPtr k, parse_expr());
            EDGELLM_TRY(expect_op(":"));
            EDGELLM_ASSIGN_OR_RETURN(ExprPtr v, parse_expr());
            dict->children.push_back(std::move(k));
            dict->children.push_back(std::move(v));
            if (!is_op(",")) break;
            ++pos_;
          }
          EDGELLM_TRY(expect_op("}"));
          return dict;
        }
        break;
      default: break;
    }
    return err(tok, "expected an expression, found " + describe(tok));
  }

  Status parse_call_args(Expr* call) {
    EDGELLM_TRY(expect_op("("));
    while (!is_op(")")) {
      if (peek().type == T::kName && is_op("=", 1)) {
        std::string name = next().text;
        ++pos_;
        EDGELLM_ASSIGN_OR_RETURN(ExprPtr v, parse_expr());
        call->kwargs.emplace_back(name, std::move(v));
      } else {
        if (!call->kwargs.empty()) return err(peek(), "a positional argument after keyword arguments");
        EDGELLM_ASSIGN_OR_RETURN(ExprPtr v, parse_expr());
        call->children.push_back(std::move(v));
      }
      if (!is_op(",")) break;
      ++pos_;
    }
    return expect_op(")");
  }

  Expected<ExprPtr> parse_postfix(ExprPtr node) {
    for (;;) {
      const Token& at = peek();
      if (is_op(".")) {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kAttr, at);
        if (peek().type == T::kInt) {  // x.0 as jinja2 allows
          e->kind = Expr::Kind::kSubscript;
          ExprPtr index = make(Expr::Kind::kLiteral, peek());
          index->literal = Value::integer(next().i);
          e->children.push_back(std::move(node));
          e->children.push_back(std::move(index));
        } else {
          EDGELLM_ASSIGN_OR_RETURN(e->name, expect_name("an attribute name after '.'"));
          e->children.push_back(std::move(node));
        }
        node = std::move(e);
      } else if (is_op("[")) {
        ++pos_;
        ExprPtr parts[3];
        bool slice = false;
        for (int i = 0; i < 3; ++i) {
          if (!is_op(":") && !is_op("]")) {
            EDGELLM_ASSIGN_OR_RETURN(parts[i], parse_expr());
          }
          if (i < 2 && is_op(":")) {
            ++pos_;
            slice = true;
          } else {
            break;
          }
        }
        EDGELLM_TRY(expect_op("]"));
        if (!slice && !parts[0]) return err(at, "empty subscript");
        ExprPtr e = make(slice ? Expr::Kind::kSlice : Expr::Kind::kSubscript, at);
        e->children.push_back(std::move(node));
        if (slice) {
          for (auto& p : parts) e->children.push_back(std::move(p));
        } else {
          e->children.push_back(std::move(parts[0]));
        }
        node = std::move(e);
      } else if (is_op("(")) {
        ExprPtr e = make(Expr::Kind::kCall, at);
        e->children.push_back(std::move(node));
        EDGELLM_TRY(parse_call_args(e.get()));
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  // `| filter(args)` and `is [not] test(args)`, left to right; in a filter block only filters.
  Expected<ExprPtr> parse_filter_chain(ExprPtr node, bool filters_only) {
    for (;;) {
      const Token& at = peek();
      if (is_op("|")) {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kFilter, at);
        EDGELLM_ASSIGN_OR_RETURN(e->name, expect_name("a filter name after '|'"));
        while (is_op(".")) {  // dotted filter names are not used by chat templates; read them as one name
          ++pos_;
          EDGELLM_ASSIGN_OR_RETURN(std::string part, expect_name("a filter name"));
          e->name += "." + part;
        }
        e->children.push_back(std::move(node));
        if (is_op("(")) EDGELLM_TRY(parse_call_args(e.get()));
        node = std::move(e);
      } else if (!filters_only && is_name("is")) {
        ++pos_;
        ExprPtr e = make(Expr::Kind::kTest, at);
        if (is_name("not")) {
          ++pos_;
          e->negated = true;
        }
        if (peek().type != T::kName) return err(peek(), "expected a test name after 'is', found " + describe(peek()));
        e->name = next().text;
        e->children.push_back(std::move(node));
        if (is_op("(")) {
          EDGELLM_TRY(parse_call_args(e.get()));
        } else if (peek().type == T::kString || peek().type == T::kInt || peek().type == T::kFloat ||
                   (peek().type == T::kName && !is_name("and") && !is_name("or") && !is_name("else") &&
                    !is_name("if") && !is_name("is") && !is_name("in") && !is_name("not"))) {
          EDGELLM_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
          EDGELLM_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
          e->children.push_back(std::move(arg));
        }
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Expected<Body> parse_template(std::string_view source) {
  // jinja2's keep_trailing_newline=False: one newline at the very end of the source is dropped.
  if (!source.empty() && source.back() == '\n') {
    source.remove_suffix(1);
    if (!source.empty() && source.back() == '\r') source.remove_suffix(1);
  }
  Lexer lexer(source);
  EDGELLM_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.run());
  Parser parser(std::move(tokens));
  return parser.run();
}

}  // namespace edgellm::jinja
