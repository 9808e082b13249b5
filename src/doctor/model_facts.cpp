#include "doctor/model_facts.h"

#include <filesystem>
#include <map>

#include "chat/model_chat_template.h"
#include "format/gguf.h"
#include "model/arch.h"
#include "security/open_model_file.h"
#include "tokenizer/tokenizer.h"

namespace edgellm::doctor {

uint64_t ModelFacts::kv_bytes_per_position(DType kv_type) const {
  return 2 * static_cast<uint64_t>(config.n_attention_layers()) * dtype_row_bytes(kv_type, config.kv_dim());
}

Expected<ModelFacts> read_model_facts(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Error(ErrorCode::kInvalidArgument, path + ": is a directory; `edgellm doctor -m` reads a GGUF file "
                                                     "(convert a Hugging Face directory first: edgellm convert)");
  }
  EDGELLM_ASSIGN_OR_RETURN(GgufFile gguf, open_model_gguf(path));  // an encrypted one with the environment's key
  ModelFacts f;
  f.path = path;
  f.file_bytes = gguf.file_size();
  EDGELLM_ASSIGN_OR_RETURN(f.arch, gguf.get_string("general.architecture"));
  const ArchSpec* spec = find_arch_by_gguf_name(f.arch);
  if (!spec) {
    return Error(ErrorCode::kUnsupported, path + ": architecture '" + f.arch + "' is not supported (supported: " +
                                              supported_arch_list() + ")");
  }
  EDGELLM_ASSIGN_OR_RETURN(f.config, config_from_gguf(gguf, *spec));

  std::map<DType, uint64_t> matrix_bytes;
  for (const auto& t : gguf.tensors()) {
    f.weight_bytes += t.size_bytes;
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    f.n_params += n;
    if (t.ne.size() >= 2) matrix_bytes[t.type] += t.size_bytes;
  }
  uint64_t most = 0;
  for (const auto& [type, bytes] : matrix_bytes) {
    if (bytes > most) most = bytes, f.main_type = type;
  }
  if (auto digest = gguf.get_string("edgellm.content.sha256"); digest.ok()) f.stored_digest = *digest;

  if (auto tok = Tokenizer::from_gguf(gguf); tok.ok()) {
    f.tokenizer_ok = true;
    f.tokenizer = std::string(tokenizer_kind_name((*tok)->kind())) + ", " + std::to_string((*tok)->n_vocab()) +
                  " tokens";
  } else {
    f.tokenizer = tok.error().message;
  }
  ChatOptions opts;
  if (auto tmpl = chat_template_for_model(gguf, &opts); tmpl.ok()) {
    f.chat_template = tmpl->name() + " (" + tmpl->note() + ")";
    f.chat_template_fallback = tmpl->origin() == ChatTemplateOrigin::kFallback;
  } else {
    f.chat_template = tmpl.error().message;
    f.chat_template_fallback = true;
  }
  return f;
}

}  // namespace edgellm::doctor
