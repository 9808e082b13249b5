// edgellm synth: write a model with seeded random weights at real dimensions.
#include <cstdio>

#include "cli/commands.h"
#include "model/synthetic.h"

namespace edgellm::cli {

void add_synth_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string preset = "tiny";
    std::string type = "f16";
    std::string output;
    std::string format = "gguf";
    uint64_t seed = 42;
  };
  auto args = std::make_shared<Args>();
  std::string preset_help = "Model dimensions:";
  for (const auto& p : synth_presets()) preset_help += "\n  " + p.name + ": " + p.description;
  auto* cmd = app.add_subcommand("synth", "Write a model with seeded random weights (for benchmarks and tests)");
  cmd->add_option("--preset", args->preset, preset_help)->capture_default_str();
  cmd->add_option("--type", args->type, "Weight type of the matrices: f32, f16, bf16, q8_0, q4_0, iq4_nl (GGUF only)")
      ->capture_default_str();
  cmd->add_option("--format", args->format, "gguf, or hf for a Hugging Face directory (f32 safetensors)")
      ->check(CLI::IsMember({"gguf", "hf"}))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output .gguf file (or directory with --format hf)")->required();
  cmd->callback([args, &exit_code] {
    auto preset = find_synth_preset(args->preset);
    if (!preset.ok()) {
      std::fprintf(stderr, "edgellm synth: %s\n", preset.error().message.c_str());
      exit_code = 1;
      return;
    }
    SynthOptions options;
    options.seed = args->seed;
    const auto type = dtype_from_name(args->type);
    if (!type || !(*type == DType::kF32 || *type == DType::kF16 || *type == DType::kBF16 || *type == DType::kQ8_0 ||
                   *type == DType::kQ4_0 || *type == DType::kIQ4_NL)) {
      std::fprintf(stderr, "edgellm synth: --type '%s' is not one of f32, f16, bf16, q8_0, q4_0, iq4_nl\n",
                   args->type.c_str());
      exit_code = 1;
      return;
    }
    options.weight_type = *type;
    const Status st = args->format == "hf" ? write_synthetic_hf_dir(preset->config, options, args->output)
                                           : write_synthetic_gguf(preset->config, options, args->output);
    if (!st.ok()) {
      std::fprintf(stderr, "edgellm synth: %s\n", st.error().message.c_str());
      exit_code = 1;
      return;
    }
    std::printf("wrote %s (%s, %s, seed %llu)\n", args->output.c_str(), preset->name.c_str(),
                args->format == "hf" ? "f32" : args->type.c_str(), static_cast<unsigned long long>(args->seed));
  });
}

}  // namespace edgellm::cli
