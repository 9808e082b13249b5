// Tokenizer::from_path: picks the loader from what `path` is.
#include <filesystem>
#include <fstream>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"

namespace edgellm {

namespace fs = std::filesystem;

Expected<std::unique_ptr<Tokenizer>> Tokenizer::from_path(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return from_tokenizer_json((dir / "tokenizer.json").string());
    if (fs::exists(dir / "qwen.tiktoken", ec)) return from_tiktoken((dir / "qwen.tiktoken").string());
    return make_error(ErrorCode::kNotFound, path + ": directory has neither tokenizer.json nor qwen.tiktoken");
  }
  if (!fs::exists(path, ec)) return make_error(ErrorCode::kNotFound, path + ": no such file or directory");
  char magic[4] = {};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error(ErrorCode::kIo, path + ": cannot open");
    in.read(magic, 4);
  }
  if (std::string_view(magic, 4) == "GGUF") {
    EDGELLM_ASSIGN_OR_RETURN(const GgufFile gguf, GgufFile::open(path));
    return from_gguf(gguf);
  }
  if (fs::path(path).extension() == ".tiktoken") return from_tiktoken(path);
  if (magic[0] == '{' || fs::path(path).extension() == ".json") return from_tokenizer_json(path);
  return make_error(ErrorCode::kUnsupported,
                    path + ": not a tokenizer.json, *.tiktoken, GGUF file or Hugging Face model directory");
}

}  // namespace edgellm
