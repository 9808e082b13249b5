#include "chat/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>

#include "chat/jinja/interpreter.h"
#include "chat/prompt_text.h"

namespace edgellm::jinja {
namespace {

Error fail(const std::string& message) { return Error(ErrorCode::kInvalidArgument, message); }

// Byte offsets of the code points of `s` (and s.size() at the end).
std::vector<size_t> code_point_offsets(const std::string& s) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) offsets.push_back(i);
  }
  offsets.push_back(s.size());
  return offsets;
}

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// The code point at s[pos] and its length in bytes (invalid bytes count as one code point each).
char32_t code_point_at(const std::string& s, size_t pos, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 1;
  if (pos + n > s.size()) n = 1;
  char32_t cp = n == 1 ? b0 : n == 2 ? (b0 & 0x1F) : n == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[pos + i]) & 0x3F);
  *len = n;
  return cp;
}

// Python's str.isspace() for the code point at s[pos] (Unicode whitespace: U+00A0, U+3000, U+2028, ...).
bool python_space_at(const std::string& s, size_t pos, size_t* len) {
  return chat_detail::is_python_space(code_point_at(s, pos, len));
}

// str.strip family: `chars` empty means whitespace.
Text strip_text(const Text& t, bool left, bool right, const Value* chars) {
  const std::string& s = t.text;
  auto strip_char = [&](size_t pos, size_t* len) -> bool {
    if (!chars || chars->is_none()) return python_space_at(s, pos, len);
    // Any code point of `chars`.
    const std::string& set = chars->as_string();
    size_t n = 1;
    while (pos + n < s.size() && (static_cast<unsigned char>(s[pos + n]) & 0xC0) == 0x80) ++n;
    *len = n;
    const std::string cp = s.substr(pos, n);
    return set.find(cp) != std::string::npos;
  };
  size_t begin = 0, end = s.size();
  if (left) {
    size_t len = 0;
    while (begin < end && strip_char(begin, &len)) begin += len;
  }
  if (right) {
    while (end > begin) {
      size_t p = end - 1;
      while (p > begin && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
      size_t len = 0;
      if (!strip_char(p, &len)) break;
      end = p;
    }
  }
  return t.slice(begin, end);
}

std::string ascii_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string ascii_upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}
std::string title_case(const std::string& s) {
  std::string out = s;
  bool start = true;
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
      start = false;
    } else {
      start = !(u & 0x80);
    }
  }
  return out;
}

const Value& arg_or(const CallArgs& args, size_t index, const char* name, const Value& fallback) {
  const Value* v = args.get(index, name);
  return v ? *v : fallback;
}

Expected<std::string> string_arg(const CallArgs& args, size_t index, const char* name, const char* what) {
  const Value* v = args.get(index, name);
  if (!v || !v->is_string()) {
    return fail(std::string(what) + ": argument '" + name + "' must be a string" +
                (v ? std::string(", not ") + v->type_name() : std::string()));
  }
  return v->as_string();
}

// attribute="a.b" lookups of map/selectattr/sort/join.
Value attribute_of(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (cur.is_object()) {
      const Value* next = cur.object_items().find(part);
      cur = next ? *next : Value::undefined(part);
    } else if (cur.is_array() && !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit)) {
      const size_t i = std::stoul(part);
      cur = i < cur.array_items().size() ? cur.array_items()[i] : Value::undefined(part);
    } else {
      return Value::undefined(part);
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

Text join_values(const Array& items, const Text& sep) {
  Text out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.append(sep);
    out.append(items[i].to_text());
  }
  return out;
}

