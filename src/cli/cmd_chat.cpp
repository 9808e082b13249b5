// edgellm chat -m MODEL: interactive multi-turn chat with line editing. Each turn prefills only the new
// message (the session keeps the conversation's KV cache). Ctrl-C stops the current answer.
#include <editline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generation_flags.h"

namespace edgellm::cli {
namespace {

// The session being generated into, for the SIGINT handler (a signal handler can reach nothing else).
std::atomic<edgellm_session*> g_generating{nullptr};

void on_sigint(int) {
  if (edgellm_session* s = g_generating.load()) edgellm_session_abort(s);
}

int32_t print_text(edgellm_event event, const char* text, size_t len, void*) {
  if (event == EDGELLM_EVENT_TEXT) {
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
  }
  return 0;
}

const char* kHelp =
    "commands:\n"
    "  /reset            forget the conversation\n"
    "  /save FILE        save the conversation (FILE, JSON) and its KV cache (FILE.kv)\n"
    "  /load FILE        restore a conversation saved with /save\n"
    "  /preset NAME      sampling preset: qa, creative, code, greedy, default\n"
    "  /system TEXT      set the system prompt (resets the conversation)\n"
    "  /quit             leave (or Ctrl-D)\n"
    "Ctrl-C stops the current answer.\n";

bool save_conversation(edgellm_session* s, const std::string& path) {
  nlohmann::json messages = nlohmann::json::array();
  for (int32_t i = 0; i < edgellm_session_history_size(s); ++i) {
    const char* role = nullptr;
    const char* content = nullptr;
    edgellm_session_history_message(s, i, &role, &content);
    messages.push_back({{"role", role}, {"content", content}});
  }
  std::ofstream out(path);
  out << nlohmann::json{{"messages", messages}}.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  if (edgellm_session_n_cached(s) > 0 && edgellm_session_save_state(s, (path + ".kv").c_str()) != EDGELLM_OK) {
    std::fprintf(stderr, "KV cache not saved: %s\n", edgellm_session_last_error(s));
  }
  return true;
}

bool load_conversation(edgellm_session* s, const std::string& path) {
  std::ifstream in(path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: not a saved conversation (%s)\n", path.c_str(), e.what());
    return false;
  }
  if (!j.contains("messages") || !j["messages"].is_array()) {
    std::fprintf(stderr, "%s: no \"messages\" array\n", path.c_str());
    return false;
  }
  edgellm_session_reset(s);
  for (const auto& m : j["messages"]) {
    if (!m.is_object() || !m.value("role", nlohmann::json()).is_string() || !m.value("content", nlohmann::json()).is_string()) {
      std::fprintf(stderr, "%s: a message lacks a role or content\n", path.c_str());
      edgellm_session_reset(s);
      return false;
    }
    const std::string role = m["role"], content = m["content"];
    if (edgellm_session_add_message(s, role.c_str(), content.c_str()) != EDGELLM_OK) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), edgellm_session_last_error(s));
      edgellm_session_reset(s);
      return false;
    }
  }
  if (access((path + ".kv").c_str(), R_OK) == 0 && edgellm_session_load_state(s, (path + ".kv").c_str()) != EDGELLM_OK) {
    std::fprintf(stderr, "KV cache not restored (it will be recomputed): %s\n", edgellm_session_last_error(s));
  }
  return true;
}

int run_chat(const GenerationFlags& flags, const std::string& system_prompt, int thinking) {
  edgellm_model* model = nullptr;
  edgellm_session* session = nullptr;
  if (!open_model_and_session(flags, &model, &session)) return 1;
  std::string preset = flags.preset;
  edgellm_generate_params params;
  if (!build_generate_params(flags, model, preset, &params)) return 1;
  if (!system_prompt.empty()) edgellm_session_set_system_prompt(session, system_prompt.c_str());
  if (thinking >= 0) edgellm_session_set_thinking(session, thinking);

  const bool interactive = ::isatty(STDIN_FILENO) != 0;
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  if (interactive) {
    edgellm_model_info info{};
    edgellm_model_get_info(model, &info);
    std::printf("edgellm chat: %s model, chat template %s. /help for commands.\n", info.architecture, info.chat_template);
  }
  int exit_code = 0;
  for (;;) {
    std::string line;
    if (interactive) {
      char* raw = readline("> ");
      if (!raw) break;
      line = raw;
      if (!line.empty()) add_history(raw);
      std::free(raw);
    } else if (!std::getline(std::cin, line)) {
      break;
    }
    if (line.empty()) continue;
    if (line[0] == '/') {
      const auto space = line.find(' ');
      const std::string cmd = line.substr(0, space);
      const std::string arg = space == std::string::npos ? "" : line.substr(space + 1);
      if (cmd == "/quit" || cmd == "/exit") break;
      if (cmd == "/help") {
        std::fputs(kHelp, stdout);
      } else if (cmd == "/reset") {
        edgellm_session_reset(session);
        std::puts("(conversation cleared)");
      } else if (cmd == "/save" && !arg.empty()) {
        if (save_conversation(session, arg)) std::printf("(saved to %s)\n", arg.c_str());
      } else if (cmd == "/load" && !arg.empty()) {
        if (load_conversation(session, arg)) {
          std::printf("(loaded %d messages)\n", edgellm_session_history_size(session));
        }
      } else if (cmd == "/preset" && !arg.empty()) {
        edgellm_generate_params next;
        if (build_generate_params(flags, model, arg == "default" ? "" : arg, &next)) {
          params = next;
          std::printf("(preset %s)\n", arg.c_str());
        }
      } else if (cmd == "/system") {
        edgellm_session_reset(session);
        edgellm_session_set_system_prompt(session, arg.c_str());
        std::puts("(system prompt set, conversation cleared)");
      } else {
        std::fprintf(stderr, "unknown command %s (/help lists them)\n", line.c_str());
      }
      continue;
    }
    g_generating.store(session);
    const edgellm_status st = edgellm_session_chat(session, line.c_str(), &params, print_text, nullptr);
    g_generating.store(nullptr);
    std::fputc('\n', stdout);
    if (st == EDGELLM_ERROR_ABORTED) {
      std::puts("(stopped)");
    } else if (st != EDGELLM_OK) {
      std::fprintf(stderr, "edgellm chat: %s\n", edgellm_session_last_error(session));
      if (!interactive) exit_code = 1;
    } else if (flags.verbose) {
      print_perf(session);
    }
  }
  edgellm_session_free(session);
  edgellm_model_free(model);
  return exit_code;
}

}  // namespace

void add_chat_command(CLI::App& app, int& exit_code) {
  struct Args {
    GenerationFlags flags;
    std::string system;
    std::string thinking = "default";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("chat",
                                 "Interactive multi-turn chat (reads one message per line when stdin is not a "
                                 "terminal)");
  add_generation_flags(cmd, a->flags);
  cmd->add_option("--system", a->system, "System prompt");
  cmd->add_option("--thinking", a->thinking, "Qwen3 thinking: on, off, default")
      ->check(CLI::IsMember({"on", "off", "default"}))
      ->capture_default_str();
  cmd->callback([a, &exit_code] {
    const int thinking = a->thinking == "on" ? 1 : a->thinking == "off" ? 0 : -1;
    exit_code = run_chat(a->flags, a->system, thinking);
  });
}

}  // namespace edgellm::cli
