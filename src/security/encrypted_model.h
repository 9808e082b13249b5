// Model files encrypted at rest: libsodium's XChaCha20-Poly1305 secretstream over fixed-size chunks, so a
// stolen SD card or eMMC does not give the model away, and every bit is authenticated: a flipped, dropped,
// reordered or appended byte anywhere is an error naming the chunk, never a wrong answer.
//
// Layout (little-endian):
//   0   magic[16]             "edgellm-enc\n\0\0\0\0"
//   16  u32 version           1
//   20  u32 chunk_bytes       plaintext bytes per chunk (4 KiB .. 64 MiB); the last chunk holds the rest
//   24  u64 plaintext_bytes   size of the original file
//   32  key_id[16]            ModelKey::id() of the key (tells a wrong key from a damaged file)
//   48  stream_header[24]     crypto_secretstream_xchacha20poly1305 header (random per file)
//   72  reserved[8]           zero
//   80  chunks                max(1, ceil(plaintext_bytes / chunk_bytes)) of (chunk + 17 bytes of tag and MAC),
//                             the last tagged FINAL; each authenticates the 80 header bytes as associated data.
// The file's size is therefore fixed by its header: a truncated or extended file is refused before any
// decryption.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "security/model_key.h"
#include "util/expected.h"
#include "util/mapped_file.h"

namespace edgellm {

inline constexpr size_t kEncryptedHeaderBytes = 80;
inline constexpr size_t kEncryptedChunkOverhead = 17;  // crypto_secretstream_xchacha20poly1305_ABYTES
inline constexpr uint32_t kDefaultEncryptedChunkBytes = 1u << 20;
// The message every "this file is encrypted" error carries after the path.
inline constexpr const char* kEncryptedModelNeedsKey =
    "an encrypted model file: give its key (--key-file, EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY or a systemd "
    "credential named edgellm-model-key)";

bool has_encrypted_model_magic(const uint8_t* data, size_t size);
// True when the file at `path` starts with the magic (false when it cannot be read).
bool is_encrypted_model_file(const std::string& path);

struct EncryptedModelInfo {
  uint32_t version = 0;
  uint32_t chunk_bytes = 0;
  uint64_t plaintext_bytes = 0;
  uint64_t n_chunks = 0;
  std::array<uint8_t, ModelKey::kIdBytes> key_id{};
  std::array<uint8_t, 24> stream_header{};  // random per encryption: with key_id it names this file's contents
  std::string key_id_hex() const;
};

// Reads and checks the header and the file's size. kFormat / kUnsupported errors name `path` and the field.
Expected<EncryptedModelInfo> read_encrypted_model_info(const std::string& path);

// Encrypts the file at `in` to `out` (written to out + ".tmp", then renamed: a failure leaves no partial
// file) in chunks of `chunk_bytes`. Memory: two chunks.
Status encrypt_model_file(const std::string& in, const std::string& out, const ModelKey& key,
                          uint32_t chunk_bytes = kDefaultEncryptedChunkBytes);
// The inverse, with every chunk authenticated before its bytes are written (same .tmp-then-rename).
Status decrypt_model_file(const std::string& in, const std::string& out, const ModelKey& key);

// Decrypts the file at `path` into memory: an in-memory MappedFile (MappedFile::anonymous) named `path`,
// read-only once returned, its pages excluded from core dumps. Chunks are read and decrypted straight into
// it, so the memory used is the plaintext's size plus one chunk.
Expected<MappedFile> decrypt_model_to_memory(const std::string& path, const ModelKey& key);

// The reader under all of the above, over an open file descriptor (the fuzz target's entry too): checks the
// header against `file_size` and `key`, then hands each authenticated chunk to `sink` in order.
// `destination(offset, n)` may return where chunk bytes [offset, offset + n) should be decrypted to (or
// nullptr for a scratch buffer). Errors name `label`.
Status decrypt_model_stream(int fd, uint64_t file_size, const std::string& label, const ModelKey& key,
                            const std::function<uint8_t*(uint64_t offset, size_t n)>& destination,
                            const std::function<Status(const uint8_t* data, size_t n)>& sink,
                            EncryptedModelInfo* info_out = nullptr);

}  // namespace edgellm
