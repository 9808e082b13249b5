// edgellm lora merge: bake a LoRA adapter into a GGUF model's weights (W += scale * B A), keeping each
// tensor's type (quantized tensors are dequantized, merged and quantized again).
#include <cstdio>
#include <map>

#include "cli/commands.h"
#include "format/gguf.h"
#include "kernels/quantize.h"
#include "model/lora.h"
#include "model/model.h"

namespace edgellm::cli {
namespace {

int run_merge(const std::string& base, const std::string& adapter_path, const std::string& out, float scale) {
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "edgellm lora merge: %s\n", e.message.c_str());
    return 1;
  };
  auto model = Model::load(base);
  if (!model.ok()) return fail(model.error());
  const GgufFile* gguf = (*model)->gguf();
  if (!gguf) return fail(make_error(ErrorCode::kInvalidArgument, base + ": the base model must be a GGUF file"));
  auto adapter = LoraAdapter::load(adapter_path, **model);
  if (!adapter.ok()) return fail(adapter.error());

  // Which GGUF tensor each adapted weight is.
  std::map<std::string, const LoraPair*> by_name;
  for (int r = 0; r < static_cast<int>(TensorRole::kCount); ++r) {
    const auto role = static_cast<TensorRole>(r);
    for (int64_t il = -1; il < (*model)->config().n_layer; ++il) {
      if ((il < 0) == tensor_role_is_per_layer(role)) continue;
      if (const LoraPair* p = (*adapter)->find(role, il)) by_name[*tensor_name(NameScheme::kGguf, role, il)] = p;
    }
  }
  GgufWriter w(gguf->alignment());
  for (const auto& [key, value] : gguf->metadata()) {
    if (key != "general.alignment" && key != "edgellm.content.sha256") w.set(key, value);
  }
  w.set_string("edgellm.lora.merged", adapter_path);
  w.set_content_digest_key("edgellm.content.sha256");
  for (const auto& info : gguf->tensors()) {
    const TensorRef ref = gguf->tensor_ref(info);
    auto it = by_name.find(info.name);
    if (it == by_name.end()) {
      if (!w.add_tensor(info.name, info.type, info.ne, ref.data, ref.size_bytes).ok()) return 1;
      continue;
    }
    const LoraPair* pair = it->second;
    if (!can_quantize(info.type)) {
      return fail(make_error(ErrorCode::kUnsupported, info.name + ": cannot re-quantize type " + dtype_name(info.type)));
    }
    auto st = w.add_tensor(info.name, info.type, info.ne, [ref, pair, scale](std::vector<uint8_t>& bytes) -> Status {
      const int64_t n = ref.n_elements();
      std::vector<float> values(static_cast<size_t>(n));
      EDGELLM_TRY(dequantize_row(ref.type, ref.data, values.data(), n));
      lora_merge_into(*pair, scale, values);
      bytes.resize(ref.size_bytes);
      const size_t row_bytes = ref.row_bytes();
      for (int64_t r = 0; r < ref.n_rows(); ++r) {
        EDGELLM_TRY(quantize_row(ref.type, &values[static_cast<size_t>(r * ref.ne[0])], &bytes[static_cast<size_t>(r) * row_bytes],
                                 ref.ne[0]));
      }
      return {};
    });
    if (!st.ok()) return fail(st.error());
  }
  const Status st = w.write(out);
  if (!st.ok()) return fail(st.error());
  std::printf("merged %zu adapted weights of %s into %s\n", by_name.size(), adapter_path.c_str(), out.c_str());
  return 0;
}

}  // namespace

void add_lora_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string base, adapter, output;
    float scale = 1.0f;
  };
  auto a = std::make_shared<Args>();
  auto* lora = app.add_subcommand("lora", "LoRA adapter tools");
  lora->require_subcommand(1);
  auto* merge = lora->add_subcommand("merge", "Bake a LoRA adapter into a GGUF model (same tensor types)");
  merge->add_option("-m,--model", a->base, "Base model (GGUF)")->required();
  merge->add_option("--lora", a->adapter, "Adapter: PEFT directory or GGUF adapter")->required();
  merge->add_option("-o,--output", a->output, "Output GGUF")->required();
  merge->add_option("--scale", a->scale, "Adapter strength")->capture_default_str();
  merge->callback([a, &exit_code] { exit_code = run_merge(a->base, a->adapter, a->output, a->scale); });
}

}  // namespace edgellm::cli
