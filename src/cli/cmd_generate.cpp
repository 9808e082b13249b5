// edgellm generate: token ids in, greedy token ids out (no tokenizer needed); optionally dumps logits.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "model/model.h"
#include "model/transformer.h"

namespace edgellm::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string tokens;
  int n_predict = 16;
  int threads = 0;
  int64_t ctx = 0;
  int64_t batch = 64;
  std::string kv_type = "f16";
  std::string dump_logits;
};

Expected<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  std::stringstream ss(text);
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > INT32_MAX) {
      return make_error(ErrorCode::kInvalidArgument, "--tokens: '" + item + "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return make_error(ErrorCode::kInvalidArgument, "--tokens: no token ids given");
  return ids;
}

int32_t argmax(const float* v, int64_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

int run_generate(const GenerateArgs& a) {
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "edgellm generate: %s\n", e.message.c_str());
    return 1;
  };
  auto prompt = parse_ids(a.tokens);
  if (!prompt.ok()) return fail(prompt.error());
  if (a.n_predict < 1) return fail(make_error(ErrorCode::kInvalidArgument, "-n must be at least 1"));
  auto model = Model::load(a.model);
  if (!model.ok()) return fail(model.error());
  const ModelConfig& c = (*model)->config();
  const auto kv_type = dtype_from_name(a.kv_type);
  if (!kv_type) return fail(make_error(ErrorCode::kInvalidArgument, "--kv-type must be f16, f32 or q8_0"));
  const int64_t n_ctx = a.ctx > 0 ? a.ctx : static_cast<int64_t>(prompt->size()) + a.n_predict;
  auto kv = KvCache::create(c, n_ctx, *kv_type);
  if (!kv.ok()) return fail(kv.error());
  ThreadPool pool(a.threads);
  ForwardScratch scratch(c, std::max<int64_t>(1, a.batch), n_ctx, pool.n_threads());
  Transformer transformer(**model);

  FILE* dump = nullptr;
  if (!a.dump_logits.empty()) {
    dump = std::fopen(a.dump_logits.c_str(), "wb");
    if (!dump) return fail(make_error(ErrorCode::kIo, a.dump_logits + ": cannot create"));
  }
  std::vector<float> logits;
  const LogitsMode prefill_mode = dump ? LogitsMode::kAll : LogitsMode::kLast;
  Status st = transformer.forward(prompt->data(), static_cast<int64_t>(prompt->size()), *kv, scratch, pool,
                                  prefill_mode, logits);
  if (!st.ok()) {
    if (dump) std::fclose(dump);
    return fail(st.error());
  }
  if (dump) std::fwrite(logits.data(), sizeof(float), logits.size(), dump);
  const float* last = logits.data() + (prefill_mode == LogitsMode::kAll ? (prompt->size() - 1) * c.n_vocab : 0);
  std::vector<int32_t> out{argmax(last, c.n_vocab)};
  for (int i = 1; i < a.n_predict; ++i) {
    st = transformer.forward(&out.back(), 1, *kv, scratch, pool, LogitsMode::kLast, logits);
    if (!st.ok()) break;
    if (dump) std::fwrite(logits.data(), sizeof(float), logits.size(), dump);
    out.push_back(argmax(logits.data(), c.n_vocab));
  }
  if (dump && std::fclose(dump) != 0) return fail(make_error(ErrorCode::kIo, a.dump_logits + ": write failed"));
  for (size_t i = 0; i < out.size(); ++i) std::printf(i ? " %d" : "%d", out[i]);
  std::printf("\n");
  if (!st.ok()) return fail(st.error());
  return 0;
}

}  // namespace

void add_generate_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Greedy-decode from token ids (prints the generated ids)");
  cmd->add_option("-m,--model", a->model, "GGUF file or Hugging Face model directory")->required();
  cmd->add_option("--tokens", a->tokens, "Prompt token ids, comma-separated (e.g. 1,2,3)")->required();
  cmd->add_option("-n,--n-predict", a->n_predict, "Tokens to generate")->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads (0: one per core of the fastest cluster)")->capture_default_str();
  cmd->add_option("--ctx", a->ctx, "KV cache length (default: prompt + n)");
  cmd->add_option("--batch", a->batch, "Tokens per prefill step")->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16, f32 or q8_0")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  cmd->add_option("--dump-logits", a->dump_logits,
                  "Write raw little-endian f32 logits: every prompt position, then each decode step");
  cmd->callback([a, &exit_code] { exit_code = run_generate(*a); });
}

}  // namespace edgellm::cli
