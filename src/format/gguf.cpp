#include "format/gguf.h"

#include "security/encrypted_model.h"
#include "util/check.h"
#include "util/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <limits>

namespace edgellm {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxArrayElems = uint64_t{1} << 28;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS

bool is_valid_gguf_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

// Bounds-checked little-endian cursor over the mapped file. Every read failure records an error that
// names the file, what was being read and the offset.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  bool failed() const { return failed_; }
  const Error& error() const { return error_; }

  void fail(ErrorCode code, const std::string& what) {
    if (failed_) return;
    failed_ = true;
    error_ = make_error(code, path_ + ": " + what);
  }

  bool read_bytes(void* out, size_t n, const char* what) {
    if (failed_) return false;
    if (n > size_ - pos_) {
      fail(ErrorCode::kFormat, std::string("truncated file: reading ") + what + " at offset " +
                                   std::to_string(pos_) + " needs " + std::to_string(n) + " bytes, " +
                                   std::to_string(size_ - pos_) + " left");
      return false;
    }
    std::memcpy(out, data_ + pos_, n);
    pos_ += n;
    return true;
  }

  template <class T>
  T read(const char* what) {
    T v{};
    read_bytes(&v, sizeof(T), what);
    return v;
  }

  std::string read_string(const char* what) { return std::string(read_string_view(what)); }

  // The string's bytes where they lie in the file (valid while the file is mapped).
  std::string_view read_string_view(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (failed_) return {};
    if (len > kMaxStringBytes || len > size_ - pos_) {
      fail(ErrorCode::kFormat, std::string("bad string length ") + std::to_string(len) + " for " + what +
                                   " at offset " + std::to_string(pos_ - 8));
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
  bool failed_ = false;
  Error error_;
};

bool read_value(Reader& r, GgufType type, GgufValue& out, const std::string& key, int depth);

bool read_scalar(Reader& r, GgufType type, GgufValue& out, const char* what) {
  out.type = type;
  switch (type) {
    case GgufType::kUint8: out.scalar = r.read<uint8_t>(what); break;
    case GgufType::kInt8: out.scalar = r.read<int8_t>(what); break;
    case GgufType::kUint16: out.scalar = r.read<uint16_t>(what); break;
    case GgufType::kInt16: out.scalar = r.read<int16_t>(what); break;
    case GgufType::kUint32: out.scalar = r.read<uint32_t>(what); break;
    case GgufType::kInt32: out.scalar = r.read<int32_t>(what); break;
    case GgufType::kFloat32: out.scalar = r.read<float>(what); break;
    case GgufType::kBool: {
      const uint8_t b = r.read<uint8_t>(what);
      if (!r.failed() && b > 1) {
        r.fail(ErrorCode::kFormat, std::string("bad bool value ") + std::to_string(b) + " for " + what);
      }
      out.scalar = b != 0;
      break;
    }
    case GgufType::kString: out.scalar = r.read_string(what); break;
    case GgufType::kUint64: out.scalar = r.read<uint64_t>(what); break;
    case GgufType::kInt64: out.scalar = r.read<int64_t>(what); break;
    case GgufType::kFloat64: out.scalar = r.read<double>(what); break;
    case GgufType::kArray: return false;
  }
  return !r.failed();
}

bool read_value(Reader& r, GgufType type, GgufValue& out, const std::string& key, int depth) {
  const std::string what = "value of key '" + key + "'";
  if (type != GgufType::kArray) return read_scalar(r, type, out, what.c_str());
  if (depth > 4) {
    r.fail(ErrorCode::kFormat, "key '" + key + "': arrays nested too deeply");
    return false;
  }
  const uint32_t elem_type = r.read<uint32_t>(what.c_str());
  const uint64_t n = r.read<uint64_t>(what.c_str());
  if (r.failed()) return false;
  if (!is_valid_gguf_type(elem_type)) {
    r.fail(ErrorCode::kFormat, "key '" + key + "': unknown array element type " + std::to_string(elem_type));
    return false;
  }
  const auto et = static_cast<GgufType>(elem_type);
  // Each element takes at least one byte (or 8 for a string length): reject counts the file cannot hold.
  const size_t min_elem = et == GgufType::kString ? 8 : (et == GgufType::kArray ? 12 : scalar_size(et));
  if (n > kMaxArrayElems || n * min_elem > r.remaining()) {
    r.fail(ErrorCode::kFormat, "key '" + key + "': array of " + std::to_string(n) + " elements is too large");
    return false;
  }
  out.type = GgufType::kArray;
  out.elem_type = et;
  out.elems.clear();
  out.packed.clear();
  out.string_ends.clear();
  if (et == GgufType::kArray) {
    out.elems.reserve(static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)));
    for (uint64_t i = 0; i < n; ++i) {
      GgufValue elem;
      if (!read_value(r, et, elem, key, depth + 1)) return false;
      out.elems.push_back(std::move(elem));
    }
  } else if (et == GgufType::kString) {
    out.string_ends.reserve(static_cast<size_t>(n));  // n * 8 bytes of lengths are in the file (checked above)
    for (uint64_t i = 0; i < n; ++i) {
      const std::string_view s = r.read_string_view(what.c_str());
      if (r.failed()) return false;
      out.packed.append(s);
      out.string_ends.push_back(out.packed.size());
    }
    out.packed.shrink_to_fit();
  } else {
    const size_t bytes = static_cast<size_t>(n) * scalar_size(et);
    out.packed.resize(bytes);
    if (!r.read_bytes(out.packed.data(), bytes, what.c_str())) return false;
    if (et == GgufType::kBool) {
      for (size_t i = 0; i < bytes; ++i) {
        const auto b = static_cast<uint8_t>(out.packed[i]);
        if (b > 1) {
          r.fail(ErrorCode::kFormat, "bad bool value " + std::to_string(b) + " in " + what);
          return false;
        }
      }
    }
  }
  return true;
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "u8";
    case GgufType::kInt8: return "i8";
    case GgufType::kUint16: return "u16";
    case GgufType::kInt16: return "i16";
    case GgufType::kUint32: return "u32";
    case GgufType::kInt32: return "i32";
    case GgufType::kFloat32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "u64";
    case GgufType::kInt64: return "i64";
    case GgufType::kFloat64: return "f64";
  }
  return "?";
}

