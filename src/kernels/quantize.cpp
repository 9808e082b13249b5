#include "kernels/quantize.h"

#include <string>

#include "kernels/quant_edgellm.h"
#include "kernels/ref/quant_ref.h"

namespace edgellm {
namespace {

Status check_length(const char* what, DType type, int64_t n) {
  const int64_t block = dtype_traits(type).block_size;
  if (n < 0 || n % block != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      std::string(what) + ": " + std::to_string(n) + " elements is not a multiple of " +
                          dtype_name(type) + "'s block size " + std::to_string(block));
  }
  return {};
}

}  // namespace

bool can_quantize(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kIQ4_NL:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kE4G64:  // edgellm-only (kernels/quant_edgellm.h)
    case DType::kE4G128:
    case DType::kE4G256:
      return true;
    default:
      return false;
  }
}

bool can_dequantize(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kIQ4_NL:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ8_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kQ8_K:
    case DType::kE4G64:
    case DType::kE4G128:
    case DType::kE4G256:
      return true;
    default:
      return false;
  }
}

Status quantize_row(DType type, const float* src, void* dst, int64_t n) {
  if (!can_quantize(type)) {
    return make_error(ErrorCode::kUnsupported,
                      std::string("quantize_row: no quantizer for type ") + dtype_name(type));
  }
  EDGELLM_TRY(check_length("quantize_row", type, n));
  if (dtype_is_edgellm_only(type)) {
    ref::quantize_row_e4(type, src, dst, n);
    return {};
  }
  ref::quantize_row(type, src, dst, n);
  return {};
}

Status dequantize_row(DType type, const void* src, float* dst, int64_t n) {
  if (!can_dequantize(type)) {
    return make_error(ErrorCode::kUnsupported,
                      std::string("dequantize_row: no dequantizer for type ") + dtype_name(type));
  }
  EDGELLM_TRY(check_length("dequantize_row", type, n));
  if (dtype_is_edgellm_only(type)) {
    ref::dequantize_row_e4(type, src, dst, n);
    return {};
  }
  ref::dequantize_row(type, src, dst, n);
  return {};
}

}  // namespace edgellm
