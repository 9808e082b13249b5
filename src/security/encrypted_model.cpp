#include "security/encrypted_model.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "security/sodium_init.h"

namespace edgellm {
namespace {

constexpr uint8_t kMagic[16] = {'e', 'd', 'g', 'e', 'l', 'l', 'm', '-', 'e', 'n', 'c', '\n', 0, 0, 0, 0};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMinChunkBytes = 4096;
constexpr uint32_t kMaxChunkBytes = 64u << 20;
static_assert(kEncryptedChunkOverhead == crypto_secretstream_xchacha20poly1305_ABYTES);
static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24);
static_assert(crypto_secretstream_xchacha20poly1305_KEYBYTES == ModelKey::kBytes);


uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
uint64_t load_u64(const uint8_t* p) { return load_u32(p) | static_cast<uint64_t>(load_u32(p + 4)) << 32; }
void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void store_u64(uint8_t* p, uint64_t v) {
  store_u32(p, static_cast<uint32_t>(v));
  store_u32(p + 4, static_cast<uint32_t>(v >> 32));
}

std::string hex(const uint8_t* p, size_t n) {
  std::string out(2 * n + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), p, n);
  out.pop_back();
  return out;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// Reads exactly n bytes (retrying short reads); false at end of file or on an error (errno set).
bool read_full(int fd, uint8_t* buf, size_t n) {
  while (n > 0) {
    const ssize_t got = ::read(fd, buf, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got == 0) errno = 0;
      return false;
    }
    buf += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

bool write_full(int fd, const uint8_t* buf, size_t n) {
  while (n > 0) {
    const ssize_t put = ::write(fd, buf, n);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    buf += put;
    n -= static_cast<size_t>(put);
  }
  return true;
}

Error io_error(const std::string& path, const char* what) {
  return make_error(ErrorCode::kIo, path + ": " + what + ": " + (errno != 0 ? std::strerror(errno) : "unexpected end of file"));
}

// Checks the header bytes against the file's size.
Expected<EncryptedModelInfo> parse_header(const uint8_t* h, uint64_t file_size, const std::string& label) {
  if (!has_encrypted_model_magic(h, kEncryptedHeaderBytes)) {
    return make_error(ErrorCode::kFormat, label + ": not an edgellm-encrypted file (no \"edgellm-enc\" magic)");
  }
  EncryptedModelInfo info;
  info.version = load_u32(h + 16);
  if (info.version != kVersion) {
    return make_error(ErrorCode::kUnsupported, label + ": encrypted-file version " + std::to_string(info.version) +
                                                   " (this edgellm reads version " + std::to_string(kVersion) + ")");
  }
  info.chunk_bytes = load_u32(h + 20);
  if (info.chunk_bytes < kMinChunkBytes || info.chunk_bytes > kMaxChunkBytes) {
    return make_error(ErrorCode::kFormat, label + ": chunk size " + std::to_string(info.chunk_bytes) +
                                              " bytes is outside 4 KiB .. 64 MiB (a damaged header)");
  }
  info.plaintext_bytes = load_u64(h + 24);
  std::memcpy(info.key_id.data(), h + 32, info.key_id.size());
  std::memcpy(info.stream_header.data(), h + 48, info.stream_header.size());
  for (size_t i = 72; i < kEncryptedHeaderBytes; ++i) {
    if (h[i] != 0) return make_error(ErrorCode::kFormat, label + ": reserved header bytes are not zero (a damaged header)");
  }
  const uint64_t body = file_size - kEncryptedHeaderBytes;  // file_size >= header checked by the caller
  // The body holds plaintext + 17 bytes per chunk: bound the plaintext by the body before any arithmetic.
  if (info.plaintext_bytes > body) {
    return make_error(ErrorCode::kFormat, label + ": truncated: the header promises " + mib(info.plaintext_bytes) +
                                              " of model but the file holds only " + std::to_string(file_size) + " bytes");
  }
  info.n_chunks = info.plaintext_bytes == 0 ? 1 : (info.plaintext_bytes + info.chunk_bytes - 1) / info.chunk_bytes;
  const uint64_t expected = kEncryptedHeaderBytes + info.plaintext_bytes + info.n_chunks * kEncryptedChunkOverhead;
  if (file_size < expected) {
    return make_error(ErrorCode::kFormat, label + ": truncated: " + std::to_string(file_size) + " bytes of the " +
                                              std::to_string(expected) + " its header promises (" +
                                              std::to_string(info.n_chunks) + " chunks)");
  }
  if (file_size > expected) {
    return make_error(ErrorCode::kFormat, label + ": " + std::to_string(file_size - expected) +
                                              " unexpected bytes after the last chunk (the file is " +
                                              std::to_string(file_size) + " bytes, its header says " +
                                              std::to_string(expected) + ")");
  }
  return info;
}

// Opens `path` for reading, returning the descriptor and size; the caller closes it.
Expected<std::pair<int, uint64_t>> open_for_read(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kIo, path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    return make_error(ErrorCode::kIo, path + ": " + (err != 0 ? std::strerror(err) : "not a regular file"));
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::pair<int, uint64_t>{fd, static_cast<uint64_t>(st.st_size)};
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Writes through `produce(fd)` to out + ".tmp", then renames it over `out`; nothing is left behind on failure.
Status write_atomically(const std::string& out, const std::function<Status(int fd)>& produce) {
  const std::string tmp = out + ".tmp";
  Fd file{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
  if (file.fd < 0) return make_error(ErrorCode::kIo, tmp + ": cannot create: " + std::strerror(errno));
  Status status = produce(file.fd);
  if (status.ok() && ::fsync(file.fd) != 0) status = io_error(tmp, "cannot sync");
  ::close(std::exchange(file.fd, -1));
  if (status.ok() && ::rename(tmp.c_str(), out.c_str()) != 0) status = io_error(out, "cannot rename the finished file into place");
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

}  // namespace

bool has_encrypted_model_magic(const uint8_t* data, size_t size) {
  return data != nullptr && size >= sizeof(kMagic) && std::memcmp(data, kMagic, sizeof(kMagic)) == 0;
}

bool is_encrypted_model_file(const std::string& path) {
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) return false;
  uint8_t head[sizeof(kMagic)];
  return read_full(file.fd, head, sizeof(head)) && has_encrypted_model_magic(head, sizeof(head));
}

std::string EncryptedModelInfo::key_id_hex() const { return hex(key_id.data(), key_id.size()); }

Expected<EncryptedModelInfo> read_encrypted_model_info(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(const auto opened, open_for_read(path));
  Fd file{opened.first};
  if (opened.second < kEncryptedHeaderBytes) {
    return make_error(ErrorCode::kFormat, path + ": " + std::to_string(opened.second) +
                                              " bytes is shorter than an encrypted file's header (80 bytes)");
  }
  uint8_t header[kEncryptedHeaderBytes];
  if (!read_full(file.fd, header, sizeof(header))) return io_error(path, "cannot read the header");
  return parse_header(header, opened.second, path);
}

Status decrypt_model_stream(int fd, uint64_t file_size, const std::string& label, const ModelKey& key,
                            const std::function<uint8_t*(uint64_t offset, size_t n)>& destination,
                            const std::function<Status(const uint8_t* data, size_t n)>& sink,
                            EncryptedModelInfo* info_out) {
  init_sodium();
  if (file_size < kEncryptedHeaderBytes) {
    return make_error(ErrorCode::kFormat, label + ": " + std::to_string(file_size) +
                                              " bytes is shorter than an encrypted file's header (80 bytes)");
  }
  uint8_t header[kEncryptedHeaderBytes];
  if (!read_full(fd, header, sizeof(header))) return io_error(label, "cannot read the header");
  EDGELLM_ASSIGN_OR_RETURN(const EncryptedModelInfo info, parse_header(header, file_size, label));
  if (info_out != nullptr) *info_out = info;
  const auto key_id = key.id();
  if (sodium_memcmp(key_id.data(), info.key_id.data(), key_id.size()) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      label + ": encrypted with another key (the file names key " + info.key_id_hex() +
                          ", the key given is " + key.id_hex() + ")");
  }
  crypto_secretstream_xchacha20poly1305_state state;
  if (crypto_secretstream_xchacha20poly1305_init_pull(&state, header + 48, key.data()) != 0) {
    return make_error(ErrorCode::kFormat, label + ": the stream header is invalid (a damaged file)");
  }
  std::vector<uint8_t> cipher(static_cast<size_t>(info.chunk_bytes) + kEncryptedChunkOverhead);
  std::vector<uint8_t> scratch;
  Status status;
  uint64_t offset = 0;
  for (uint64_t i = 0; i < info.n_chunks && status.ok(); ++i) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(info.chunk_bytes, info.plaintext_bytes - offset));
    if (!read_full(fd, cipher.data(), n + kEncryptedChunkOverhead)) {
      status = io_error(label, ("cannot read chunk " + std::to_string(i)).c_str());
      break;
    }
    uint8_t* out = destination ? destination(offset, n) : nullptr;
    if (out == nullptr) {
      scratch.resize(info.chunk_bytes);
      out = scratch.data();
    }
    unsigned long long got = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&state, out, &got, &tag, cipher.data(), n + kEncryptedChunkOverhead,
                                                   header, sizeof(header)) != 0 ||
        got != n) {
      status = make_error(ErrorCode::kFormat,
                          label + ": chunk " + std::to_string(i) + " of " + std::to_string(info.n_chunks) +
                              " (file bytes " + std::to_string(kEncryptedHeaderBytes + offset + i * kEncryptedChunkOverhead) +
                              "..) fails authentication: the file was modified or damaged");
      sodium_memzero(out, n);
      break;
    }
    const bool last = i + 1 == info.n_chunks;
    const bool final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (final != last) {
      status = make_error(ErrorCode::kFormat, label + ": chunk " + std::to_string(i) + " of " +
                                                  std::to_string(info.n_chunks) +
                                                  (final ? " ends the stream early" : " is the last but not marked final"));
      sodium_memzero(out, n);
      break;
    }
    if (sink) status = sink(out, n);
    offset += n;
  }
  if (!scratch.empty()) sodium_memzero(scratch.data(), scratch.size());
  sodium_memzero(&state, sizeof(state));
  return status;
}