// ---- GgufValue ----

#define EDGELLM_GGUF_CTOR(fn, ctype, gtype) \
  GgufValue GgufValue::fn(ctype v) {        \
    GgufValue out;                          \
    out.type = GgufType::gtype;             \
    out.scalar = v;                         \
    return out;                             \
  }
EDGELLM_GGUF_CTOR(u8, uint8_t, kUint8)
EDGELLM_GGUF_CTOR(i8, int8_t, kInt8)
EDGELLM_GGUF_CTOR(u16, uint16_t, kUint16)
EDGELLM_GGUF_CTOR(i16, int16_t, kInt16)
EDGELLM_GGUF_CTOR(u32, uint32_t, kUint32)
EDGELLM_GGUF_CTOR(i32, int32_t, kInt32)
EDGELLM_GGUF_CTOR(u64, uint64_t, kUint64)
EDGELLM_GGUF_CTOR(i64, int64_t, kInt64)
EDGELLM_GGUF_CTOR(f32, float, kFloat32)
EDGELLM_GGUF_CTOR(f64, double, kFloat64)
EDGELLM_GGUF_CTOR(boolean, bool, kBool)
#undef EDGELLM_GGUF_CTOR

GgufValue GgufValue::string(std::string v) {
  GgufValue out;
  out.type = GgufType::kString;
  out.scalar = std::move(v);
  return out;
}

GgufValue GgufValue::array(GgufType elem_type, std::vector<GgufValue> elems) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = elem_type;
  if (elem_type == GgufType::kArray) {
    out.elems = std::move(elems);
    return out;
  }
  for (const GgufValue& e : elems) {
    EDGELLM_CHECK(e.type == elem_type);  // a writer's array holds elements of its element type
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            out.packed.append(x);
            out.string_ends.push_back(out.packed.size());
          } else if constexpr (std::is_same_v<T, bool>) {
            out.packed.push_back(x ? 1 : 0);
          } else {
            out.packed.append(reinterpret_cast<const char*>(&x), sizeof x);
          }
        },
        e.scalar);
  }
  return out;
}

