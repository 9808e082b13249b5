#include "cli/generation_flags.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace edgellm::cli {

void add_generation_flags(CLI::App* cmd, GenerationFlags& f) {
  cmd->add_option("-m,--model", f.model, "GGUF file or Hugging Face model directory")->required();
  add_thread_flags(cmd, f.threads);
  cmd->add_option("-c,--ctx", f.ctx, "Context length in tokens (KV cache size; 0: min(4096, training length))")
      ->capture_default_str();
  cmd->add_option("--kv-type", f.kv_type, "KV cache type")->check(CLI::IsMember({"f16", "f32", "q8_0"}))->capture_default_str();
  cmd->add_option("--chat-template", f.chat_template, "Chat template name (default: from the model)");
  cmd->add_option("--preset", f.preset, "Sampling preset: qa, creative, code, greedy");
  cmd->add_option("--temp", f.temperature, "Temperature (0: greedy)");
  cmd->add_option("--top-k", f.top_k, "Top-k (0: off)");
  cmd->add_option("--top-p", f.top_p, "Top-p (1: off)");
  cmd->add_option("--min-p", f.min_p, "Min-p (0: off)");
  cmd->add_option("--typical-p", f.typical_p, "Typical-p (1: off)");
  cmd->add_option("--repeat-penalty", f.repeat_penalty, "Repetition penalty (1: off)");
  cmd->add_option("--repeat-last-n", f.repeat_last_n, "Tokens the penalties look back over (-1: all)");
  cmd->add_option("--frequency-penalty", f.frequency_penalty, "Frequency penalty");
  cmd->add_option("--presence-penalty", f.presence_penalty, "Presence penalty");
  cmd->add_option("--seed", f.seed, "Sampling seed");
  cmd->add_option("--mirostat", f.mirostat, "Mirostat version: 0 off, 1, 2 (replaces top-k/top-p/min-p/typical-p)")
      ->check(CLI::Range(0, 2));
  cmd->add_option("--mirostat-tau", f.mirostat_tau, "Mirostat target surprise in bits (default 5)");
  cmd->add_option("--mirostat-eta", f.mirostat_eta, "Mirostat learning rate (default 0.1)");
  cmd->add_option("-n,--max-new-tokens", f.max_new_tokens, "Maximum tokens to generate")->capture_default_str();
  cmd->add_option("--lookup", f.lookup,
                  "Speculative decoding with prompt lookup: verify up to N tokens copied from the context per step "
                  "(same output, faster when the reply repeats its input; 0: off)")
      ->check(CLI::Range(0, 32))
      ->capture_default_str();
  cmd->add_option("--lora", f.lora, "LoRA adapter to apply (PEFT directory or GGUF adapter)");
  cmd->add_option("--lora-scale", f.lora_scale, "LoRA strength")->capture_default_str();
  cmd->add_option("--require-signature", f.require_signature,
                  "Load the model only if MODEL.minisig verifies with this minisign public key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--key-file", f.key_file,
                  "Key of an encrypted model (edgellm encrypt); default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY "
                  "or the systemd credential edgellm-model-key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--grammar", f.grammar_file,
                  "GBNF grammar file (llama.cpp's format) the output must match; generation ends when it is complete")
      ->check(CLI::ExistingFile);
  cmd->add_option("--json-schema", f.json_schema_file, "JSON Schema file: the output is one JSON value valid against it")
      ->check(CLI::ExistingFile)
      ->excludes("--grammar");
  cmd->add_flag("-v,--verbose", f.verbose, "Print token counts, tokens/s and peak memory at the end");
}

bool open_model_and_session(const GenerationFlags& f, edgellm_model** model, edgellm_session** session) {
  edgellm_model_params mp = edgellm_model_default_params();
  std::vector<int> cpus;
  if (!thread_flags_cpus(f.threads, nullptr, &cpus)) return false;
  mp.n_threads = f.threads.threads;
  mp.pin_threads = f.threads.pin ? 1 : 0;
  for (int cpu : cpus) mp.cpu_mask |= uint64_t{1} << cpu;
  mp.chat_template = f.chat_template.empty() ? nullptr : f.chat_template.c_str();
  mp.require_signature = f.require_signature.empty() ? nullptr : f.require_signature.c_str();
  mp.key_file = f.key_file.empty() ? nullptr : f.key_file.c_str();
  if (edgellm_model_load(f.model.c_str(), &mp, model) != EDGELLM_OK) {
    std::fprintf(stderr, "edgellm: %s\n", edgellm_last_error());
    return false;
  }
  if (!f.lora.empty() && edgellm_model_load_lora(*model, f.lora.c_str(), "cli") != EDGELLM_OK) {
    std::fprintf(stderr, "edgellm: %s\n", edgellm_model_last_error(*model));
    edgellm_model_free(*model);
    *model = nullptr;
    return false;
  }
  edgellm_session_params sp = edgellm_session_default_params();
  sp.n_ctx = f.ctx;
  sp.kv_type = f.kv_type == "f32" ? EDGELLM_KV_F32 : f.kv_type == "q8_0" ? EDGELLM_KV_Q8_0 : EDGELLM_KV_F16;
  if (edgellm_session_create(*model, &sp, session) != EDGELLM_OK) {
    std::fprintf(stderr, "edgellm: %s\n", edgellm_model_last_error(*model));
    edgellm_model_free(*model);
    *model = nullptr;
    return false;
  }
  if (!f.lora.empty() && edgellm_session_set_lora(*session, "cli", f.lora_scale) != EDGELLM_OK) {
    std::fprintf(stderr, "edgellm: %s\n", edgellm_session_last_error(*session));
    edgellm_session_free(*session);
    edgellm_model_free(*model);
    *session = nullptr;
    *model = nullptr;
    return false;
  }
  return true;
}