Expected<Value> split(const Value& self, CallArgs& args, bool from_right) {
  const Text& t = self.as_text();
  const std::string& s = t.text;
  const Value none = Value::none();
  const Value& sep = arg_or(args, 0, "sep", none);
  const Value neg = Value::integer(-1);
  const Value& max_v = arg_or(args, 1, "maxsplit", neg);
  int64_t maxsplit = max_v.kind() == Value::Kind::kInt ? max_v.as_int() : -1;
  std::vector<std::pair<size_t, size_t>> parts;
  if (sep.is_none()) {
    // Runs of whitespace; no empty strings.
    std::vector<std::pair<size_t, size_t>> words;
    size_t i = 0, len = 0;
    while (i < s.size()) {
      while (i < s.size() && python_space_at(s, i, &len)) i += len;
      if (i >= s.size()) break;
      size_t j = i;
      while (j < s.size() && !python_space_at(s, j, &len)) j += len;
      words.emplace_back(i, j);
      i = j;
    }
    if (maxsplit < 0 || static_cast<size_t>(maxsplit) + 1 >= words.size()) {
      parts = words;
    } else if (!from_right) {
      for (int64_t k = 0; k < maxsplit; ++k) parts.push_back(words[static_cast<size_t>(k)]);
      size_t end = s.size();
      while (end > words[static_cast<size_t>(maxsplit)].first && is_space(static_cast<unsigned char>(s[end - 1]))) --end;
      parts.emplace_back(words[static_cast<size_t>(maxsplit)].first, end);
    } else {
      const size_t keep = words.size() - static_cast<size_t>(maxsplit);
      size_t begin = 0;
      while (begin < words[keep - 1].second && is_space(static_cast<unsigned char>(s[begin]))) ++begin;
      parts.emplace_back(begin, words[keep - 1].second);
      for (size_t k = keep; k < words.size(); ++k) parts.push_back(words[k]);
    }
  } else {
    if (!sep.is_string()) return fail(std::string("split: the separator must be a string, not ") + sep.type_name());
    const std::string& d = sep.as_string();
    if (d.empty()) return fail("split: empty separator");
    if (!from_right) {
      size_t start = 0;
      int64_t n = 0;
      for (;;) {
        const size_t hit = (maxsplit >= 0 && n >= maxsplit) ? std::string::npos : s.find(d, start);
        if (hit == std::string::npos) {
          parts.emplace_back(start, s.size());
          break;
        }
        parts.emplace_back(start, hit);
        start = hit + d.size();
        ++n;
      }
    } else {
      size_t end = s.size();
      int64_t n = 0;
      std::vector<std::pair<size_t, size_t>> rev;
      for (;;) {
        size_t hit = std::string::npos;
        if (!(maxsplit >= 0 && n >= maxsplit) && end >= d.size()) hit = s.rfind(d, end - d.size());
        if (hit == std::string::npos) {
          rev.emplace_back(0, end);
          break;
        }
        rev.emplace_back(hit + d.size(), end);
        end = hit;
        ++n;
      }
      parts.assign(rev.rbegin(), rev.rend());
    }
  }
  Array out;
  for (auto [b, e] : parts) out.push_back(Value::string(t.slice(b, e)));
  return Value::array(std::move(out));
}

// str.format with {} / {0} / {name} fields (no format specs).
Expected<Value> format(const Value& self, CallArgs& args) {
  const std::string& f = self.as_string();
  Text out;
  size_t auto_index = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '{' && i + 1 < f.size() && f[i + 1] == '{') {
      out.append(Text::literal("{"));
      ++i;
    } else if (f[i] == '}' && i + 1 < f.size() && f[i + 1] == '}') {
      out.append(Text::literal("}"));
      ++i;
    } else if (f[i] == '{') {
      const size_t close = f.find('}', i);
      if (close == std::string::npos) return fail("format: a '{' without its '}'");
      const std::string field = f.substr(i + 1, close - i - 1);
      if (field.find(':') != std::string::npos || field.find('!') != std::string::npos) {
        return fail("format: format specifications are not supported ('{" + field + "}')");
      }
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < args.positional.size() ? &args.positional[auto_index++] : nullptr;
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        const size_t k = std::stoul(field);
        v = k < args.positional.size() ? &args.positional[k] : nullptr;
      } else {
        v = args.get(SIZE_MAX, field);
      }
      if (!v) return fail("format: no argument for '{" + field + "}'");
      out.append(v->to_text());
      i = close;
    } else {
      out.append(self.as_text().slice(i, i + 1));
    }
  }
  return Value::string(std::move(out));
}