GgufValue GgufValue::string_array(const std::vector<std::string>& v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = GgufType::kString;
  out.string_ends.reserve(v.size());
  for (const std::string& s : v) {
    out.packed.append(s);
    out.string_ends.push_back(out.packed.size());
  }
  return out;
}

GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = GgufType::kInt32;
  out.packed.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  return out;
}

GgufValue GgufValue::f32_array(const std::vector<float>& v) {
  GgufValue out;
  out.type = GgufType::kArray;
  out.elem_type = GgufType::kFloat32;
  out.packed.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return out;
}

size_t GgufValue::array_size() const {
  if (type != GgufType::kArray) return 0;
  if (elem_type == GgufType::kArray) return elems.size();
  if (elem_type == GgufType::kString) return string_ends.size();
  return packed.size() / scalar_size(elem_type);
}

std::string_view GgufValue::string_element(size_t i) const {
  EDGELLM_CHECK(type == GgufType::kArray && elem_type == GgufType::kString && i < string_ends.size());
  const size_t begin = i == 0 ? 0 : static_cast<size_t>(string_ends[i - 1]);
  return std::string_view(packed).substr(begin, static_cast<size_t>(string_ends[i]) - begin);
}

GgufValue GgufValue::element(size_t i) const {
  EDGELLM_CHECK(type == GgufType::kArray && i < array_size());
  if (elem_type == GgufType::kArray) return elems[i];
  if (elem_type == GgufType::kString) return string(std::string(string_element(i)));
  const char* p = packed.data() + i * scalar_size(elem_type);
  const auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return v;
  };
  switch (elem_type) {
    case GgufType::kUint8: return u8(load(uint8_t{}));
    case GgufType::kInt8: return i8(load(int8_t{}));
    case GgufType::kUint16: return u16(load(uint16_t{}));
    case GgufType::kInt16: return i16(load(int16_t{}));
    case GgufType::kUint32: return u32(load(uint32_t{}));
    case GgufType::kInt32: return i32(load(int32_t{}));
    case GgufType::kFloat32: return f32(load(float{}));
    case GgufType::kBool: return boolean(*p != 0);
    case GgufType::kUint64: return u64(load(uint64_t{}));
    case GgufType::kInt64: return i64(load(int64_t{}));
    case GgufType::kFloat64: return f64(load(double{}));
    default: break;
  }
  return {};
}