Status encrypt_model_file(const std::string& in, const std::string& out, const ModelKey& key, uint32_t chunk_bytes) {
  init_sodium();
  if (chunk_bytes < kMinChunkBytes || chunk_bytes > kMaxChunkBytes) {
    return make_error(ErrorCode::kInvalidArgument, "chunk size " + std::to_string(chunk_bytes) +
                                                       " is outside 4096 .. 67108864 bytes");
  }
  EDGELLM_ASSIGN_OR_RETURN(const auto opened, open_for_read(in));
  Fd source{opened.first};
  const uint64_t plaintext_bytes = opened.second;

  uint8_t header[kEncryptedHeaderBytes] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  store_u32(header + 16, kVersion);
  store_u32(header + 20, chunk_bytes);
  store_u64(header + 24, plaintext_bytes);
  const auto key_id = key.id();
  std::memcpy(header + 32, key_id.data(), key_id.size());
  crypto_secretstream_xchacha20poly1305_state state;
  crypto_secretstream_xchacha20poly1305_init_push(&state, header + 48, key.data());

  const uint64_t n_chunks = plaintext_bytes == 0 ? 1 : (plaintext_bytes + chunk_bytes - 1) / chunk_bytes;
  Status status = write_atomically(out, [&](int fd) -> Status {
    if (!write_full(fd, header, sizeof(header))) return io_error(out + ".tmp", "cannot write");
    std::vector<uint8_t> plain(chunk_bytes), cipher(static_cast<size_t>(chunk_bytes) + kEncryptedChunkOverhead);
    uint64_t offset = 0;
    Status result;
    for (uint64_t i = 0; i < n_chunks; ++i) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_bytes, plaintext_bytes - offset));
      if (!read_full(source.fd, plain.data(), n)) {
        result = io_error(in, "cannot read (did it change while being encrypted?)");
        break;
      }
      const bool last = i + 1 == n_chunks;
      unsigned long long written = 0;
      crypto_secretstream_xchacha20poly1305_push(&state, cipher.data(), &written, plain.data(), n, header, sizeof(header),
                                                 last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
      if (!write_full(fd, cipher.data(), static_cast<size_t>(written))) {
        result = io_error(out + ".tmp", "cannot write");
        break;
      }
      offset += n;
    }
    uint8_t extra = 0;
    if (result.ok() && read_full(source.fd, &extra, 1)) {
      result = make_error(ErrorCode::kIo, in + ": grew while being encrypted");
    }
    sodium_memzero(plain.data(), plain.size());
    return result;
  });
  sodium_memzero(&state, sizeof(state));
  return status;
}

