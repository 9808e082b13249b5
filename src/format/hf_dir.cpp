#include "format/hf_dir.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgellm {

namespace fs = std::filesystem;

bool is_hf_directory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::exists(fs::path(path) / "config.json", ec);
}

Expected<nlohmann::json> read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::kIo, path + ": read failed");
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    return make_error(ErrorCode::kFormat, path + ": malformed JSON: " + e.what());
  }
}

Expected<HfDirectory> open_hf_directory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error(ErrorCode::kNotFound, dir + ": not a directory");
  const fs::path root(dir);
  if (!fs::exists(root / "config.json", ec)) {
    return make_error(ErrorCode::kNotFound, dir + ": no config.json (not a Hugging Face model directory)");
  }
  HfDirectory hf;
  hf.dir = dir;
  EDGELLM_ASSIGN_OR_RETURN(hf.config, read_json_file((root / "config.json").string()));
  if (!hf.config.is_object()) return make_error(ErrorCode::kFormat, (root / "config.json").string() + ": not a JSON object");
  if (fs::exists(root / "generation_config.json", ec)) {
    EDGELLM_ASSIGN_OR_RETURN(auto gen, read_json_file((root / "generation_config.json").string()));
    hf.generation_config = std::move(gen);
  }
  if (fs::exists(root / "tokenizer_config.json", ec)) {
    EDGELLM_ASSIGN_OR_RETURN(auto tc, read_json_file((root / "tokenizer_config.json").string()));
    hf.tokenizer_config = std::move(tc);
  }
  if (fs::exists(root / "tokenizer.json", ec)) hf.tokenizer_json_path = (root / "tokenizer.json").string();
  if (fs::exists(root / "qwen.tiktoken", ec)) hf.tiktoken_path = (root / "qwen.tiktoken").string();
  EDGELLM_ASSIGN_OR_RETURN(hf.weights, Safetensors::open(dir));
  return hf;
}

}  // namespace edgellm
