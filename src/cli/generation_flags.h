// Flags shared by `edgellm run` and `edgellm chat`: model, context, threads, sampling preset and overrides.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/thread_flags.h"
#include "edgellm/edgellm.h"

namespace edgellm::cli {

struct GenerationFlags {
  std::string model;
  ThreadFlags threads;
  int ctx = 0;
  std::string kv_type = "f16";
  std::string chat_template;
  std::string preset;
  std::optional<float> temperature, top_p, min_p, typical_p, repeat_penalty, frequency_penalty, presence_penalty;
  std::optional<int32_t> mirostat;
  std::optional<float> mirostat_tau, mirostat_eta;
  std::optional<int> top_k, repeat_last_n;
  std::optional<uint64_t> seed;
  int max_new_tokens = 256;
  int lookup = 0;  // speculative decoding with prompt lookup: draft tokens per step (0: off)
  std::string lora;
  float lora_scale = 1.0f;
  bool verbose = false;
  std::string require_signature;  // minisign public key file the model's signature must verify with
  std::string key_file;           // key of an encrypted model ("" = the environment's)
  std::string grammar_file;      // GBNF constraining the output
  std::string json_schema_file;  // JSON Schema constraining the output
  // The files' text, read by build_generate_params (the params point into it).
  mutable std::string grammar_text, json_schema_text;
};

void add_generation_flags(CLI::App* cmd, GenerationFlags& flags);

// Loads the model and opens a session; prints the error and returns false on failure.
bool open_model_and_session(const GenerationFlags& flags, edgellm_model** model, edgellm_session** session);

// The model's defaults, then the preset, then the individual flags. False (error printed) on a bad preset.
bool build_generate_params(const GenerationFlags& flags, edgellm_model* model, const std::string& preset,
                           edgellm_generate_params* params);

// "prefill 12 tokens in 30.1 ms (398.7 tok/s), decode 64 tokens in 800.0 ms (80.0 tok/s), peak RSS 120 MiB"
void print_perf(edgellm_session* session);

}  // namespace edgellm::cli
