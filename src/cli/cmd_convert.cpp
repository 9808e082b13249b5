// edgellm convert HF_DIR -o OUT.gguf --quant TYPE: Hugging Face model -> GGUF.
#include <unistd.h>

#include <cstdio>

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
    ConvertOptions options = a->options;
    options.search = !a->rtn;
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    int last_decile = -1;
    if (!a->quiet) options.progress = [&](const ConvertProgress& p) { show_convert_progress("convert", p, tty, last_decile); };
    const Status st = convert_hf_to_gguf(a->input, a->output, options);
    if (!st.ok()) {
      std::fprintf(stderr, "edgellm convert: %s\n", st.error().message.c_str());
      exit_code = 1;
      return;
    }
    if (!a->quiet) std::fprintf(stderr, "convert: wrote %s (%s)\n", a->output.c_str(), options.quant.c_str());
  });
}

}  // namespace edgellm::cli
