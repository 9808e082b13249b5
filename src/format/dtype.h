// Tensor element types, numbered as ggml numbers them (the GGUF tensor-info type field).
// Block layouts follow ggml's definitions bit for bit (ggml/src/ggml-common.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace edgellm {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ4_NL = 20,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  // edgellm-only 4-bit types with larger groups (kernels/quant_edgellm.h), numbered far from ggml's so
  // they never collide with a future ggml type. Other GGUF readers reject them by number.
  kE4G64 = 1000,
  kE4G128 = 1001,
  kE4G256 = 1002,
};

struct DTypeTraits {
  const char* name;      // ggml's name: "f32", "q4_0", ...
  int64_t block_size;    // elements per block (1 for plain types)
  size_t block_bytes;    // bytes per block
  bool quantized;
};

// Traits of a known type, or nullopt for a number edgellm does not know.
std::optional<DTypeTraits> dtype_traits(uint32_t type_id);
const DTypeTraits& dtype_traits(DType type);  // for valid DType values only

inline const char* dtype_name(DType type) { return dtype_traits(type).name; }
std::optional<DType> dtype_from_name(std::string_view name);  // "q8_0" -> kQ8_0

// Bytes of `n_elements` elements; n_elements must be a multiple of the block size.
size_t dtype_row_bytes(DType type, int64_t n_elements);

// True for the types only edgellm reads (kE4G64 ...); files using them list them in the GGUF key
// `edgellm.quant.edgellm_only_types`.
bool dtype_is_edgellm_only(DType type);

// Types the forward pass can use as weights (dequantize / matmul kernels exist).
bool dtype_is_runnable(DType type);

}  // namespace edgellm
