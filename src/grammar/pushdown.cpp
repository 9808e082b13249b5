#include "grammar/pushdown.h"

#include <algorithm>

namespace edgellm {

namespace {
inline uint64_t mix(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return key;
}
}  // namespace

StackArena::StackArena(const Grammar& grammar) : grammar_(grammar) { clear(); }

void StackArena::clear() {
  nodes_.assign(2, Node{UINT32_MAX, UINT32_MAX});
  keys_.assign(1024, 0);
  ids_.assign(1024, 0);
  n_interned_ = 0;
}

void StackArena::grow_table() {
  std::vector<uint64_t> old_keys = std::move(keys_);
  std::vector<uint32_t> old_ids = std::move(ids_);
  keys_.assign(old_keys.size() * 2, 0);
  ids_.assign(old_keys.size() * 2, 0);
  const size_t mask = keys_.size() - 1;
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_ids[i] == 0) continue;
    size_t slot = mix(old_keys[i]) & mask;
    while (ids_[slot] != 0) slot = (slot + 1) & mask;
    keys_[slot] = old_keys[i];
    ids_[slot] = old_ids[i];
  }
}

uint32_t StackArena::push(uint32_t parent, uint32_t pos) {
  if ((n_interned_ + 1) * 2 > keys_.size()) grow_table();
  const uint64_t key = (uint64_t{parent} << 32) | pos;
  const size_t mask = keys_.size() - 1;
  size_t slot = mix(key) & mask;
  while (ids_[slot] != 0) {
    if (keys_[slot] == key) return ids_[slot];
    slot = (slot + 1) & mask;
  }
  const auto id = static_cast<uint32_t>(nodes_.size());
  nodes_.push_back(Node{pos, parent});
  keys_[slot] = key;
  ids_[slot] = id;
  ++n_interned_;
  return id;
}

void StackArena::expand(uint32_t stack, std::vector<uint32_t>& out) {
  const auto& elements = grammar_.elements();
  while (true) {
    if (stack <= kBottom) {
      out.push_back(stack);
      return;
    }
    const Node node = nodes_[stack];
    const Grammar::Element e = elements[node.pos];
    if (e.kind == Grammar::ElementKind::kChar) {
      out.push_back(stack);
      return;
    }
    if (e.kind == Grammar::ElementKind::kEnd) {
      stack = node.parent;
      continue;
    }
    // A rule reference: continue after it once the rule is done (nothing to remember if that is the end of
    // this alternative too, which keeps right-recursive repetition from growing the stack).
    const uint32_t cont =
        elements[node.pos + 1].kind == Grammar::ElementKind::kEnd ? node.parent : push(node.parent, node.pos + 1);
    for (uint32_t alt : grammar_.alternatives(e.index)) {
      if (elements[alt].kind == Grammar::ElementKind::kEnd) {
        expand(cont, out);
      } else {
        expand(push(cont, alt), out);
      }
    }
    return;
  }
}

void StackArena::start(std::vector<uint32_t>& out) {
  const size_t begin = out.size();
  const auto& elements = grammar_.elements();
  for (uint32_t alt : grammar_.alternatives(grammar_.root_rule())) {
    if (elements[alt].kind == Grammar::ElementKind::kEnd) {
      out.push_back(kEmpty);
    } else {
      expand(push(kEmpty, alt), out);
    }
  }
  std::sort(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end());
  out.erase(std::unique(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end()), out.end());
}

void StackArena::advance(const uint32_t* in, size_t n, uint32_t cp, std::vector<uint32_t>& out, bool* hit_bottom) {
  const size_t begin = out.size();
  const auto& elements = grammar_.elements();
  for (size_t i = 0; i < n; ++i) {
    const uint32_t s = in[i];
    if (s == kBottom) {
      *hit_bottom = true;
      continue;
    }
    if (s == kEmpty) continue;
    const Node node = nodes_[s];
    if (!grammar_.char_class(elements[node.pos].index).contains(cp)) continue;
    if (elements[node.pos + 1].kind == Grammar::ElementKind::kEnd) {
      expand(node.parent, out);
    } else {
      expand(push(node.parent, node.pos + 1), out);
    }
  }
  if (out.size() - begin > 1) {
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end());
    out.erase(std::unique(out.begin() + static_cast<std::ptrdiff_t>(begin), out.end()), out.end());
  }
}

bool StackArena::could_match(const uint32_t* in, size_t n, uint32_t lo, uint32_t hi) const {
  const auto& elements = grammar_.elements();
  for (size_t i = 0; i < n; ++i) {
    if (in[i] == kBottom) return true;  // unknown: whatever lies below may take it
    if (in[i] == kEmpty) continue;
    if (grammar_.char_class(elements[nodes_[in[i]].pos].index).intersects(lo, hi)) return true;
  }
  return false;
}

// ---- Utf8Partial ----

Utf8Partial::Step Utf8Partial::feed(uint8_t byte, uint32_t* cp) {
  if (need == 0) {
    if (byte < 0x80) {
      *cp = byte;
      return Step::kComplete;
    }
    if (byte >= 0xC2 && byte <= 0xDF) {
      value = byte & 0x1F, need = 1, length = 2;
    } else if (byte >= 0xE0 && byte <= 0xEF) {
      value = byte & 0x0F, need = 2, length = 3;
    } else if (byte >= 0xF0 && byte <= 0xF4) {
      value = byte & 0x07, need = 3, length = 4;
    } else {
      return Step::kInvalid;
    }
    return Step::kNeedMore;
  }
  if ((byte & 0xC0) != 0x80) return Step::kInvalid;
  // The second byte of E0, ED, F0 and F4 sequences is restricted (overlong forms, surrogates, > U+10FFFF).
  if (need == length - 1) {
    if ((length == 3 && value == 0x0 && byte < 0xA0) || (length == 3 && value == 0xD && byte > 0x9F) ||
        (length == 4 && value == 0x0 && byte < 0x90) || (length == 4 && value == 0x4 && byte > 0x8F)) {
      return Step::kInvalid;
    }
  }
  value = (value << 6) | (byte & 0x3F);
  if (--need > 0) return Step::kNeedMore;
  *cp = value;
  value = 0, length = 0;
  return Step::kComplete;
}

uint32_t Utf8Partial::range_low() const {
  // The smallest code point of each length (longer encodings of smaller ones are invalid).
  const uint32_t shortest = length == 2 ? 0x80 : length == 3 ? 0x800 : length == 4 ? 0x10000 : 0;
  return std::max(shortest, value << (6 * need));
}

uint32_t Utf8Partial::range_high() const {
  return std::min<uint32_t>(0x10FFFF, (value << (6 * need)) | ((1u << (6 * need)) - 1));
}

}  // namespace edgellm