std::optional<int64_t> GgufValue::as_int() const {
  switch (type) {
    case GgufType::kUint8: return std::get<uint8_t>(scalar);
    case GgufType::kInt8: return std::get<int8_t>(scalar);
    case GgufType::kUint16: return std::get<uint16_t>(scalar);
    case GgufType::kInt16: return std::get<int16_t>(scalar);
    case GgufType::kUint32: return std::get<uint32_t>(scalar);
    case GgufType::kInt32: return std::get<int32_t>(scalar);
    case GgufType::kBool: return std::get<bool>(scalar) ? 1 : 0;
    case GgufType::kInt64: return std::get<int64_t>(scalar);
    case GgufType::kUint64: {
      const uint64_t v = std::get<uint64_t>(scalar);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(v);
    }
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::as_float() const {
  if (type == GgufType::kFloat32) return std::get<float>(scalar);
  if (type == GgufType::kFloat64) return std::get<double>(scalar);
  if (type == GgufType::kBool) return std::nullopt;
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> GgufValue::as_bool() const {
  if (type == GgufType::kBool) return std::get<bool>(scalar);
  return std::nullopt;
}

const std::string* GgufValue::as_string() const {
  return type == GgufType::kString ? &std::get<std::string>(scalar) : nullptr;
}

std::string GgufValue::to_display_string(size_t max_elems) const {
  if (type == GgufType::kArray) {
    const size_t n = array_size();
    std::string s = std::string("[") + gguf_type_name(elem_type) + " x " + std::to_string(n) + "] [";
    for (size_t i = 0; i < n && i < max_elems; ++i) {
      if (i) s += ", ";
      s += element(i).to_display_string(max_elems);
    }
    if (n > max_elems) s += ", ...";
    return s + "]";
  }
  if (const auto* str = as_string()) {
    std::string s = "\"";
    size_t shown = 0;
    for (char c : *str) {
      if (shown++ >= 120) {
        s += "...";
        break;
      }
      if (c == '\n') s += "\\n";
      else if (c == '"') s += "\\\"";
      else s += c;
    }
    return s + "\"";
  }
  if (auto b = as_bool()) return *b ? "true" : "false";
  if (type == GgufType::kFloat32 || type == GgufType::kFloat64) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.9g", *as_float());
    return buf;
  }
  if (type == GgufType::kUint64) return std::to_string(std::get<uint64_t>(scalar));
  if (auto i = as_int()) return std::to_string(*i);
  return "?";
}

// ---- GgufFile ----

Expected<GgufFile> GgufFile::open(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(path));
  if (has_encrypted_model_magic(mapped.data(), mapped.size())) {
    return make_error(ErrorCode::kInvalidArgument, path + ": " + kEncryptedModelNeedsKey);
  }
  return from_mapping(std::move(mapped));
}

Expected<GgufFile> GgufFile::from_mapping(MappedFile mapped) {
  const std::string path = mapped.path();
  GgufFile g;
  g.file_ = std::move(mapped);
  Reader r(g.file_.data(), g.file_.size(), g.file_.path());

  const uint32_t magic = r.read<uint32_t>("magic");
  if (r.failed()) return r.error();
  if (magic != kGgufMagic) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), ": not a GGUF file (magic 0x%08x, expected 0x%08x \"GGUF\")", magic, kGgufMagic);
    return make_error(ErrorCode::kFormat, path + buf);
  }
  g.version_ = r.read<uint32_t>("version");
  if (r.failed()) return r.error();
  if (g.version_ != 2 && g.version_ != 3) {
    return make_error(ErrorCode::kUnsupported,
                      path + ": unsupported GGUF version " + std::to_string(g.version_) + " (expected 2 or 3)");
  }
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  if (r.failed()) return r.error();
  // Each KV needs at least 12 bytes, each tensor info at least 24: bound counts by the file size.
  if (n_kv > g.file_.size() / 12 || n_tensors > g.file_.size() / 24) {
    return make_error(ErrorCode::kFormat, path + ": header claims " + std::to_string(n_kv) + " metadata keys and " +
                                              std::to_string(n_tensors) + " tensors, more than a " +
                                              std::to_string(g.file_.size()) + "-byte file can hold");
  }

  g.metadata_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const size_t key_offset = r.offset();
    std::string key = r.read_string("metadata key");
    const uint32_t type = r.read<uint32_t>("metadata value type");
    if (r.failed()) return r.error();
    if (!is_valid_gguf_type(type)) {
      return make_error(ErrorCode::kFormat, path + ": key '" + key + "' at offset " + std::to_string(key_offset) +
                                                ": unknown value type " + std::to_string(type));
    }
    GgufValue value;
    if (!read_value(r, static_cast<GgufType>(type), value, key, 0)) return r.error();
    if (g.metadata_index_.count(key)) {
      return make_error(ErrorCode::kFormat, path + ": duplicate metadata key '" + key + "'");
    }
    g.metadata_index_.emplace(key, g.metadata_.size());
    g.metadata_.emplace_back(std::move(key), std::move(value));
  }

  if (const GgufValue* align = g.find("general.alignment")) {
    const auto a = align->as_int();
    if (!a || align->type != GgufType::kUint32 || *a <= 0 || (*a & (*a - 1)) != 0) {
      return make_error(ErrorCode::kFormat, path + ": key 'general.alignment' must be a power-of-two u32, got " +
                                                align->to_display_string());
    }
    g.alignment_ = static_cast<size_t>(*a);
  }

  g.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo info;
    info.name = r.read_string("tensor name");
    const uint32_t n_dims = r.read<uint32_t>("tensor dimension count");
    if (r.failed()) return r.error();
    if (n_dims == 0 || n_dims > kMaxDims) {
      return make_error(ErrorCode::kFormat, path + ": tensor '" + info.name + "': " + std::to_string(n_dims) +
                                                " dimensions (expected 1.." + std::to_string(kMaxDims) + ")");
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = r.read<uint64_t>("tensor dimension");
      if (r.failed()) return r.error();
      if (ne == 0 || ne > (uint64_t{1} << 40) || n_elements > (uint64_t{1} << 50) / ne) {
        return make_error(ErrorCode::kFormat, path + ": tensor '" + info.name + "': bad dimension " +
                                                  std::to_string(ne) + " at index " + std::to_string(d));
      }
      n_elements *= ne;
      info.ne.push_back(static_cast<int64_t>(ne));
    }
    const uint32_t type = r.read<uint32_t>("tensor type");
    info.offset = r.read<uint64_t>("tensor offset");
    if (r.failed()) return r.error();
    const auto traits = dtype_traits(type);
    if (!traits) {
      return make_error(ErrorCode::kUnsupported,
                        path + ": tensor '" + info.name + "': unknown tensor type " + std::to_string(type));
    }
    info.type = static_cast<DType>(type);
    if (info.ne[0] % traits->block_size != 0) {
      return make_error(ErrorCode::kFormat, path + ": tensor '" + info.name + "': row length " +
                                                std::to_string(info.ne[0]) + " is not a multiple of the " +
                                                traits->name + " block size " + std::to_string(traits->block_size));
    }
    info.size_bytes = static_cast<size_t>(n_elements / traits->block_size) * traits->block_bytes;
    if (g.tensor_index_.count(info.name)) {
      return make_error(ErrorCode::kFormat, path + ": duplicate tensor name '" + info.name + "'");
    }
    g.tensor_index_.emplace(info.name, g.tensors_.size());
    g.tensors_.push_back(std::move(info));
  }

  const size_t header_end = r.offset();
  g.data_offset_ = (header_end + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  const size_t data_size = g.file_.size() >= g.data_offset_ ? g.file_.size() - g.data_offset_ : 0;
  if (n_tensors > 0 && g.file_.size() < g.data_offset_) {
    return make_error(ErrorCode::kFormat, path + ": truncated file: data section starts at offset " +
                                              std::to_string(g.data_offset_) + " but the file has " +
                                              std::to_string(g.file_.size()) + " bytes");
  }
  for (const auto& t : g.tensors_) {
    if (t.offset % g.alignment_ != 0) {
      return make_error(ErrorCode::kFormat, path + ": tensor '" + t.name + "': data offset " + std::to_string(t.offset) +
                                                " is not a multiple of the alignment " + std::to_string(g.alignment_));
    }
    if (t.offset > data_size || t.size_bytes > data_size - t.offset) {
      return make_error(ErrorCode::kFormat,
                        path + ": tensor '" + t.name + "': data [" + std::to_string(t.offset) + ", " +
                            std::to_string(t.offset + t.size_bytes) + ") lies past the end of the data section (" +
                            std::to_string(data_size) + " bytes): file truncated?");
    }
  }
  return g;
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

namespace {
Error missing_key(const std::string& path, std::string_view key) {
  return make_error(ErrorCode::kNotFound, path + ": missing metadata key '" + std::string(key) + "'");
}
Error wrong_type(const std::string& path, std::string_view key, const char* expected, const GgufValue& got) {
  std::string got_name = gguf_type_name(got.type);
  if (got.is_array()) got_name += std::string(" of ") + gguf_type_name(got.elem_type);
  return make_error(ErrorCode::kFormat, path + ": metadata key '" + std::string(key) + "': expected " + expected +
                                            ", got " + got_name);
}
}  // namespace

Expected<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  auto i = v->as_int();
  if (!i || v->type == GgufType::kBool) return wrong_type(path(), key, "an integer", *v);
  return *i;
}

