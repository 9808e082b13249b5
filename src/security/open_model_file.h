// Opening a model file that may be encrypted at rest (security/encrypted_model.h).
#pragma once

#include <string>

#include "format/gguf.h"
#include "util/expected.h"

namespace edgellm {

// Opens a model's GGUF file: mapped in place, or, when it is encrypted (security/encrypted_model.h),
// decrypted into memory with the key from `key_file` or the environment (find_model_key). Without a key
// the error names the file and where a key may be given.
Expected<GgufFile> open_model_gguf(const std::string& path, const std::string& key_file = "");

}  // namespace edgellm