Expected<Value> str_method(const std::string& name, const Value& self, CallArgs& args) {
  const Text& t = self.as_text();
  const std::string& s = t.text;
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const Value* chars = args.get(0, "chars");
    if (chars && !chars->is_string() && !chars->is_none()) return fail(name + ": chars must be a string");
    return Value::string(strip_text(t, name != "rstrip", name != "lstrip", chars));
  }
  if (name == "startswith" || name == "endswith") {
    const Value* p = args.get(0, "prefix");
    if (!p) return fail(name + "() takes at least 1 argument");
    std::vector<std::string> options;
    if (p->is_string()) {
      options.push_back(p->as_string());
    } else if (p->is_array()) {
      for (const Value& x : p->array_items()) {
        if (!x.is_string()) return fail(name + ": a tuple of strings is needed");
        options.push_back(x.as_string());
      }
    } else {
      return fail(name + std::string(": the argument must be a string, not ") + p->type_name());
    }
    for (const std::string& o : options) {
      const bool hit = name == "startswith" ? s.rfind(o, 0) == 0
                                            : (s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0);
      if (hit) return Value::boolean(true);
    }
    return Value::boolean(false);
  }
  if (name == "split") return split(self, args, false);
  if (name == "rsplit") return split(self, args, true);
  if (name == "splitlines") {
    Array out;
    size_t start = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        out.push_back(Value::string(t.slice(start, i)));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) out.push_back(Value::string(t.slice(start, s.size())));
    return Value::array(std::move(out));
  }
  if (name == "replace") {
    EDGELLM_ASSIGN_OR_RETURN(std::string old, string_arg(args, 0, "old", "replace"));
    EDGELLM_ASSIGN_OR_RETURN(std::string with, string_arg(args, 1, "new", "replace"));
    const Value neg = Value::integer(-1);
    const Value& count_v = arg_or(args, 2, "count", neg);
    int64_t count = count_v.kind() == Value::Kind::kInt ? count_v.as_int() : -1;
    Text out;
    const Text with_text = args.get(1, "new")->as_text();
    if (old.empty()) {
      const auto offsets = code_point_offsets(s);
      int64_t n = 0;
      for (size_t k = 0; k + 1 < offsets.size(); ++k) {
        if (count < 0 || n < count) {
          out.append(with_text);
          ++n;
        }
        out.append(t.slice(offsets[k], offsets[k + 1]));
      }
      if (count < 0 || n < count) out.append(with_text);
      return Value::string(std::move(out));
    }
    size_t start = 0;
    int64_t n = 0;
    for (;;) {
      const size_t hit = (count >= 0 && n >= count) ? std::string::npos : s.find(old, start);
      if (hit == std::string::npos) break;
      out.append(t.slice(start, hit));
      out.append(with_text);
      start = hit + old.size();
      ++n;
    }
    out.append(t.slice(start, s.size()));
    return Value::string(std::move(out));
  }
  if (name == "upper") return Value::string(t.derived(ascii_upper(s)));
  if (name == "lower") return Value::string(t.derived(ascii_lower(s)));
  if (name == "title") return Value::string(t.derived(title_case(s)));
  if (name == "capitalize") {
    std::string c = ascii_lower(s);
    if (!c.empty()) c[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(c[0])));
    return Value::string(t.derived(c));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "count") {
    EDGELLM_ASSIGN_OR_RETURN(std::string sub, string_arg(args, 0, "sub", name.c_str()));
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(code_point_offsets(s).size()));
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value::integer(n);
    }
    const size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (p == std::string::npos) {
      if (name == "index") return fail("index: substring not found");
      return Value::integer(-1);
    }
    // Code point index, as Python's.
    const auto offsets = code_point_offsets(s);
    return Value::integer(static_cast<int64_t>(std::lower_bound(offsets.begin(), offsets.end(), p) - offsets.begin()));
  }
  if (name == "join") {
    const Value* items = args.get(0, "iterable");
    if (!items) return fail("join() takes exactly one argument");
    EDGELLM_ASSIGN_OR_RETURN(Array list, iterate(*items));
    for (const Value& v : list) {
      if (!v.is_string()) return fail(std::string("join: sequence item must be str, not ") + v.type_name());
    }
    return Value::string(join_values(list, t));
  }
  if (name == "format") return format(self, args);
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum" || name == "islower" ||
      name == "isupper") {
    if (s.empty()) return Value::boolean(false);
    bool all = true, cased = false;
    for (unsigned char c : s) {
      if (name == "isdigit") all = all && std::isdigit(c);
      if (name == "isalpha") all = all && std::isalpha(c);
      if (name == "isspace") all = all && is_space(c);
      if (name == "isalnum") all = all && std::isalnum(c);
      if (name == "islower") {
        all = all && !std::isupper(c);
        cased = cased || std::islower(c);
      }
      if (name == "isupper") {
        all = all && !std::islower(c);
        cased = cased || std::isupper(c);
      }
    }
    if (name == "islower" || name == "isupper") all = all && cased;
    return Value::boolean(all);
  }
  return fail("'str' object has no attribute '" + name + "'");
}

const char* const kStrMethods[] = {"strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit",
                                   "splitlines", "replace", "upper", "lower", "title", "capitalize", "find",
                                   "rfind", "index", "count", "join", "format", "isdigit", "isalpha", "isspace",
                                   "isalnum", "islower", "isupper"};

Expected<Value> dict_method(const std::string& name, const Value& self, CallArgs& args) {
  const Object& o = self.object_items();
  if (name == "items") {
    Array out;
    for (const auto& [k, v] : o.items) {
      out.push_back(Value::tuple({Value::string(o.keys_from_input ? Text::from_input(k) : Text::literal(k)), v}));
    }
    return Value::array(std::move(out));
  }
  if (name == "keys") {
    Array out;
    for (const auto& [k, v] : o.items) out.push_back(Value::string(o.keys_from_input ? Text::from_input(k) : Text::literal(k)));
    return Value::array(std::move(out));
  }
  if (name == "values") {
    Array out;
    for (const auto& [k, v] : o.items) out.push_back(v);
    return Value::array(std::move(out));
  }
  if (name == "get") {
    const Value* key = args.get(0, "key");
    if (!key) return fail("get() takes at least 1 argument");
    if (key->is_string()) {
      if (const Value* v = o.find(key->as_string())) return *v;
    }
    const Value* def = args.get(1, "default");
    return def ? *def : Value::none();
  }
  return fail("'dict' object has no attribute '" + name + "'");
}

