#include "tokenizer/unicode_nfc.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include "util/check.h"

namespace edgellm {

namespace {

const icu::Normalizer2& nfc_instance() {
  static const icu::Normalizer2* instance = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
    EDGELLM_CHECK(U_SUCCESS(status) && n != nullptr);  // ICU's built-in data is part of the library
    return n;
  }();
  return *instance;
}

// Every code point below U+0300 is NFC-stable and never composes with a preceding character, so
// text whose bytes are all below 0xCC (the lead byte of U+0300) is already in NFC.
bool trivially_nfc(std::string_view text) {
  for (char c : text) {
    if (static_cast<uint8_t>(c) >= 0xCC) return false;
  }
  return true;
}

}  // namespace

bool nfc_normalize(std::string_view text, std::string& out) {
  if (trivially_nfc(text)) return false;
  const icu::Normalizer2& nfc = nfc_instance();
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  UErrorCode status = U_ZERO_ERROR;
  if (nfc.isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return false;
  status = U_ZERO_ERROR;
  std::string normalized;
  icu::StringByteSink<std::string> sink(&normalized, static_cast<int32_t>(text.size()));
  nfc.normalizeUTF8(0, piece, sink, nullptr, status);
  EDGELLM_CHECK(U_SUCCESS(status));  // valid UTF-8 in, so ICU cannot fail
  out = std::move(normalized);
  return true;
}

}  // namespace edgellm