Expected<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  auto f = v->as_float();
  if (!f) return wrong_type(path(), key, "a number", *v);
  return *f;
}

Expected<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  auto b = v->as_bool();
  if (!b) return wrong_type(path(), key, "a bool", *v);
  return *b;
}

Expected<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  const std::string* s = v->as_string();
  if (!s) return wrong_type(path(), key, "a string", *v);
  return *s;
}

Expected<const GgufValue*> GgufFile::get_string_array_value(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  if (!v->is_array() || v->elem_type != GgufType::kString) return wrong_type(path(), key, "an array of strings", *v);
  return v;
}

Expected<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
  EDGELLM_ASSIGN_OR_RETURN(const GgufValue* v, get_string_array_value(key));
  std::vector<std::string> out;
  out.reserve(v->array_size());
  for (size_t i = 0; i < v->array_size(); ++i) out.emplace_back(v->string_element(i));
  return out;
}

Expected<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  if (!v->is_array()) return wrong_type(path(), key, "an array of numbers", *v);
  std::vector<double> out;
  out.reserve(v->array_size());
  for (size_t i = 0; i < v->array_size(); ++i) {
    auto f = v->element(i).as_float();
    if (!f) return wrong_type(path(), key, "an array of numbers", *v);
    out.push_back(*f);
  }
  return out;
}

