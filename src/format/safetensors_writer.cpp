#include "format/safetensors_writer.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

namespace edgellm {

Status SafetensorsWriter::add(const std::string& name, DType type, const std::vector<int64_t>& shape,
                              const void* data, size_t size_bytes) {
  if (type != DType::kF32 && type != DType::kF16 && type != DType::kBF16) {
    return make_error(ErrorCode::kInvalidArgument, "safetensors: tensor '" + name + "': type " + dtype_name(type) +
                                                       " is not supported (f32, f16, bf16)");
  }
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (static_cast<size_t>(n) * dtype_traits(type).block_bytes != size_bytes) {
    return make_error(ErrorCode::kInvalidArgument, "safetensors: tensor '" + name + "': " +
                                                       std::to_string(size_bytes) + " bytes do not match its shape");
  }
  const auto* p = static_cast<const uint8_t*>(data);
  tensors_[name] = Entry{type, shape, std::vector<uint8_t>(p, p + size_bytes)};
  return {};
}

Status SafetensorsWriter::write(const std::string& path) const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, e] : tensors_) {
    const char* dtype = e.type == DType::kF32 ? "F32" : e.type == DType::kF16 ? "F16" : "BF16";
    header[name] = {{"dtype", dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string json = header.dump();
  while ((json.size() + 8) % 8 != 0) json += ' ';  // data starts 8-byte aligned

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return make_error(ErrorCode::kIo, tmp + ": cannot create");
    const uint64_t len = json.size();
    out.write(reinterpret_cast<const char*>(&len), 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    for (const auto& [name, e] : tensors_) {
      out.write(reinterpret_cast<const char*>(e.bytes.data()), static_cast<std::streamsize>(e.bytes.size()));
    }
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return make_error(ErrorCode::kIo, tmp + ": write failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, path + ": cannot rename the finished file into place");
  }
  return {};
}

}  // namespace edgellm