Status decrypt_model_file(const std::string& in, const std::string& out, const ModelKey& key) {
  EDGELLM_ASSIGN_OR_RETURN(const auto opened, open_for_read(in));
  Fd source{opened.first};
  return write_atomically(out, [&](int fd) -> Status {
    return decrypt_model_stream(source.fd, opened.second, in, key, nullptr, [&](const uint8_t* data, size_t n) -> Status {
      if (!write_full(fd, data, n)) return io_error(out + ".tmp", "cannot write");
      return {};
    });
  });
}

Expected<MappedFile> decrypt_model_to_memory(const std::string& path, const ModelKey& key) {
  EDGELLM_ASSIGN_OR_RETURN(const auto opened, open_for_read(path));
  Fd source{opened.first};
  EDGELLM_ASSIGN_OR_RETURN(const EncryptedModelInfo info, read_encrypted_model_info(path));
  EDGELLM_ASSIGN_OR_RETURN(MappedFile memory, MappedFile::anonymous(path, static_cast<size_t>(info.plaintext_bytes)));
  uint8_t* base = memory.mutable_data();
  EDGELLM_TRY(decrypt_model_stream(
      source.fd, opened.second, path, key, [&](uint64_t offset, size_t) { return base + offset; }, nullptr));
  memory.seal();
  return memory;
}

}  // namespace edgellm
