// rkllm_chat: a multi-turn chat written only against the RKLLM runtime API (rkllm.h), the way
// applications for the vendor's runtime are written. It streams the answer as it is generated and,
// when an answer is finished, stores the exchange (prompt and reply) in a SQLite database.
//
//   rkllm_chat MODEL MAX_NEW_TOKENS MAX_CONTEXT_LEN DB [PROMPT...]
//
// MODEL is a GGUF file or a Hugging Face directory (with the vendor's runtime: a .rkllm file).
// Without PROMPT arguments the prompts are read from stdin, one per line; "exit" quits and "clear"
// starts a new conversation. Ctrl-C stops the current answer.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "rkllm.h"

namespace {

LLMHandle g_handle = nullptr;  // for the SIGINT handler only

// What the result callback needs for one exchange: rkllm_run's userdata.
struct Exchange {
  sqlite3* db = nullptr;
  std::string prompt;
  std::string reply;  // the NORMAL pieces so far
  bool saved = false;
  bool failed = false;
};

bool open_db(const char* path, sqlite3** db) {
  if (sqlite3_open(path, db) != SQLITE_OK) {
    std::fprintf(stderr, "rkllm_chat: %s: %s\n", path, sqlite3_errmsg(*db));
    return false;
  }
  char* error = nullptr;
  const char* schema =
      "CREATE TABLE IF NOT EXISTS exchanges ("
      "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
      "  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,"
      "  prompt TEXT NOT NULL,"
      "  reply TEXT NOT NULL,"
      "  prefill_tokens INTEGER,"
      "  generate_tokens INTEGER)";
  if (sqlite3_exec(*db, schema, nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "rkllm_chat: %s: %s\n", path, error);
    sqlite3_free(error);
    return false;
  }
  return true;
}

bool save_exchange(Exchange& ex, const RKLLMPerfStat& perf) {
  sqlite3_stmt* stmt = nullptr;
  const char* sql = "INSERT INTO exchanges (prompt, reply, prefill_tokens, generate_tokens) VALUES (?, ?, ?, ?)";
  bool ok = sqlite3_prepare_v2(ex.db, sql, -1, &stmt, nullptr) == SQLITE_OK;
  ok = ok && sqlite3_bind_text(stmt, 1, ex.prompt.data(), static_cast<int>(ex.prompt.size()), SQLITE_TRANSIENT) == SQLITE_OK;
  ok = ok && sqlite3_bind_text(stmt, 2, ex.reply.data(), static_cast<int>(ex.reply.size()), SQLITE_TRANSIENT) == SQLITE_OK;
  ok = ok && sqlite3_bind_int(stmt, 3, perf.prefill_tokens) == SQLITE_OK;
  ok = ok && sqlite3_bind_int(stmt, 4, perf.generate_tokens) == SQLITE_OK;
  ok = ok && sqlite3_step(stmt) == SQLITE_DONE;
  if (!ok) std::fprintf(stderr, "rkllm_chat: saving the exchange: %s\n", sqlite3_errmsg(ex.db));
  sqlite3_finalize(stmt);
  return ok;
}

int on_result(RKLLMResult* result, void* userdata, LLMCallState state) {
  auto* ex = static_cast<Exchange*>(userdata);
  if (state == RKLLM_RUN_NORMAL) {
    std::fputs(result->text, stdout);
    std::fflush(stdout);
    ex->reply += result->text;
  } else if (state == RKLLM_RUN_FINISH) {
    std::fputc('\n', stdout);
    ex->saved = save_exchange(*ex, result->perf);
  } else if (state == RKLLM_RUN_ERROR) {
    std::fprintf(stderr, "\nrkllm_chat: run error: %s\n", result->text ? result->text : "");
    ex->failed = true;
  }
  return 0;
}

void on_sigint(int) {
  if (g_handle) rkllm_abort(g_handle);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL MAX_NEW_TOKENS MAX_CONTEXT_LEN DB [PROMPT...]\n", argv[0]);
    return 2;
  }
  sqlite3* db = nullptr;
  if (!open_db(argv[4], &db)) {
    sqlite3_close(db);
    return 1;
  }

  RKLLMParam param = rkllm_createDefaultParam();
  param.model_path = argv[1];
  param.max_new_tokens = std::atoi(argv[2]);
  param.max_context_len = std::atoi(argv[3]);
  param.top_k = 1;  // greedy, as the vendor's demo
  param.top_p = 0.95f;
  param.temperature = 0.8f;
  param.repeat_penalty = 1.1f;
  param.skip_special_token = true;
  param.extend_param.base_domain_id = 0;
  param.extend_param.embed_flash = 1;

  RKLLMCallback callback;
  std::memset(&callback, 0, sizeof callback);
  callback.result_callback = on_result;
  if (rkllm_init(&g_handle, &param, &callback) != 0) {
    std::fprintf(stderr, "rkllm_chat: rkllm_init failed\n");
    sqlite3_close(db);
    return 1;
  }
  std::signal(SIGINT, on_sigint);

  RKLLMInput input;
  std::memset(&input, 0, sizeof input);
  RKLLMInferParam infer;
  std::memset(&infer, 0, sizeof infer);
  infer.mode = RKLLM_INFER_GENERATE;
  infer.keep_history = 1;  // a conversation: each turn builds on the previous ones

  std::vector<std::string> prompts(argv + 5, argv + argc);
  const bool interactive = prompts.empty();
  int exit_code = 0;
  for (size_t turn = 0;; ++turn) {
    std::string prompt;
    if (interactive) {
      std::printf("\nuser: ");
      std::fflush(stdout);
      if (!std::getline(std::cin, prompt) || prompt == "exit") break;
      if (prompt == "clear") {
        rkllm_clear_kv_cache(g_handle, 1, nullptr, nullptr);
        continue;
      }
    } else {
      if (turn == prompts.size()) break;
      prompt = prompts[turn];
    }
    Exchange ex;
    ex.db = db;
    ex.prompt = prompt;
    input.role = "user";
    input.input_type = RKLLM_INPUT_PROMPT;
    input.prompt_input = ex.prompt.c_str();
    std::printf("robot: ");
    if (rkllm_run(g_handle, &input, &infer, &ex) != 0 || ex.failed || !ex.saved) exit_code = 1;
  }

  rkllm_destroy(g_handle);
  g_handle = nullptr;
  sqlite3_close(db);
  return exit_code;
}