// The sandbox transformers renders in (jinja2's ImmutableSandboxedEnvironment) forbids these.
const char* const kMutatingMethods[] = {"append", "extend", "insert", "pop", "remove", "clear", "update",
                                        "setdefault", "popitem", "sort", "reverse"};

Expected<Value> truncate_int(double f) {
  if (!std::isfinite(f) || std::fabs(f) > 9.2e18) return fail("int: cannot convert " + python_float(f));
  return Value::integer(static_cast<int64_t>(f));
}

Expected<Value> to_int(const Value& v, const Value& fallback) {
  switch (v.kind()) {
    case Value::Kind::kInt: return v;
    case Value::Kind::kBool: return Value::integer(v.as_bool() ? 1 : 0);
    case Value::Kind::kFloat: return truncate_int(v.as_double());
    case Value::Kind::kString: {
      std::string s = v.as_string();
      s.erase(0, s.find_first_not_of(" \t\n"));
      s.erase(s.find_last_not_of(" \t\n") + 1);
      char* end = nullptr;
      errno = 0;
      const long long i = std::strtoll(s.c_str(), &end, 10);
      if (!s.empty() && end == s.c_str() + s.size() && errno == 0) return Value::integer(i);
      const double f = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size()) return truncate_int(f);
      return fallback;
    }
    default: return fallback;
  }
}

Expected<Value> select_or_reject(Interpreter& in, const Value& input, CallArgs& args, bool by_attr, bool select) {
  EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
  size_t next = 0;
  std::string attr;
  if (by_attr) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      return fail(std::string(select ? "selectattr" : "rejectattr") + ": the attribute name is missing");
    }
    attr = args.positional[0].as_string();
    next = 1;
  }
  std::string test;
  if (next < args.positional.size()) {
    if (!args.positional[next].is_string()) return fail("select: the test name must be a string");
    test = args.positional[next].as_string();
    ++next;
  }
  CallArgs test_args;
  for (size_t i = next; i < args.positional.size(); ++i) test_args.positional.push_back(args.positional[i]);
  Array out;
  for (const Value& item : items) {
    EDGELLM_TRY(in.step());
    const Value subject = by_attr ? attribute_of(item, attr) : item;
    bool pass = false;
    if (test.empty()) {
      pass = subject.truthy();
    } else {
      CallArgs copy = test_args;
      EDGELLM_ASSIGN_OR_RETURN(pass, apply_test(in, test, subject, copy));
    }
    if (pass == select) out.push_back(item);
  }
  return Value::array(std::move(out));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

std::pair<int64_t, int64_t> slice_bounds(int64_t n, bool has_start, int64_t start, bool has_stop, int64_t stop,
                                         int64_t step) {
  auto clamp = [&](bool given, int64_t v, bool is_start) {
    if (!given) return step > 0 ? (is_start ? int64_t{0} : n) : (is_start ? n - 1 : int64_t{-1});
    if (v < 0) v += n;
    if (step > 0) return std::clamp<int64_t>(v, 0, n);
    return std::clamp<int64_t>(v, -1, n - 1);
  };
  return {clamp(has_start, start, true), clamp(has_stop, stop, false)};
}

Text slice_text(const Text& t, bool has_start, int64_t start, bool has_stop, int64_t stop, int64_t step) {
  const auto offsets = code_point_offsets(t.text);
  const int64_t n = static_cast<int64_t>(offsets.size()) - 1;
  const auto [b, e] = slice_bounds(n, has_start, start, has_stop, stop, step);
  if (step == 1) {
    if (b >= e) return Text{};
    return t.slice(offsets[static_cast<size_t>(b)], offsets[static_cast<size_t>(e)]);
  }
  Text out;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) {
    out.append(t.slice(offsets[static_cast<size_t>(i)], offsets[static_cast<size_t>(i) + 1]));
  }
  return out;
}

