// edgellm convert HF_DIR -o OUT.gguf --quant TYPE: Hugging Face model -> GGUF.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "convert/hf_converter.h"
#include "convert/quant_recipe.h"

namespace edgellm::cli {
namespace {

// A progress bar on a terminal, plain lines (every 10%) otherwise.
void show_progress(const ConvertProgress& p, bool tty, int& last_decile) {
  const double mb = static_cast<double>(p.bytes_written) / 1e6;
  const double rate = p.seconds > 0 ? mb / p.seconds : 0;
  const double frac = p.tensors_total ? static_cast<double>(p.tensors_done) / static_cast<double>(p.tensors_total) : 1;
  const double eta = frac > 0 ? p.seconds * (1 - frac) / frac : 0;
  if (tty) {
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    std::fprintf(stderr, "\r[%.*s%.*s] %zu/%zu tensors  %7.1f MB  %6.1f MB/s  ETA %4.0fs", filled,
                 "##############################", width - filled, "                              ", p.tensors_done,
                 p.tensors_total, mb, rate, eta);
    if (p.tensors_done == p.tensors_total) std::fprintf(stderr, "\n");
    return;
  }
  const int decile = static_cast<int>(frac * 10);
  if (decile != last_decile) {
    last_decile = decile;
    std::fprintf(stderr, "convert: %zu/%zu tensors, %.1f MB, %.1f MB/s\n", p.tensors_done, p.tensors_total, mb, rate);
  }
}

}  // namespace

void add_convert_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string input, output, quant = "f16";
    int threads = 0;
    bool quiet = false;
  };
  auto a = std::make_shared<Args>();
  std::string quant_help = "Quantization:";
  for (const auto& name : quant_recipe_names()) {
    quant_help += "\n  " + name + ": " + quant_recipe_from_name(name)->description;
  }
  auto* cmd = app.add_subcommand("convert", "Convert a Hugging Face model directory to a GGUF file");
  cmd->add_option("hf_dir", a->input, "Hugging Face model directory (config.json, safetensors, tokenizer)")->required();
  cmd->add_option("-o,--output", a->output, "Output .gguf file (written only when complete)")->required();
  cmd->add_option("-q,--quant", a->quant, quant_help)->capture_default_str();
  cmd->add_option("-t,--threads", a->threads, "Threads for quantization (0: one per CPU)")->capture_default_str();
  cmd->add_flag("--quiet", a->quiet, "No progress output");
  cmd->callback([a, &exit_code] {
    ConvertOptions options;
    options.quant = a->quant;
    options.n_threads = a->threads;
    const bool tty = ::isatty(STDERR_FILENO) != 0;
    int last_decile = -1;
    if (!a->quiet) options.progress = [&](const ConvertProgress& p) { show_progress(p, tty, last_decile); };
    const Status st = convert_hf_to_gguf(a->input, a->output, options);
    if (!st.ok()) {
      std::fprintf(stderr, "edgellm convert: %s\n", st.error().message.c_str());
      exit_code = 1;
      return;
    }
    if (!a->quiet) std::fprintf(stderr, "convert: wrote %s (%s)\n", a->output.c_str(), a->quant.c_str());
  });
}

}  // namespace edgellm::cli
