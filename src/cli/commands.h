// Every `edgellm <command>` registers itself here; its callback stores the process exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace edgellm::cli {

void add_convert_command(CLI::App& app, int& exit_code);
void add_inspect_command(CLI::App& app, int& exit_code);
void add_verify_command(CLI::App& app, int& exit_code);
void add_lora_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_chat_command(CLI::App& app, int& exit_code);
void add_quant_row_command(CLI::App& app, int& exit_code);  // hidden developer tool
void add_synth_command(CLI::App& app, int& exit_code);
void add_generate_command(CLI::App& app, int& exit_code);
void add_tokenize_command(CLI::App& app, int& exit_code);
void add_chat_template_command(CLI::App& app, int& exit_code);
void add_quantize_command(CLI::App& app, int& exit_code);
void add_perplexity_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);
void add_keys_command(CLI::App& app, int& exit_code);  // keys add, list, remove
void add_history_command(CLI::App& app, int& exit_code);  // history list, show, export, prune
void add_doctor_command(CLI::App& app, int& exit_code);
void add_sign_commands(CLI::App& app, int& exit_code);  // keygen, sign
void add_encrypt_commands(CLI::App& app, int& exit_code);  // encrypt, decrypt

}  // namespace edgellm::cli