bool build_generate_params(const GenerationFlags& f, edgellm_model* model, const std::string& preset,
                           edgellm_generate_params* p) {
  *p = edgellm_generate_default_params(model);
  if (!preset.empty() && edgellm_sampling_preset(preset.c_str(), &p->sampling) != EDGELLM_OK) {
    std::fprintf(stderr, "edgellm: %s\n", edgellm_last_error());
    return false;
  }
  auto& s = p->sampling;
  if (f.temperature) s.temperature = *f.temperature;
  if (f.top_k) s.top_k = *f.top_k;
  if (f.top_p) s.top_p = *f.top_p;
  if (f.min_p) s.min_p = *f.min_p;
  if (f.typical_p) s.typical_p = *f.typical_p;
  if (f.repeat_penalty) s.repetition_penalty = *f.repeat_penalty;
  if (f.repeat_last_n) s.penalty_last_n = *f.repeat_last_n;
  if (f.frequency_penalty) s.frequency_penalty = *f.frequency_penalty;
  if (f.presence_penalty) s.presence_penalty = *f.presence_penalty;
  if (f.seed) s.seed = *f.seed;
  if (f.mirostat) s.mirostat = *f.mirostat;
  if (f.mirostat_tau) s.mirostat_tau = *f.mirostat_tau;
  if (f.mirostat_eta) s.mirostat_eta = *f.mirostat_eta;
  p->max_new_tokens = f.max_new_tokens;
  p->lookup = f.lookup;
  auto read = [](const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "edgellm: cannot read %s\n", path.c_str());
      return false;
    }
    out = ss.str();
    return true;
  };
  if (!f.grammar_file.empty()) {
    if (!read(f.grammar_file, f.grammar_text)) return false;
    p->grammar = f.grammar_text.c_str();
  }
  if (!f.json_schema_file.empty()) {
    if (!read(f.json_schema_file, f.json_schema_text)) return false;
    p->json_schema = f.json_schema_text.c_str();
  }
  return true;
}

void print_perf(edgellm_session* session) {
  edgellm_perf perf{};
  if (edgellm_session_get_perf(session, &perf) != EDGELLM_OK) return;
  const double prefill_tps = perf.prefill_ms > 0 ? 1000.0 * static_cast<double>(perf.prefill_tokens) / perf.prefill_ms : 0;
  const double decode_tps = perf.decode_ms > 0 ? 1000.0 * static_cast<double>(perf.decode_tokens) / perf.decode_ms : 0;
  std::fprintf(stderr,
               "\n[prompt %lld tokens (%lld reused), prefill %lld in %.1f ms (%.1f tok/s), decode %lld in %.1f ms "
               "(%.1f tok/s), peak RSS %.1f MiB, finish: %s]\n",
               static_cast<long long>(perf.prompt_tokens), static_cast<long long>(perf.reused_tokens),
               static_cast<long long>(perf.prefill_tokens), perf.prefill_ms, prefill_tps,
               static_cast<long long>(perf.decode_tokens), perf.decode_ms, decode_tps,
               static_cast<double>(perf.peak_rss_bytes) / (1024.0 * 1024.0), perf.finish_reason);
  if (perf.verify_steps > 0) {
    // Every accepted draft token is a forward step saved.
    const auto steps = static_cast<double>(std::max<int64_t>(perf.decode_tokens - perf.accepted_tokens, 1));
    std::fprintf(stderr, "[lookup: %lld verification steps, %lld of %lld drafted tokens accepted (%.0f%%), %.2f tokens "
                         "per forward step]\n",
                 static_cast<long long>(perf.verify_steps), static_cast<long long>(perf.accepted_tokens),
                 static_cast<long long>(perf.draft_tokens),
                 100.0 * static_cast<double>(perf.accepted_tokens) / static_cast<double>(std::max<int64_t>(perf.draft_tokens, 1)),
                 static_cast<double>(perf.decode_tokens) / steps);
  }
}

}  // namespace edgellm::cli
