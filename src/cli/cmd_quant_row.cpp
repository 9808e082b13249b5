// edgellm quant-row (hidden, for developers and tests/python/test_quant_ggml.py): runs the reference
// quantizer or dequantizer of kernels/quantize.h on a raw file, so Python can compare the bytes with
// the gguf package's numpy implementation.
//   edgellm quant-row --type q4_0 --in f32.bin --out blocks.bin           f32 -> blocks
//   edgellm quant-row --type q4_0 --in blocks.bin --out f32.bin --dequant  blocks -> f32
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "format/dtype.h"
#include "kernels/quantize.h"
#include "util/mapped_file.h"

namespace edgellm::cli {
namespace {

struct QuantRowOptions {
  std::string type;
  std::string in_path;
  std::string out_path;
  bool dequant = false;
};

bool write_all(const std::string& path, const void* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

int run_quant_row(const QuantRowOptions& opt) {
  const auto type = dtype_from_name(opt.type);
  if (!type) {
    std::fprintf(stderr, "edgellm quant-row: unknown type '%s'\n", opt.type.c_str());
    return 1;
  }
  auto file = MappedFile::open(opt.in_path);
  if (!file.ok()) {
    std::fprintf(stderr, "edgellm quant-row: %s\n", file.error().message.c_str());
    return 1;
  }
  const DTypeTraits& traits = dtype_traits(*type);
  const size_t in_bytes = file->size();
  std::vector<uint8_t> out;
  Status status;
  if (opt.dequant) {
    if (in_bytes % traits.block_bytes != 0) {
      std::fprintf(stderr, "edgellm quant-row: %s: %zu bytes is not a multiple of %s's block size %zu bytes\n",
                   opt.in_path.c_str(), in_bytes, traits.name, traits.block_bytes);
      return 1;
    }
    const int64_t n = static_cast<int64_t>(in_bytes / traits.block_bytes) * traits.block_size;
    out.resize(static_cast<size_t>(n) * sizeof(float));
    status = dequantize_row(*type, file->data(), reinterpret_cast<float*>(out.data()), n);
  } else {
    if (in_bytes % sizeof(float) != 0) {
      std::fprintf(stderr, "edgellm quant-row: %s: %zu bytes is not a whole number of f32 values\n",
                   opt.in_path.c_str(), in_bytes);
      return 1;
    }
    const int64_t n = static_cast<int64_t>(in_bytes / sizeof(float));
    std::vector<float> src(static_cast<size_t>(n));  // aligned copy: the mapping has no alignment promise
    if (n > 0) std::memcpy(src.data(), file->data(), in_bytes);
    if (n % traits.block_size != 0) {
      std::fprintf(stderr, "edgellm quant-row: %s: %lld values is not a multiple of %s's block size %lld\n",
                   opt.in_path.c_str(), static_cast<long long>(n), traits.name,
                   static_cast<long long>(traits.block_size));
      return 1;
    }
    out.resize(dtype_row_bytes(*type, n));
    status = quantize_row(*type, src.data(), out.data(), n);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "edgellm quant-row: %s: %s\n", opt.in_path.c_str(), status.error().message.c_str());
    return 1;
  }
  if (!write_all(opt.out_path, out.data(), out.size())) {
    std::fprintf(stderr, "edgellm quant-row: cannot write %s\n", opt.out_path.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void add_quant_row_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<QuantRowOptions>();
  auto* cmd = app.add_subcommand("quant-row", "Developer tool: reference (de)quantization of a raw file");
  cmd->group("");  // hidden from --help
  cmd->add_option("--type", opt->type, "Block type: f32, f16, bf16, q8_0, q4_0, iq4_nl, q4_1, q5_0, q5_1 (dequant: also K-quants)")
      ->required();
  cmd->add_option("--in", opt->in_path, "Input: raw little-endian f32 values, or blocks with --dequant")->required();
  cmd->add_option("--out", opt->out_path, "Output: blocks, or f32 values with --dequant")->required();
  cmd->add_flag("--dequant", opt->dequant, "Dequantize blocks to f32 instead of quantizing");
  cmd->callback([opt, &exit_code] { exit_code = run_quant_row(*opt); });
}

}  // namespace edgellm::cli
