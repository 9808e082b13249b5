// edgellm: convert, inspect and run Qwen-family and Llama models on small CPUs.
#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"edgellm: run Qwen-family and Llama language models on small CPUs, fully offline"};
  app.set_version_flag("--version", "edgellm " EDGELLM_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);

  int exit_code = 0;
  edgellm::cli::add_convert_command(app, exit_code);
  edgellm::cli::add_run_command(app, exit_code);
  edgellm::cli::add_chat_command(app, exit_code);
  edgellm::cli::add_inspect_command(app, exit_code);
  edgellm::cli::add_verify_command(app, exit_code);
  edgellm::cli::add_lora_command(app, exit_code);
  edgellm::cli::add_bench_command(app, exit_code);
  edgellm::cli::add_quant_row_command(app, exit_code);
  edgellm::cli::add_synth_command(app, exit_code);
  edgellm::cli::add_generate_command(app, exit_code);
  edgellm::cli::add_tokenize_command(app, exit_code);
  edgellm::cli::add_chat_template_command(app, exit_code);
  edgellm::cli::add_quantize_command(app, exit_code);
  edgellm::cli::add_perplexity_command(app, exit_code);
  edgellm::cli::add_serve_command(app, exit_code);
  edgellm::cli::add_keys_command(app, exit_code);
  edgellm::cli::add_history_command(app, exit_code);
  edgellm::cli::add_doctor_command(app, exit_code);
  edgellm::cli::add_sign_commands(app, exit_code);
  edgellm::cli::add_encrypt_commands(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "edgellm: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
