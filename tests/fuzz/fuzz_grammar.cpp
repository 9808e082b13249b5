// Constrained decoding's inputs as a client sends them: GBNF grammars (llama.cpp's format) and JSON Schemas
// (converted to GBNF), compiled for a tiny model's vocabulary, then a walk of up to 24 tokens chosen by the
// input among the ones the grammar allows. First byte: 'g' for GBNF, 's' for a schema (anything else: GBNF).
#include "fuzz_support.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/json_schema_grammar.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto model = edgellm::fuzz::tiny_model();
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // A walk's choices come from the input's tail after a NUL, when there is one.
  std::string_view choices;
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    choices = text.substr(nul + 1);
    text = text.substr(0, nul);
  }
  std::string gbnf(text);
  if (data[0] == 's') {
    auto schema = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return 0;
    auto converted = edgellm::json_schema_to_gbnf(schema);
    if (!converted.ok()) return 0;
    gbnf = *converted;
  }
  auto compiled = model->compile_grammar(gbnf);
  if (!compiled.ok()) return 0;
  edgellm::GrammarMatcher matcher(*compiled);
  const int64_t n_vocab = model->config().n_vocab;
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  for (size_t step = 0; step < 24 && !matcher.must_finish(); ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    matcher.mask_logits(logits.data(), n_vocab);
    std::vector<int32_t> allowed;
    for (int64_t i = 0; i < n_vocab; ++i) {
      if (std::isfinite(logits[static_cast<size_t>(i)])) allowed.push_back(static_cast<int32_t>(i));
    }
    if (allowed.empty()) break;
    const uint8_t pick = step < choices.size() ? static_cast<uint8_t>(choices[step]) : 0;
    // Every allowed token must be accepted: a mask that admits a token the matcher then refuses is a bug.
    if (!matcher.accept(allowed[pick % allowed.size()]).ok()) std::abort();
  }
  return 0;
}