Expected<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return missing_key(path(), key);
  if (!v->is_array()) return wrong_type(path(), key, "an array of integers", *v);
  if (v->elem_type == GgufType::kBool) return wrong_type(path(), key, "an array of integers", *v);
  std::vector<int64_t> out;
  out.reserve(v->array_size());
  for (size_t k = 0; k < v->array_size(); ++k) {
    auto i = v->element(k).as_int();
    if (!i) return wrong_type(path(), key, "an array of integers", *v);
    out.push_back(*i);
  }
  return out;
}

Expected<int64_t> GgufFile::get_int_or(std::string_view key, int64_t fallback) const {
  return find(key) ? get_int(key) : Expected<int64_t>(fallback);
}
Expected<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : Expected<double>(fallback);
}
Expected<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  return find(key) ? get_bool(key) : Expected<bool>(fallback);
}
Expected<std::string> GgufFile::get_string_or(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : Expected<std::string>(std::move(fallback));
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

TensorRef GgufFile::tensor_ref(const GgufTensorInfo& info) const {
  TensorRef ref;
  ref.name = info.name;
  ref.type = info.type;
  ref.ne = info.ne;
  ref.data = file_.data() + data_offset_ + info.offset;
  ref.size_bytes = info.size_bytes;
  return ref;
}

// ---- GgufWriter ----

GgufWriter::GgufWriter(size_t alignment) : alignment_(alignment) {}

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : metadata_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

bool GgufWriter::has(const std::string& key) const {
  for (const auto& kv : metadata_) {
    if (kv.first == key) return true;
  }
  return false;
}

namespace {
Status check_tensor_shape(const std::string& name, DType type, const std::vector<int64_t>& ne) {
  if (ne.empty() || ne.size() > kMaxDims) {
    return make_error(ErrorCode::kInvalidArgument, "tensor '" + name + "': " + std::to_string(ne.size()) + " dimensions");
  }
  for (int64_t d : ne) {
    if (d <= 0) return make_error(ErrorCode::kInvalidArgument, "tensor '" + name + "': bad shape " + shape_string(ne));
  }
  if (ne[0] % dtype_traits(type).block_size != 0) {
    return make_error(ErrorCode::kInvalidArgument, "tensor '" + name + "': row length " + std::to_string(ne[0]) +
                                                       " is not a multiple of the " + dtype_name(type) + " block size");
  }
  return {};
}

int64_t n_elements_of(const std::vector<int64_t>& ne) {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}
}  // namespace

Status GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, const void* data,
                              size_t size_bytes) {
  EDGELLM_TRY(check_tensor_shape(name, type, ne));
  const size_t expected = dtype_row_bytes(type, n_elements_of(ne));
  if (size_bytes != expected) {
    return make_error(ErrorCode::kInvalidArgument, "tensor '" + name + "': " + std::to_string(size_bytes) +
                                                       " bytes, expected " + std::to_string(expected) + " for " +
                                                       dtype_name(type) + " " + shape_string(ne));
  }
  const auto* p = static_cast<const uint8_t*>(data);
  auto bytes = std::make_shared<const std::vector<uint8_t>>(p, p + size_bytes);
  tensors_.push_back(PendingTensor{name, type, std::move(ne), size_bytes, std::move(bytes), nullptr});
  return {};
}

Status GgufWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne, TensorProducer producer) {
  EDGELLM_TRY(check_tensor_shape(name, type, ne));
  const size_t expected = dtype_row_bytes(type, n_elements_of(ne));
  tensors_.push_back(PendingTensor{name, type, std::move(ne), expected, nullptr, std::move(producer)});
  return {};
}

namespace {

// Buffered writer over a file descriptor; the first failure sticks and is reported with errno.
class FileSink {
 public:
  explicit FileSink(int fd) : fd_(fd) { buffer_.reserve(1 << 20); }