Expected<Array> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return Array{};
    case Value::Kind::kArray: return v.array_items();
    case Value::Kind::kObject: {
      const Object& o = v.object_items();
      Array keys;
      for (const auto& [k, x] : o.items) keys.push_back(Value::string(o.keys_from_input ? Text::from_input(k) : Text::literal(k)));
      return keys;
    }
    case Value::Kind::kString: {
      const auto offsets = code_point_offsets(v.as_string());
      Array chars;
      for (size_t i = 0; i + 1 < offsets.size(); ++i) chars.push_back(Value::string(v.as_text().slice(offsets[i], offsets[i + 1])));
      return chars;
    }
    default: return fail(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

Expected<int64_t> length_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return static_cast<int64_t>(code_point_offsets(v.as_string()).size()) - 1;
    case Value::Kind::kArray: return static_cast<int64_t>(v.array_items().size());
    case Value::Kind::kObject: return static_cast<int64_t>(v.object_items().items.size());
    case Value::Kind::kUndefined: return 0;
    default: return fail(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

bool contains_input(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString: return v.as_text().has_input();
    case Value::Kind::kArray:
      return std::any_of(v.array_items().begin(), v.array_items().end(), [](const Value& x) { return contains_input(x); });
    case Value::Kind::kObject: {
      const Object& o = v.object_items();
      if (o.keys_from_input) return true;
      return std::any_of(o.items.begin(), o.items.end(), [](const auto& kv) { return contains_input(kv.second); });
    }
    default: return false;
  }
}

Expected<int> compare_values(const Value& a, const Value& b) {
  const bool a_num = a.is_number() || a.kind() == Value::Kind::kBool;
  const bool b_num = b.is_number() || b.kind() == Value::Kind::kBool;
  if (a_num && b_num) {
    const double x = a.kind() == Value::Kind::kBool ? a.as_bool() : a.as_double();
    const double y = b.kind() == Value::Kind::kBool ? b.as_bool() : b.as_double();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (a.is_array() && b.is_array()) {
    const Array &x = a.array_items(), &y = b.array_items();
    for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
      EDGELLM_ASSIGN_OR_RETURN(int c, compare_values(x[i], y[i]));
      if (c) return c;
    }
    return x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  }
  return fail(std::string("'<' not supported between instances of '") + a.type_name() + "' and '" + b.type_name() + "'");
}

bool bound_method(const Value& obj, const std::string& name, Value* out) {
  if (obj.is_string()) {
    for (const char* m : kStrMethods) {
      if (name == m) {
        *out = Value::callable("str." + name, [obj, name](Interpreter&, CallArgs& args) { return str_method(name, obj, args); });
        return true;
      }
    }
    return false;
  }
  if (obj.is_object() && !obj.object_items().is_namespace) {
    for (const char* m : {"items", "keys", "values", "get"}) {
      if (name == m) {
        *out = Value::callable("dict." + name, [obj, name](Interpreter&, CallArgs& args) { return dict_method(name, obj, args); });
        return true;
      }
    }
  }
  if (obj.is_array() || obj.is_object()) {
    for (const char* m : kMutatingMethods) {
      if (name == m && (obj.is_array() || std::string(m) != "sort")) {
        const std::string type = obj.type_name();
        *out = Value::callable(type + "." + name, [type, name](Interpreter&, CallArgs&) -> Expected<Value> {
          return fail("access to the mutating method " + type + "." + name +
                      "() is forbidden: chat templates render in an immutable sandbox (as transformers renders them)");
        });
        return true;
      }
    }
  }
  return false;
}

Expected<Value> apply_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  EDGELLM_TRY(in.step());
  if (name == "tojson") {
    const Value none = Value::none();
    const Value& indent_v = arg_or(args, 0, "indent", none);
    std::optional<int> indent;
    if (indent_v.kind() == Value::Kind::kInt) {
      if (indent_v.as_int() < 0 || indent_v.as_int() > 64) return fail("tojson: indent out of range");
      indent = static_cast<int>(indent_v.as_int());
    } else if (!indent_v.is_none()) {
      return fail("tojson: indent must be an integer");
    }
    const Value f = Value::boolean(false);
    const bool sort_keys = arg_or(args, 3, "sort_keys", f).truthy();
    std::string item_sep = indent ? "," : ", ", key_sep = ": ";
    if (const Value* seps = args.get(2, "separators"); seps && seps->is_array() && seps->array_items().size() == 2 &&
                                                        seps->array_items()[0].is_string() &&
                                                        seps->array_items()[1].is_string()) {
      item_sep = seps->array_items()[0].as_string();
      key_sep = seps->array_items()[1].as_string();
    }
    EDGELLM_ASSIGN_OR_RETURN(std::string json, input.to_json(indent, sort_keys, item_sep, key_sep));
    return Value::string(contains_input(input) ? Text::from_input(std::move(json)) : Text::literal(std::move(json)));
  }
  if (name == "trim") {
    const Value* chars = args.get(0, "chars");
    const Text t = input.to_text();
    return Value::string(strip_text(t, true, true, chars));
  }
  if (name == "length" || name == "count") {
    EDGELLM_ASSIGN_OR_RETURN(int64_t n, length_of(input));
    return Value::integer(n);
  }
  if (name == "string") return Value::string(input.to_text());
  if (name == "safe" || name == "e" || name == "escape" || name == "forceescape") {
    if (name == "safe") return input;
    // No autoescaping in chat templates; escape() still escapes.
    const Text t = input.to_text();
    std::string s;
    for (char c : t.text) {
      switch (c) {
        case '&': s += "&amp;"; break;
        case '<': s += "&lt;"; break;
        case '>': s += "&gt;"; break;
        case '"': s += "&#34;"; break;
        case '\'': s += "&#39;"; break;
        default: s += c;
      }
    }
    return Value::string(t.derived(s));
  }
  if (name == "join") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    const Value empty = Value::string(std::string());
    const Value& sep = arg_or(args, 0, "d", empty);
    if (const Value* attr = args.get(1, "attribute"); attr && attr->is_string()) {
      for (Value& v : items) v = attribute_of(v, attr->as_string());
    }
    return Value::string(join_values(items, sep.to_text()));
  }
  if (name == "default" || name == "d") {
    const Value empty = Value::string(std::string());
    const Value f = Value::boolean(false);
    const Value& fallback = arg_or(args, 0, "default_value", empty);
    const bool boolean = arg_or(args, 1, "boolean", f).truthy();
    if (input.is_undefined() || (boolean && !input.truthy())) return fallback;
    return input;
  }
  if (name == "first" || name == "last") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    if (items.empty()) return Value::undefined(name + " of an empty sequence");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    return Value::array(std::move(items));
  }
  if (name == "reverse") {
    if (input.is_string()) return Value::string(slice_text(input.as_text(), false, 0, false, 0, -1));
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    std::reverse(items.begin(), items.end());
    return Value::array(std::move(items));
  }
  if (name == "map") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    Array out;
    if (const Value* attr = args.get(SIZE_MAX, "attribute")) {
      if (!attr->is_string()) return fail("map: attribute must be a string");
      const Value* def = args.get(SIZE_MAX, "default");
      for (const Value& v : items) {
        Value x = attribute_of(v, attr->as_string());
        out.push_back(x.is_undefined() && def ? *def : x);
      }
      return Value::array(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].is_string()) return fail("map: a filter name or attribute= is needed");
    const std::string filter = args.positional[0].as_string();
    CallArgs rest;
    rest.positional.assign(args.positional.begin() + 1, args.positional.end());
    rest.keyword = args.keyword;
    for (const Value& v : items) {
      CallArgs copy = rest;
      EDGELLM_ASSIGN_OR_RETURN(Value x, apply_filter(in, filter, v, copy));
      out.push_back(std::move(x));
    }
    return Value::array(std::move(out));
  }
  if (name == "select" || name == "reject") return select_or_reject(in, input, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr") return select_or_reject(in, input, args, true, name == "selectattr");
  if (name == "items") {
    if (!input.is_object()) {
      if (input.is_undefined()) return Value::array();
      return fail(std::string("items: expected a dict, got ") + input.type_name());
    }
    CallArgs none;
    return dict_method("items", input, none);
  }
  if (name == "dictsort") {
    if (!input.is_object()) return fail(std::string("dictsort: expected a dict, got ") + input.type_name());
    CallArgs none;
    EDGELLM_ASSIGN_OR_RETURN(Value pairs, dict_method("items", input, none));
    Array items = pairs.array_items();
    std::stable_sort(items.begin(), items.end(), [](const Value& a, const Value& b) {
      return ascii_lower(a.array_items()[0].as_string()) < ascii_lower(b.array_items()[0].as_string());
    });
    return Value::array(std::move(items));
  }
  if (name == "int") {
    const Value zero = Value::integer(0);
    return to_int(input, arg_or(args, 0, "default", zero));
  }
  if (name == "float") {
    if (input.is_number()) return Value::number(input.as_double());
    if (input.is_string()) {
      char* end = nullptr;
      const double f = std::strtod(input.as_string().c_str(), &end);
      if (!input.as_string().empty() && end == input.as_string().c_str() + input.as_string().size()) return Value::number(f);
    }
    const Value zero = Value::number(0.0);
    return arg_or(args, 0, "default", zero);
  }
  if (name == "abs") {
    if (input.kind() == Value::Kind::kInt) return Value::integer(input.as_int() < 0 ? -input.as_int() : input.as_int());
    if (input.is_number()) return Value::number(std::fabs(input.as_double()));
    return fail(std::string("abs: bad operand type '") + input.type_name() + "'");
  }
  if (name == "round") {
    if (!input.is_number()) return fail(std::string("round: expected a number, got ") + input.type_name());
    const Value zero = Value::integer(0);
    const Value common = Value::string(std::string("common"));
    const int64_t precision = arg_or(args, 0, "precision", zero).as_int();
    const std::string how = arg_or(args, 1, "method", common).is_string() ? arg_or(args, 1, "method", common).as_string() : "common";
    const double scale = std::pow(10.0, static_cast<double>(precision));
    double x = input.as_double() * scale;
    x = how == "ceil" ? std::ceil(x) : how == "floor" ? std::floor(x) : std::round(x);
    return Value::number(x / scale);
  }
  if (name == "lower") return Value::string(input.to_text().derived(ascii_lower(input.to_text().text)));
  if (name == "upper") return Value::string(input.to_text().derived(ascii_upper(input.to_text().text)));
  if (name == "title") return Value::string(input.to_text().derived(title_case(input.to_text().text)));
  if (name == "capitalize") {
    std::string c = ascii_lower(input.to_text().text);
    if (!c.empty()) c[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(c[0])));
    return Value::string(input.to_text().derived(c));
  }
  if (name == "replace") {
    if (!input.is_string()) return fail("replace: expected a string");
    return str_method("replace", input, args);
  }
  if (name == "unique") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    Array out;
    for (const Value& v : items) {
      if (std::none_of(out.begin(), out.end(), [&](const Value& x) { return x == v; })) out.push_back(v);
    }
    return Value::array(std::move(out));
  }
  if (name == "sort") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    const Value f = Value::boolean(false);
    const bool reverse = arg_or(args, 0, "reverse", f).truthy();
    const Value* attr = args.get(2, "attribute");
    Status error;
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      const Value x = attr && attr->is_string() ? attribute_of(a, attr->as_string()) : a;
      const Value y = attr && attr->is_string() ? attribute_of(b, attr->as_string()) : b;
      auto c = compare_values(x, y);
      if (!c.ok()) {
        if (error.ok()) error = c.take_error();
        return false;
      }
      return reverse ? *c > 0 : *c < 0;
    });
    EDGELLM_TRY(std::move(error));
    return Value::array(std::move(items));
  }
  if (name == "indent") {
    const Value four = Value::integer(4);
    const Value f = Value::boolean(false);
    const Value& width_v = arg_or(args, 0, "width", four);
    const std::string pad = width_v.is_string() ? width_v.as_string()
                                                : std::string(static_cast<size_t>(std::clamp<int64_t>(width_v.as_int(), 0, 256)), ' ');
    const bool first = arg_or(args, 1, "first", f).truthy();
    const bool blank = arg_or(args, 2, "blank", f).truthy();
    const Text t = input.to_text();
    Text out;
    size_t start = 0;
    bool first_line = true;
    while (start <= t.text.size()) {
      size_t nl = t.text.find('\n', start);
      const size_t end = nl == std::string::npos ? t.text.size() : nl;
      const bool empty_line = end == start;
      if ((!first_line || first) && (blank || !empty_line)) out.append(Text::literal(pad));
      out.append(t.slice(start, nl == std::string::npos ? end : end + 1));
      if (nl == std::string::npos) break;
      start = nl + 1;
      first_line = false;
    }
    return Value::string(std::move(out));
  }
  if (name == "wordcount") {
    CallArgs none;
    EDGELLM_ASSIGN_OR_RETURN(Value words, split(Value::string(input.to_text()), none, false));
    return Value::integer(static_cast<int64_t>(words.array_items().size()));
  }
  if (name == "sum") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    const Value* attr = args.get(0, "attribute");
    int64_t si = 0;
    double sf = 0;
    bool is_float = false;
    for (const Value& v0 : items) {
      const Value v = attr && attr->is_string() ? attribute_of(v0, attr->as_string()) : v0;
      if (v.kind() == Value::Kind::kInt) {
        si += v.as_int();
      } else if (v.is_number()) {
        sf += v.as_double();
        is_float = true;
      } else {
        return fail(std::string("sum: unsupported item type ") + v.type_name());
      }
    }
    return is_float ? Value::number(sf + static_cast<double>(si)) : Value::integer(si);
  }
  if (name == "min" || name == "max") {
    EDGELLM_ASSIGN_OR_RETURN(Array items, iterate(input));
    if (items.empty()) return Value::undefined(name + " of an empty sequence");
    Value best = items[0];
    for (const Value& v : items) {
      EDGELLM_ASSIGN_OR_RETURN(int c, compare_values(v, best));
      if (name == "min" ? c < 0 : c > 0) best = v;
    }
    return best;
  }
  return fail("no filter named '" + name + "'");
}

