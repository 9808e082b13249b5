#include "format/safetensors.h"

#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "format/hf_dir.h"

namespace edgellm {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit is 100 MB

std::optional<DType> safetensors_dtype(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  if (s == "F64") return DType::kF64;
  if (s == "I8") return DType::kI8;
  if (s == "I16") return DType::kI16;
  if (s == "I32") return DType::kI32;
  if (s == "I64") return DType::kI64;
  return std::nullopt;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Status Safetensors::add_file(const std::string& path) {
  EDGELLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  if (file.size() < 8) {
    return make_error(ErrorCode::kFormat, path + ": truncated safetensors file (" + std::to_string(file.size()) +
                                              " bytes, the header length alone needs 8)");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > file.size() - 8) {
    return make_error(ErrorCode::kFormat, path + ": bad safetensors header length " + std::to_string(header_len) +
                                              " (file has " + std::to_string(file.size()) + " bytes)");
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.data() + 8, file.data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::kFormat, path + ": malformed safetensors JSON header: " + e.what());
  }
  if (!header.is_object()) return make_error(ErrorCode::kFormat, path + ": safetensors header is not a JSON object");

  const uint8_t* data_start = file.data() + 8 + header_len;
  const size_t data_size = file.size() - 8 - static_cast<size_t>(header_len);
  const size_t file_index = files_.size();

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const auto& entry = it.value();
    if (name == "__metadata__") {
      if (file_index == 0 && entry.is_object()) {
        for (auto m = entry.begin(); m != entry.end(); ++m) {
          if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
        !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      return make_error(ErrorCode::kFormat, where + ": entry needs \"dtype\" (string), \"shape\" (array) and "
                                                    "\"data_offsets\" ([begin, end])");
    }
    SafetensorsTensor t;
    t.dtype = entry["dtype"].get<std::string>();
    t.file_index = file_index;
    uint64_t n_elements = 1;
    for (const auto& d : entry["shape"]) {
      if (!d.is_number_unsigned()) return make_error(ErrorCode::kFormat, where + ": shape has a non-integer entry");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > (uint64_t{1} << 40) || (dim != 0 && n_elements > (uint64_t{1} << 50) / dim)) {
        return make_error(ErrorCode::kFormat, where + ": shape dimension " + std::to_string(dim) + " is too large");
      }
      n_elements *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offs = entry["data_offsets"];
    if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
      return make_error(ErrorCode::kFormat, where + ": data_offsets must be non-negative integers");
    }
    const uint64_t begin = offs[0].get<uint64_t>();
    const uint64_t end = offs[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return make_error(ErrorCode::kFormat, where + ": data_offsets [" + std::to_string(begin) + ", " +
                                                std::to_string(end) + ") outside the " + std::to_string(data_size) +
                                                "-byte data section: file truncated?");
    }
    const auto dtype = safetensors_dtype(t.dtype);
    t.ref.name = name;
    t.ref.type = dtype.value_or(DType::kF32);
    t.ref.ne.assign(t.shape.rbegin(), t.shape.rend());
    if (t.ref.ne.empty()) t.ref.ne.push_back(1);
    t.ref.data = data_start + begin;
    t.ref.size_bytes = static_cast<size_t>(end - begin);
    if (dtype) {
      const uint64_t expected = n_elements * dtype_traits(*dtype).block_bytes;
      if (expected != end - begin) {
        return make_error(ErrorCode::kFormat, where + ": " + std::to_string(end - begin) + " bytes of data, expected " +
                                                  std::to_string(expected) + " for " + t.dtype + " shape " +
                                                  shape_string(t.shape));
      }
    }
    if (index_.count(name)) return make_error(ErrorCode::kFormat, where + ": tensor appears twice");
    index_.emplace(name, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  files_.push_back(std::move(file));
  file_paths_.push_back(path);
  return {};
}

Expected<Safetensors> Safetensors::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string target = path;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      target = (dir / "model.safetensors.index.json").string();
    } else if (fs::exists(dir / "model.safetensors", ec)) {
      target = (dir / "model.safetensors").string();
    } else {
      // A single *.safetensors file of another name (e.g. adapter_model.safetensors).
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".safetensors") found.push_back(e.path().string());
      }
      if (found.size() != 1) {
        return make_error(ErrorCode::kNotFound, path + ": no model.safetensors or model.safetensors.index.json");
      }
      target = found[0];
    }
  }

  Safetensors st;
  if (ends_with(target, ".json")) {
    EDGELLM_ASSIGN_OR_RETURN(nlohmann::json index, read_json_file(target));
    if (!index.contains("weight_map") || !index["weight_map"].is_object()) {
      return make_error(ErrorCode::kFormat, target + ": missing \"weight_map\" object");
    }
    const fs::path dir = fs::path(target).parent_path();
    std::vector<std::string> shards;
    std::set<std::string> seen;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string()) {
        return make_error(ErrorCode::kFormat, target + ": weight_map entry '" + it.key() + "' is not a file name");
      }
      const std::string shard = it.value().get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        return make_error(ErrorCode::kFormat, target + ": shard name '" + shard + "' must be a plain file name");
      }
      if (seen.insert(shard).second) shards.push_back(shard);
    }
    for (const auto& shard : shards) EDGELLM_TRY(st.add_file((dir / shard).string()));
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      const SafetensorsTensor* t = st.find(it.key());
      if (!t) {
        return make_error(ErrorCode::kFormat, target + ": tensor '" + it.key() + "' is listed in the index but not in " +
                                                  it.value().get<std::string>());
      }
    }
  } else {
    EDGELLM_TRY(st.add_file(target));
  }
  return st;
}

const SafetensorsTensor* Safetensors::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace edgellm