  void write(const void* data, size_t n) {
    if (!ok_) return;
    const auto* p = static_cast<const uint8_t*>(data);
    if (buffer_.size() + n > buffer_.capacity()) flush();
    if (n >= buffer_.capacity()) {
      write_all(p, n);
      return;
    }
    buffer_.insert(buffer_.end(), p, p + n);
  }
  template <class T>
  void put(T v) {
    write(&v, sizeof(v));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    uint64_t need = (alignment - position() % alignment) % alignment;
    while (need > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(need, sizeof(kZeros)));
      write(kZeros, n);
      need -= n;
    }
  }
  uint64_t position() const { return written_ + buffer_.size(); }
  void flush() {
    if (!buffer_.empty()) write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  // Everything written after this call is hashed (the data section).
  void start_hashing() {
    flush();
    hash_ = std::make_unique<Sha256>();
  }
  std::string finish_hash() { return hash_ ? hash_->hex_digest() : std::string(); }

 private:
  void write_all(const uint8_t* p, size_t n) {
    if (hash_ && ok_) hash_->update(p, n);
    while (ok_ && n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        ok_ = false;
        error_ = std::strerror(errno);
        return;
      }
      p += w;
      n -= static_cast<size_t>(w);
      written_ += static_cast<uint64_t>(w);
    }
  }
  int fd_;
  std::vector<uint8_t> buffer_;
  std::unique_ptr<Sha256> hash_;
  uint64_t written_ = 0;
  bool ok_ = true;
  std::string error_;
};

void write_value(FileSink& out, const GgufValue& v) {
  if (v.type == GgufType::kArray) {
    out.put<uint32_t>(static_cast<uint32_t>(v.elem_type));
    out.put<uint64_t>(v.array_size());
    if (v.elem_type == GgufType::kArray) {
      for (const auto& e : v.elems) write_value(out, e);
    } else if (v.elem_type == GgufType::kString) {
      for (size_t i = 0; i < v.array_size(); ++i) {
        const std::string_view s = v.string_element(i);
        out.put<uint64_t>(s.size());
        out.write(s.data(), s.size());
      }
    } else {
      out.write(v.packed.data(), v.packed.size());  // little-endian, as GGUF stores numbers
    }
    return;
  }
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          out.put_string(x);
        } else if constexpr (std::is_same_v<T, bool>) {
          out.put<uint8_t>(x ? 1 : 0);
        } else {
          out.put<T>(x);
        }
      },
      v.scalar);
}

}  // namespace

namespace {

// The output file while it is being written. On Linux it is an unnamed O_TMPFILE in the target's
// directory, so an interrupted run (Ctrl-C, kill, crash) leaves nothing behind; it gets a name only
// when complete (linkat + rename). Elsewhere, or where the filesystem lacks O_TMPFILE, a named
// "<path>.tmp.<pid>" file is used and removed on failure.
class PendingFile {
 public:
  static Expected<PendingFile> create(const std::string& path) {
    PendingFile f;
    f.path_ = path;
    std::string dir = ".";
    const auto slash = path.rfind('/');
    if (slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
#ifdef O_TMPFILE
    f.fd_ = ::open(dir.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
#endif
    if (f.fd_ < 0) {
      f.tmp_path_ = path + ".tmp." + std::to_string(::getpid());
      f.fd_ = ::open(f.tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (f.fd_ < 0) return make_error(ErrorCode::kIo, f.tmp_path_ + ": cannot create: " + std::strerror(errno));
    }
    return f;
  }
  PendingFile() = default;
  PendingFile(PendingFile&& o) noexcept : path_(std::move(o.path_)), tmp_path_(std::move(o.tmp_path_)), fd_(o.fd_) {
    o.fd_ = -1;
  }
  ~PendingFile() { discard(); }

  int fd() const { return fd_; }

  void discard() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_path_.empty()) ::unlink(tmp_path_.c_str());
    tmp_path_.clear();
  }

  Status commit() {
    if (::fsync(fd_) != 0 && errno != EINVAL) return make_error(ErrorCode::kIo, path_ + ": fsync failed: " + std::strerror(errno));
    if (tmp_path_.empty()) {
      // Give the unnamed file a temporary name, then move it over the target atomically.
      tmp_path_ = path_ + ".tmp." + std::to_string(::getpid());
      const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
      ::unlink(tmp_path_.c_str());
      if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, tmp_path_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        const int err = errno;
        tmp_path_.clear();
        return make_error(ErrorCode::kIo, path_ + ": cannot link the finished file: " + std::strerror(err));
      }
    }
    if (::close(fd_) != 0) {
      fd_ = -1;
      return make_error(ErrorCode::kIo, path_ + ": close failed: " + std::strerror(errno));
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
      return make_error(ErrorCode::kIo, path_ + ": cannot rename the finished file into place: " + std::strerror(errno));
    }
    tmp_path_.clear();
    return {};
  }

