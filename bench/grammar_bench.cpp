// What grammar-constrained decoding costs per token with a real vocabulary (Qwen3's 151,669 tokens).
//
// A constrained "generation" walks a grammar by picking, at each step, one allowed token (seeded random
// choice among the allowed tokens that are likeliest to be sensible: short ones) and records the time of
// mask_logits + accept. The first pass sees every state for the first time (per-position trie walks and
// per-state masks are computed); the second pass repeats the same schema (cached masks), the common case
// of a server whose clients send the same tool definitions.
//
//   grammar_bench [tokenizer.json|model.gguf] [runs]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grammar/compiled_grammar.h"
#include "grammar/json_schema_grammar.h"
#include "grammar/token_trie.h"
#include "tokenizer/tokenizer.h"

using namespace edgellm;

namespace {

std::string shared_path(const std::string& rel) {
  const char* env = std::getenv("EDGELLM_SHARED");
  return std::string(env ? env : EDGELLM_SHARED_DEFAULT) + "/data/" + rel;
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct PassResult {
  std::vector<double> step_ms;
  int texts = 0;
};

PassResult run_pass(const std::shared_ptr<const CompiledGrammar>& g, const TokenTrie& trie, int runs, uint64_t seed) {
  PassResult r;
  std::mt19937_64 rng(seed);
  std::vector<float> logits(static_cast<size_t>(trie.n_vocab()));
  for (int run = 0; run < runs; ++run) {
    GrammarMatcher m(g);
    std::string text;
    for (int step = 0; step < 200; ++step) {
      std::fill(logits.begin(), logits.end(), 0.0f);
      const double t0 = now_ms();
      m.mask_logits(logits.data(), static_cast<int64_t>(logits.size()));
      const double t1 = now_ms();
      std::vector<int32_t> ids;
      for (int32_t i = 0; i < trie.n_vocab(); ++i) {
        if (logits[static_cast<size_t>(i)] == 0.0f) ids.push_back(i);
      }
      if (ids.empty()) {
        std::fprintf(stderr, "no token allowed after '%s' (bug)\n", text.c_str());
        std::exit(1);
      }
      // Prefer short tokens and the end token, so that walks finish; pick among the 8 shortest at random.
      std::partial_sort(ids.begin(), ids.begin() + std::min<size_t>(8, ids.size()), ids.end(), [&](int32_t a, int32_t b) {
        return trie.token_bytes(a).size() < trie.token_bytes(b).size();
      });
      const int32_t id = ids[std::uniform_int_distribution<size_t>(0, std::min<size_t>(8, ids.size()) - 1)(rng)];
      const double t2 = now_ms();
      if (!m.accept(id).ok()) {
        std::fprintf(stderr, "accept failed (bug)\n");
        std::exit(1);
      }
      text += trie.token_bytes(id);
      r.step_ms.push_back((t1 - t0) + (now_ms() - t2));
      if (m.must_finish() || trie.token_bytes(id).empty()) {
        ++r.texts;
        break;
      }
    }
  }
  return r;
}

void report(const char* name, PassResult r) {
  std::sort(r.step_ms.begin(), r.step_ms.end());
  double sum = 0;
  for (double v : r.step_ms) sum += v;
  const size_t n = r.step_ms.size();
  std::printf("  %-22s %5zu steps  mean %7.3f ms  p50 %7.3f  p90 %7.3f  p99 %7.3f  max %8.3f   (%d texts)\n", name, n,
              sum / static_cast<double>(n), r.step_ms[n / 2], r.step_ms[n * 9 / 10], r.step_ms[n * 99 / 100],
              r.step_ms.back(), r.texts);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : shared_path("qwen3-tokenizer/tokenizer.json");
  const int runs = argc > 2 ? std::atoi(argv[2]) : 20;
  auto tok = Tokenizer::from_path(path);
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.error().message.c_str());
    return 1;
  }
  std::vector<int32_t> ends;
  if (auto id = (*tok)->token_id("<|im_end|>")) ends.push_back(*id);
  double t0 = now_ms();
  auto trie = TokenTrie::build(**tok, ends);
  std::printf("vocabulary %d tokens; trie %zu nodes, built in %.1f ms\n", trie->n_vocab(), trie->nodes().size(),
              now_ms() - t0);

  const auto schema = nlohmann::ordered_json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"enum": ["set_light", "get_temperature"]},
      "arguments": {"type": "object", "properties": {
        "room": {"type": "string", "maxLength": 24}, "brightness": {"type": "integer"}, "on": {"type": "boolean"},
        "color": {"type": ["string", "null"]}, "scenes": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
        "required": ["room", "on"]}},
    "required": ["name", "arguments"]})");
  struct Case {
    const char* name;
    std::string gbnf;
  };
  std::vector<Case> cases = {{"tool-call schema", *json_schema_to_gbnf(schema)}, {"any JSON object", json_object_gbnf()}};
  for (const auto& c : cases) {
    auto g = CompiledGrammar::from_gbnf(c.gbnf, trie);
    if (!g.ok()) {
      std::fprintf(stderr, "%s\n", g.error().message.c_str());
      return 1;
    }
    std::printf("%s (%d runs of up to 200 tokens, mask + accept per token):\n", c.name, runs);
    report("first pass (cold)", run_pass(*g, *trie, runs, 1));
    const auto st = (*g)->stats();
    std::printf("    %zu position walks in %.1f ms, %zu state masks in %.1f ms, %zu cache hits\n", st.position_masks,
                st.position_ms, st.state_masks, st.state_ms, st.cache_hits);
    report("second pass (same seed)", run_pass(*g, *trie, runs, 1));
    report("new seed (warm caches)", run_pass(*g, *trie, runs, 2));
  }
  return 0;
}