Expected<bool> apply_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args) {
  EDGELLM_TRY(in.step());
  const auto kind = input.kind();
  if (name == "defined") return !input.is_undefined();
  if (name == "undefined") return input.is_undefined();
  if (name == "none") return input.is_none();
  if (name == "boolean") return kind == Value::Kind::kBool;
  if (name == "true") return kind == Value::Kind::kBool && input.as_bool();
  if (name == "false") return kind == Value::Kind::kBool && !input.as_bool();
  if (name == "integer") return kind == Value::Kind::kInt;
  if (name == "float") return kind == Value::Kind::kFloat;
  if (name == "number") return input.is_number() || kind == Value::Kind::kBool;
  if (name == "string") return input.is_string();
  if (name == "mapping") return input.is_object();
  if (name == "sequence") return input.is_string() || input.is_array() || input.is_object();
  if (name == "iterable") return input.is_string() || input.is_array() || input.is_object();
  if (name == "callable") return input.is_callable();
  if (name == "lower" || name == "upper") {
    if (!input.is_string()) return false;
    const std::string& s = input.as_string();
    return name == "lower" ? s == ascii_lower(s) : s == ascii_upper(s);
  }
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (kind != Value::Kind::kInt) return fail("test '" + name + "' needs an integer, got " + input.type_name());
    if (name == "even") return input.as_int() % 2 == 0;
    if (name == "odd") return input.as_int() % 2 != 0;
    const Value* d = args.get(0, "num");
    if (!d || d->kind() != Value::Kind::kInt || d->as_int() == 0) return fail("divisibleby needs a non-zero integer");
    return input.as_int() % d->as_int() == 0;
  }
  const Value* other = args.get(0, "other");
  if (name == "sameas") return other && input.same_identity(*other);
  if (name == "eq" || name == "equalto" || name == "==") return other && input == *other;
  if (name == "ne" || name == "!=") return !other || !(input == *other);
  if (name == "lt" || name == "le" || name == "gt" || name == "ge" || name == "<" || name == "<=" || name == ">" ||
      name == ">=" || name == "lessthan" || name == "greaterthan") {
    if (!other) return fail("test '" + name + "' needs a value to compare with");
    EDGELLM_ASSIGN_OR_RETURN(int c, compare_values(input, *other));
    if (name == "lt" || name == "<" || name == "lessthan") return c < 0;
    if (name == "le" || name == "<=") return c <= 0;
    if (name == "gt" || name == ">" || name == "greaterthan") return c > 0;
    return c >= 0;
  }
  if (name == "in") {
    if (!other) return fail("test 'in' needs a container");
    if (other->is_string()) return input.is_string() && other->as_string().find(input.as_string()) != std::string::npos;
    if (other->is_array()) {
      return std::any_of(other->array_items().begin(), other->array_items().end(), [&](const Value& x) { return x == input; });
    }
    if (other->is_object()) return input.is_string() && other->object_items().find(input.as_string()) != nullptr;
    return false;
  }
  return fail("no test named '" + name + "'");
}

