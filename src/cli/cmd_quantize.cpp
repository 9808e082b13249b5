// edgellm quantize IN.gguf -o OUT.gguf --quant TYPE: re-quantize an f32/f16/bf16 GGUF.
#include "cli/commands.h"
#include "cli/convert_progress.h"
#include "convert/gguf_requantizer.h"

namespace edgellm::cli {

void add_quantize_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string input, output;
    ConvertOptions options;
    bool quiet = false, rtn = false;
  };
  auto a = std::make_shared<Args>();
  a->options.quant = "w4a16_g32";
  auto* cmd = app.add_subcommand("quantize", "Re-quantize an f32/f16/bf16 GGUF file (metadata copied)");
  cmd->add_option("input", a->input, "Input .gguf (matrices in f32, f16 or bf16)")->required();
  cmd->add_option("-o,--output", a->output, "Output .gguf file (written only when complete)")->required();
  add_quantization_options(cmd, a->options, a->quiet, a->rtn);
  cmd->callback([a, &exit_code] {
    exit_code = run_quantizing_command("quantize", a->options, a->quiet, a->rtn, a->output,
                                       [&](const ConvertOptions& o) { return requantize_gguf(a->input, a->output, o); });
  });
}

}  // namespace edgellm::cli
