// edgellm run -m MODEL -p PROMPT: one answer streamed to stdout.
#include <cstdio>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "cli/generation_flags.h"

namespace edgellm::cli {
namespace {

int32_t print_text(edgellm_event event, const char* text, size_t len, void*) {
  if (event == EDGELLM_EVENT_TEXT) {
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
  } else if (event == EDGELLM_EVENT_FINISH) {
    std::fputc('\n', stdout);
  } else if (event == EDGELLM_EVENT_ERROR) {
    std::fprintf(stderr, "\nedgellm run: %.*s\n", static_cast<int>(len), text);
  }
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code) {
  struct Args {
    GenerationFlags flags;
    std::string prompt;
    std::string system;
    bool raw = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("run", "Answer one prompt, streaming the text to stdout");
  add_generation_flags(cmd, a->flags);
  cmd->add_option("-p,--prompt", a->prompt, "The prompt ('-' reads it from stdin)")->required();
  cmd->add_option("--system", a->system, "System prompt (chat models)");
  cmd->add_flag("--raw", a->raw,
                "Plain completion of the prompt text, without the chat template (the default for models "
                "without one)");
  cmd->callback([a, &exit_code] {
    if (a->prompt == "-") a->prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    edgellm_model* model = nullptr;
    edgellm_session* session = nullptr;
    if (!open_model_and_session(a->flags, &model, &session)) {
      exit_code = 1;
      return;
    }
    edgellm_generate_params params;
    if (!build_generate_params(a->flags, model, a->flags.preset, &params)) {
      exit_code = 1;
    } else {
      edgellm_model_info info{};
      edgellm_model_get_info(model, &info);
      const bool use_chat = !a->raw && info.has_chat_template;
      if (a->flags.verbose) {
        std::fprintf(stderr, "[%s, %s]\n", info.architecture,
                     use_chat ? (std::string("chat template ") + info.chat_template).c_str() : "plain completion");
      }
      edgellm_status st;
      if (use_chat) {
        if (!a->system.empty()) edgellm_session_set_system_prompt(session, a->system.c_str());
        st = edgellm_session_chat(session, a->prompt.c_str(), &params, print_text, nullptr);
      } else {
        st = edgellm_session_complete(session, a->prompt.c_str(), &params, print_text, nullptr);
      }
      if (st != EDGELLM_OK) exit_code = 1;
      if (a->flags.verbose && st == EDGELLM_OK) print_perf(session);
    }
    edgellm_session_free(session);
    edgellm_model_free(model);
  });
}

}  // namespace edgellm::cli
