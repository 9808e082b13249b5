// edgellm convert HF_DIR -o OUT.gguf --quant TYPE: Hugging Face model -> GGUF.
#include "cli/commands.h"
#include "cli/convert_progress.h"
#include "convert/hf_converter.h"

namespace edgellm::cli {

void add_convert_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string input, output;
    ConvertOptions options;
    bool quiet = false, rtn = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("convert", "Convert a Hugging Face model directory to a GGUF file");
  cmd->add_option("hf_dir", a->input, "Hugging Face model directory (config.json, safetensors, tokenizer)")->required();
  cmd->add_option("-o,--output", a->output, "Output .gguf file (written only when complete)")->required();
  add_quantization_options(cmd, a->options, a->quiet, a->rtn);
  cmd->callback([a, &exit_code] {
    exit_code = run_quantizing_command("convert", a->options, a->quiet, a->rtn, a->output,
                                       [&](const ConvertOptions& o) { return convert_hf_to_gguf(a->input, a->output, o); });
  });
}

}  // namespace edgellm::cli
