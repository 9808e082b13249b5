#include "security/open_model_file.h"

#include "security/encrypted_model.h"
#include "security/model_key.h"

namespace edgellm {

Expected<GgufFile> open_model_gguf(const std::string& path, const std::string& key_file) {
  if (!is_encrypted_model_file(path)) return GgufFile::open(path);
  auto key = find_model_key(key_file);
  if (!key.ok()) {
    if (key.error().code == ErrorCode::kNotFound) return make_error(ErrorCode::kInvalidArgument, path + ": " + kEncryptedModelNeedsKey);
    return key.error();
  }
  EDGELLM_ASSIGN_OR_RETURN(MappedFile plain, decrypt_model_to_memory(path, *key));
  return GgufFile::from_mapping(std::move(plain));
}

}  // namespace edgellm
