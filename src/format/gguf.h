// GGUF v2/v3 reader (mmap) and writer.
// Layout (all little-endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, then n_kv key/value
// pairs, then n_tensors tensor infos (name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), then
// padding to `general.alignment` (default 32), then the data section; each tensor's offset is relative to
// the start of the data section and aligned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "format/dtype.h"
#include "format/tensor_ref.h"
#include "util/expected.h"
#include "util/mapped_file.h"

namespace edgellm {

enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* gguf_type_name(GgufType type);

// One metadata value. Scalars hold their value in `scalar`; arrays hold their element type and elements.
struct GgufValue {
  using Scalar = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                              std::string, uint64_t, int64_t, double>;
  GgufType type = GgufType::kUint32;
  Scalar scalar = uint32_t{0};
  GgufType elem_type = GgufType::kUint32;  // arrays only
  // Arrays keep their elements compact (a 152k-token vocabulary with its merges costs ~6 MB here, not the
  // ~36 MB of one GgufValue per element): numbers and bools as their little-endian bytes in `packed`,
  // strings back to back in `packed` with the end of each in `string_ends`. Arrays of arrays keep one
  // GgufValue per element in `elems`.
  std::string packed;
  std::vector<uint64_t> string_ends;
  std::vector<GgufValue> elems;  // arrays of arrays only

  // Constructors for writers.
  static GgufValue u8(uint8_t v);
  static GgufValue i8(int8_t v);
  static GgufValue u16(uint16_t v);
  static GgufValue i16(int16_t v);
  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue i64(int64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue string(std::string v);
  static GgufValue array(GgufType elem_type, std::vector<GgufValue> elems);
  static GgufValue string_array(const std::vector<std::string>& v);
  static GgufValue i32_array(const std::vector<int32_t>& v);
  static GgufValue f32_array(const std::vector<float>& v);

  bool is_array() const { return type == GgufType::kArray; }
  // Arrays: the number of elements, one element as a value of its own, one string of an array of strings.
  size_t array_size() const;
  GgufValue element(size_t i) const;
  std::string_view string_element(size_t i) const;
  // Any integer type (or bool) as int64; nullopt for other types or a u64 above INT64_MAX.
  std::optional<int64_t> as_int() const;
  // Any float or integer type as double.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  // Human-readable, truncated for long arrays (for `edgellm inspect`).
  std::string to_display_string(size_t max_elems = 8) const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  DType type = DType::kF32;
  uint64_t offset = 0;  // relative to the data section
  size_t size_bytes = 0;
};

class GgufFile {
 public:
  // Maps and parses `path`. Every structural problem (magic, version, truncation, counts, string lengths,
  // unknown value or tensor types, misaligned or out-of-range tensor data, duplicate names) is a kFormat
  // or kUnsupported error naming the file and the key/tensor/offset.
  // An edgellm-encrypted file is refused saying it needs its key (security/encrypted_model.h opens those).
  static Expected<GgufFile> open(const std::string& path);
  // Parses a file's bytes already in `file` (e.g. a decrypted model in memory); errors name file.path().
  static Expected<GgufFile> from_mapping(MappedFile file);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }  // file offset of the data section
  size_t file_size() const { return file_.size(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: kNotFound if absent, kFormat (naming the key, expected vs got type) if mistyped.
  Expected<int64_t> get_int(std::string_view key) const;
  Expected<double> get_float(std::string_view key) const;
  Expected<bool> get_bool(std::string_view key) const;
  Expected<std::string> get_string(std::string_view key) const;
  Expected<std::vector<std::string>> get_string_array(std::string_view key) const;
  // The array itself, checked to hold strings (read with string_element(i): no copy of its strings).
  Expected<const GgufValue*> get_string_array_value(std::string_view key) const;
  Expected<std::vector<double>> get_float_array(std::string_view key) const;  // any numeric elements
  Expected<std::vector<int64_t>> get_int_array(std::string_view key) const;   // any integer elements
  // Same, with a default when the key is absent (a mistyped key is still an error).
  Expected<int64_t> get_int_or(std::string_view key, int64_t fallback) const;
  Expected<double> get_float_or(std::string_view key, double fallback) const;
  Expected<bool> get_bool_or(std::string_view key, bool fallback) const;
  Expected<std::string> get_string_or(std::string_view key, std::string fallback) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // A view of a tensor's bytes inside the mapping (valid as long as this GgufFile lives).
  TensorRef tensor_ref(const GgufTensorInfo& info) const;

  void prefetch() const { file_.prefetch(); }
  // Drops the process's pages of tensor bytes that were copied elsewhere (MappedFile::release).
  void release(const void* p, size_t n) const { file_.release(p, n); }
  const uint8_t* raw_data() const { return file_.data(); }
  // The bytes live only in memory (a decrypted file): released bytes are gone (MappedFile::in_memory).
  bool in_memory() const { return file_.in_memory(); }

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t, std::less<>> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Writes a GGUF v3 file. Metadata keeps insertion order (a key set twice keeps its first position).
// Tensor data is produced one tensor at a time at write() time, so memory stays bounded by the
// largest tensor. The file is written to "<path>.tmp.<pid>" and renamed into place only on success;
// on any failure the temporary file is removed and nothing is left at `path`.
class GgufWriter {
 public:
  // Fills `out` with exactly `size_bytes` bytes of tensor data.
  using TensorProducer = std::function<Status(std::vector<uint8_t>& out)>;

  explicit GgufWriter(size_t alignment = 32);

  void set(const std::string& key, GgufValue value);
  void set_u32(const std::string& key, uint32_t v) { set(key, GgufValue::u32(v)); }
  void set_i32(const std::string& key, int32_t v) { set(key, GgufValue::i32(v)); }
  void set_f32(const std::string& key, float v) { set(key, GgufValue::f32(v)); }
  void set_bool(const std::string& key, bool v) { set(key, GgufValue::boolean(v)); }
  void set_string(const std::string& key, std::string v) { set(key, GgufValue::string(std::move(v))); }
  bool has(const std::string& key) const;

  // Adds a tensor whose bytes are copied now.
  Status add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data,
                    size_t size_bytes);
  // Adds a tensor whose bytes are produced at write time. `size_bytes` must match the shape and type.
  Status add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                    TensorProducer producer);
  size_t n_tensors() const { return tensors_.size(); }

  // Stores SHA-256 of the data section (hex) under `key`, computed while writing and patched into the
  // header at the end, so `edgellm verify` can detect corrupted downloads.
  void set_content_digest_key(const std::string& key);

  // Called after each tensor is written: (tensors done, total, bytes written so far).
  using ProgressFn = std::function<void(size_t done, size_t total, uint64_t bytes)>;
  Status write(const std::string& path, const ProgressFn& progress = nullptr) const;

 private:
  struct PendingTensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    size_t size_bytes;
    std::shared_ptr<const std::vector<uint8_t>> bytes;  // set for copied tensors
    TensorProducer producer;                            // set for produced tensors
  };
  size_t alignment_;
  std::string digest_key_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<PendingTensor> tensors_;
};

// SHA-256 of a GGUF file's data section, as GgufWriter::set_content_digest_key stores it.
Expected<std::string> gguf_content_digest(const GgufFile& gguf);

}  // namespace edgellm
