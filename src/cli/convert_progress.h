// Progress output shared by `edgellm convert` and `edgellm quantize`, and their common options.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "convert/hf_converter.h"
#include "convert/quant_recipe.h"

namespace edgellm::cli {

// A progress bar on a terminal, plain lines (every 10%) otherwise.
inline void show_convert_progress(const char* what, const ConvertProgress& p, bool tty, int& last_decile) {
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
    std::fprintf(stderr, "%s: %zu/%zu tensors, %.1f MB, %.1f MB/s\n", what, p.tensors_done, p.tensors_total, mb, rate);
  }
}

inline std::string quant_recipes_help() {
  std::string help = "Quantization:";
  for (const auto& name : quant_recipe_names()) help += "\n  " + name + ": " + quant_recipe_from_name(name)->description;
  return help;
}

// -q, --rtn, --calib, --calib-tokens, --threads, --quiet on `cmd`, stored in `options` / `quiet`.
inline void add_quantization_options(CLI::App* cmd, ConvertOptions& options, bool& quiet, bool& rtn) {
  cmd->add_option("-q,--quant", options.quant, quant_recipes_help())->capture_default_str();
  cmd->add_flag("--rtn", rtn,
                "Plain round-to-nearest scales instead of the error-minimising search (the extreme value on the end level; for Q4_0, Q4_1 and Q8_0 byte for byte ggml's reference quantizers)");
  cmd->add_option("--calib", options.calib_path,
                  "Calibration: a text file, or `self` (the model samples 2048 tokens of its own text: no data "
                  "needed), or `none` (default). The model runs over it; its input second moments drive GPTQ error "
                  "compensation and importance-weighted scales");
  cmd->add_flag("--no-gptq{false}", options.gptq,
                "With --calib: only weight the scale search by E[a^2] per channel, no GPTQ error compensation");
  cmd->add_option("--calib-tokens", options.calib_tokens,
                  "Calibration tokens (default: 8192 of a text, 2048 self-generated)");
  cmd->add_option("-t,--threads", options.n_threads, "Threads (0: one per core of the fastest cluster)")->capture_default_str();
  cmd->add_flag("--quiet", quiet, "No progress output");
}

// The body both commands share: search on unless --rtn, progress unless --quiet, `write` produces the
// file, errors go to stderr as "edgellm VERB: ...". Returns the exit code.
inline int run_quantizing_command(const char* verb, ConvertOptions options, bool quiet, bool rtn,
                                  const std::string& output,
                                  const std::function<Status(const ConvertOptions&)>& write) {
  options.search = !rtn;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  int last_decile = -1;
  if (!quiet) options.progress = [&](const ConvertProgress& p) { show_convert_progress(verb, p, tty, last_decile); };
  const Status st = write(options);
  if (!st.ok()) {
    std::fprintf(stderr, "edgellm %s: %s\n", verb, st.error().message.c_str());
    return 1;
  }
  if (!quiet) std::fprintf(stderr, "%s: wrote %s (%s)\n", verb, output.c_str(), options.quant.c_str());
  return 0;
}

}  // namespace edgellm::cli
