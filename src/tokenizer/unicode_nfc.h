// Unicode NFC normalization (Unicode Standard Annex #15) via ICU, as Hugging Face's "NFC" normalizer
// and Qwen 1's tokenize() (unicodedata.normalize("NFC", text)) apply before splitting.
#pragma once

#include <string>
#include <string_view>

namespace edgellm {

// If `text` (valid UTF-8) is not already in NFC, writes its NFC form to `out` and returns true;
// otherwise returns false and leaves `out` untouched, so the common case copies nothing.
bool nfc_normalize(std::string_view text, std::string& out);

}  // namespace edgellm