 private:
  std::string path_;
  std::string tmp_path_;
  int fd_ = -1;
};

}  // namespace

Status GgufWriter::write(const std::string& path, const ProgressFn& progress) const {
  EDGELLM_ASSIGN_OR_RETURN(PendingFile file, PendingFile::create(path));
  auto fail = [&](const std::string& message) -> Status {
    file.discard();
    return make_error(ErrorCode::kIo, message);
  };

  FileSink out(file.fd());
  out.put<uint32_t>(kGgufMagic);
  out.put<uint32_t>(3);
  out.put<uint64_t>(tensors_.size());
  // general.alignment is written only when it differs from the default, as other writers do.
  const bool write_alignment = alignment_ != 32 && !has("general.alignment");
  out.put<uint64_t>(metadata_.size() + (write_alignment ? 1 : 0));
  uint64_t digest_offset = 0;  // file offset of the content digest's 64 hex characters
  for (const auto& [key, value] : metadata_) {
    out.put_string(key);
    out.put<uint32_t>(static_cast<uint32_t>(value.type));
    if (!digest_key_.empty() && key == digest_key_) digest_offset = out.position() + 8;
    write_value(out, value);
  }
  if (write_alignment) {
    out.put_string("general.alignment");
    out.put<uint32_t>(static_cast<uint32_t>(GgufType::kUint32));
    out.put<uint32_t>(static_cast<uint32_t>(alignment_));
  }
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    out.put_string(t.name);
    out.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) out.put<uint64_t>(static_cast<uint64_t>(d));
    out.put<uint32_t>(static_cast<uint32_t>(t.type));
    out.put<uint64_t>(offset);
    offset += (t.size_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  out.pad_to(alignment_);
  out.start_hashing();

  std::vector<uint8_t> scratch;
  size_t done = 0;
  for (const auto& t : tensors_) {
    const std::vector<uint8_t>* bytes = t.bytes.get();
    if (!bytes) {
      scratch.clear();
      Status st = t.producer(scratch);
      if (!st.ok()) return fail(path + ": tensor '" + t.name + "': " + st.error().message);
      if (scratch.size() != t.size_bytes) {
        return fail(path + ": tensor '" + t.name + "': producer gave " + std::to_string(scratch.size()) +
                    " bytes, expected " + std::to_string(t.size_bytes));
      }
      bytes = &scratch;
    }
    out.write(bytes->data(), bytes->size());
    out.pad_to(alignment_);
    if (!out.ok()) break;
    ++done;
    if (progress) progress(done, tensors_.size(), out.position());
  }
  out.flush();
  if (!out.ok()) return fail(path + ": write failed: " + out.error());
  if (digest_offset != 0) {
    const std::string hex = out.finish_hash();
    if (::pwrite(file.fd(), hex.data(), hex.size(), static_cast<off_t>(digest_offset)) !=
        static_cast<ssize_t>(hex.size())) {
      return fail(path + ": writing the content digest failed: " + std::strerror(errno));
    }
  }
  Status st = file.commit();
  if (!st.ok()) file.discard();
  return st;
}

void GgufWriter::set_content_digest_key(const std::string& key) {
  digest_key_ = key;
  set_string(key, std::string(64, '0'));  // placeholder, overwritten in place once the data is written
}

Expected<std::string> gguf_content_digest(const GgufFile& gguf) {
  // SHA-256 of the data section as the writer hashed it: from data_offset to the end of the file.
  const size_t begin = gguf.data_offset();
  if (begin > gguf.file_size()) return make_error(ErrorCode::kFormat, gguf.path() + ": no data section");
  Sha256 h;
  h.update(gguf.raw_data() + begin, gguf.file_size() - begin);
  return h.hex_digest();
}

}  // namespace edgellm