void add_builtin_globals(Object& globals) {
  globals.set("range", Value::callable("range", [](Interpreter& in, CallArgs& args) -> Expected<Value> {
    int64_t start = 0, stop = 0, step = 1;
    std::vector<int64_t> n;
    for (const Value& v : args.positional) {
      if (v.kind() != Value::Kind::kInt) return fail(std::string("range: integers expected, got ") + v.type_name());
      n.push_back(v.as_int());
    }
    if (n.size() == 1) {
      stop = n[0];
    } else if (n.size() == 2 || n.size() == 3) {
      start = n[0];
      stop = n[1];
      if (n.size() == 3) step = n[2];
    } else {
      return fail("range expected 1 to 3 arguments");
    }
    if (step == 0) return fail("range: step must not be zero");
    const int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                                   : (start > stop ? (start - stop - step - 1) / -step : 0);
    if (count > 100'000) return fail("range: more than 100000 items");
    Array out;
    for (int64_t i = 0; i < count; ++i) {
      EDGELLM_TRY(in.step());  // building the list counts against the template's budget
      out.push_back(Value::integer(start + i * step));
    }
    return Value::array(std::move(out));
  }));
  globals.set("namespace", Value::callable("namespace", [](Interpreter&, CallArgs& args) -> Expected<Value> {
    Object ns;
    ns.is_namespace = true;
    for (const Value& v : args.positional) {
      if (!v.is_object()) return fail("namespace: positional arguments must be dicts");
      for (const auto& [k, x] : v.object_items().items) ns.set(k, x);
    }
    for (const auto& [k, v] : args.keyword) ns.set(k, v);
    return Value::object(std::move(ns));
  }));
  globals.set("dict", Value::callable("dict", [](Interpreter&, CallArgs& args) -> Expected<Value> {
    Object o;
    for (const Value& v : args.positional) {
      if (!v.is_object()) return fail("dict: positional arguments must be dicts");
      for (const auto& [k, x] : v.object_items().items) o.set(k, x);
    }
    for (const auto& [k, v] : args.keyword) o.set(k, v);
    return Value::object(std::move(o));
  }));
  globals.set("raise_exception", Value::callable("raise_exception", [](Interpreter&, CallArgs& args) -> Expected<Value> {
    const std::string message = args.positional.empty() ? "" : args.positional[0].to_text().text;
    return Error(ErrorCode::kInvalidArgument, "the chat template raised an error: " + message);
  }));
  globals.set("strftime_now", Value::callable("strftime_now", [](Interpreter&, CallArgs& args) -> Expected<Value> {
    if (args.positional.empty() || !args.positional[0].is_string()) return fail("strftime_now: a format string is needed");
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    char buf[256];
    const size_t len = std::strftime(buf, sizeof buf, args.positional[0].as_string().c_str(), &local);
    return Value::string(std::string(buf, len));
  }));
}

}  // namespace edgellm::jinja
