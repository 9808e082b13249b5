// Parses a Jinja template as transformers' chat templates are parsed: trim_blocks and lstrip_blocks on,
// whitespace control with `-` (and `+` to keep lstrip off), comments, `raw`. Statements: if/elif/else,
// for (tuple targets, `if` filter, else, loop.*), set (names, tuples, namespace attributes, blocks),
// macro, call, filter blocks, break/continue, and transformers' `generation` block (rendered as its body).
// Errors name the line and column and what was expected.
#pragma once

#include <string_view>

#include "chat/jinja/ast.h"
#include "util/expected.h"

namespace edgellm::jinja {

// Nesting of statements and expressions is limited (a hostile template cannot exhaust the stack).
inline constexpr int kMaxParseDepth = 256;

Expected<Body> parse_template(std::string_view source);

}  // namespace edgellm::jinja
