#include "format/dtype.h"

#include <array>
#include <string>

#include "util/check.h"

namespace edgellm {
namespace {

struct Entry {
  uint32_t id;
  DTypeTraits traits;
};

constexpr std::array<Entry, 24> kTypes = {{
    {0, {"f32", 1, 4, false}},
    {1, {"f16", 1, 2, false}},
    {2, {"q4_0", 32, 18, true}},
    {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},
    {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},
    {9, {"q8_1", 32, 36, true}},
    {10, {"q2_K", 256, 84, true}},
    {11, {"q3_K", 256, 110, true}},
    {12, {"q4_K", 256, 144, true}},
    {13, {"q5_K", 256, 176, true}},
    {14, {"q6_K", 256, 210, true}},
    {15, {"q8_K", 256, 292, true}},
    {20, {"iq4_nl", 32, 18, true}},
    {24, {"i8", 1, 1, false}},
    {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},
    {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},
    {30, {"bf16", 1, 2, false}},
    {1000, {"e4_g64", 64, 36, true}},  // fp16 d, fp16 m, 32 bytes of nibbles
    {1001, {"e4_g128", 128, 68, true}},
    {1002, {"e4_g256", 256, 132, true}},
}};

}  // namespace

std::optional<DTypeTraits> dtype_traits(uint32_t type_id) {
  for (const auto& e : kTypes) {
    if (e.id == type_id) return e.traits;
  }
  return std::nullopt;
}

const DTypeTraits& dtype_traits(DType type) {
  for (const auto& e : kTypes) {
    if (e.id == static_cast<uint32_t>(type)) return e.traits;
  }
  EDGELLM_CHECK(false && "unknown DType");
  return kTypes[0].traits;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& e : kTypes) {
    if (name == e.traits.name) return static_cast<DType>(e.id);
  }
  // Accept upper-case spellings too ("Q4_0", "F16").
  std::string lower(name);
  for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  for (const auto& e : kTypes) {
    std::string n(e.traits.name);
    for (auto& c : n) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (lower == n) return static_cast<DType>(e.id);
  }
  return std::nullopt;
}

size_t dtype_row_bytes(DType type, int64_t n_elements) {
  const auto& t = dtype_traits(type);
  EDGELLM_CHECK(n_elements % t.block_size == 0);
  return static_cast<size_t>(n_elements / t.block_size) * t.block_bytes;
}

bool dtype_is_edgellm_only(DType type) {
  return type == DType::kE4G64 || type == DType::kE4G128 || type == DType::kE4G256;
}

bool dtype_is_runnable(DType type) {
  switch (type) {
    case DType::kE4G64:  // reference matmul (kernels/ref/quant_edgellm.cpp)
    case DType::kE4G128:
    case DType::kE4G256:
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kIQ4_NL:
    case DType::kQ4_1:  // the rest: dequantizing kernels (kernels/matmul.h), for llama.cpp-quantized files
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return true;
    default:
      return false;
  }
}

}  // namespace edgellm
