// A Hugging Face model directory: config.json, optional generation_config.json, weights in
// (sharded) safetensors, and tokenizer files (tokenizer.json, tokenizer_config.json, qwen.tiktoken).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "util/expected.h"

namespace edgellm {

struct HfDirectory {
  std::string dir;
  nlohmann::json config;                        // config.json
  std::optional<nlohmann::json> generation_config;  // generation_config.json, if present
  std::optional<nlohmann::json> tokenizer_config;   // tokenizer_config.json, if present
  std::string tokenizer_json_path;              // empty if absent
  std::string tiktoken_path;                    // qwen.tiktoken, empty if absent
  Safetensors weights;
};

// True if `path` is a directory containing config.json.
bool is_hf_directory(const std::string& path);

// Reads the JSON files and maps the weights. Errors name the file and, for JSON, the parse position.
Expected<HfDirectory> open_hf_directory(const std::string& dir);

// Parses a JSON file with a clear error (file name, line/column) on malformed input.
Expected<nlohmann::json> read_json_file(const std::string& path);

}  // namespace edgellm
