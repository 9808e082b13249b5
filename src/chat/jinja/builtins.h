// What chat templates call: jinja2's filters and tests, Python's str/dict/list methods as the sandbox allows
// them, and the globals jinja2 and transformers provide (range, namespace, dict, raise_exception,
// strftime_now). Each error names the filter, test or method and what was wrong with its arguments.
#pragma once

#include <string>

#include "chat/jinja/value.h"
#include "util/expected.h"

namespace edgellm::jinja {

class Interpreter;

// `input | name(args)`. Unknown filter: kInvalidArgument naming it.
Expected<Value> apply_filter(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);

// `input is name(args)`. Unknown test: kInvalidArgument naming it.
Expected<bool> apply_test(Interpreter& in, const std::string& name, const Value& input, CallArgs& args);

// `obj.name` when `name` is a method of obj's type (str.strip, dict.items, ...): a callable bound to obj.
// Returns false (and leaves *out alone) when there is no such method.
bool bound_method(const Value& obj, const std::string& name, Value* out);

// The globals every template sees.
void add_builtin_globals(Object& globals);

// Python's iteration over a value: list items, dict keys, string characters; Undefined is empty.
Expected<Array> iterate(const Value& v);

// Python's len(): code points of a string, items of a list or dict.
Expected<int64_t> length_of(const Value& v);

// Whether any string inside `v` (or a dict key) came from the input.
bool contains_input(const Value& v);

// Python's comparison for sorting and `<`: numbers, strings, lists; kInvalidArgument otherwise.
Expected<int> compare_values(const Value& a, const Value& b);

// Python's slice start and stop for a sequence of n items (the loop runs i = start; i < stop (step > 0) or
// i > stop (step < 0); i += step).
std::pair<int64_t, int64_t> slice_bounds(int64_t n, bool has_start, int64_t start, bool has_stop, int64_t stop,
                                         int64_t step);

// String slicing by code points with Python's start/stop/step rules; `has_*` false for an omitted part.
Text slice_text(const Text& t, bool has_start, int64_t start, bool has_stop, int64_t stop, int64_t step);

}  // namespace edgellm::jinja
