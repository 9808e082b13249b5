// edgellm serve: OpenAI- and Ollama-compatible HTTP server over the serving engine (docs/serving.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/thread_flags.h"
#include "server/http_server.h"

namespace edgellm::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> models;
  std::vector<std::string> aliases;
  std::string host = "127.0.0.1";
  int port = 8080;
  int parallel = 4;
  int64_t ctx = 4096;
  int64_t kv_mem_mib = 0;
  std::string kv_type = "f16";
  int64_t queue = 64;
  int64_t prefill_chunk = 256;
  int block_size = 16;
  bool no_prefix_cache = false;
  ThreadFlags threads;
  size_t max_body = 8u << 20;
  double timeout = 600;
  std::string require_signature;
  std::string key_file;
};

int run_serve(const ServeArgs& a) {
  server::ServeOptions o;
  if (a.aliases.size() > a.models.size()) {
    std::fprintf(stderr, "edgellm serve: %zu --alias for %zu -m: give at most one alias per model, in order\n",
                 a.aliases.size(), a.models.size());
    return 1;
  }
  for (size_t i = 0; i < a.models.size(); ++i) {
    o.models.push_back({a.models[i], i < a.aliases.size() ? a.aliases[i] : ""});
  }
  o.host = a.host;
  o.port = a.port;
  o.engine.max_parallel = a.parallel;
  o.engine.n_ctx = a.ctx;
  o.engine.kv_mem_bytes = a.kv_mem_mib * (int64_t{1} << 20);
  o.engine.kv_type = dtype_from_name(a.kv_type).value_or(DType::kF16);
  o.engine.max_queue = a.queue;
  o.engine.prefill_chunk = a.prefill_chunk;
  o.engine.block_size = a.block_size;
  o.engine.prefix_cache = !a.no_prefix_cache;
  o.load.n_threads = a.threads.threads;
  o.load.pin_threads = a.threads.pin;
  o.load.prefetch = true;
  o.load.require_signature = a.require_signature;
  o.load.key_file = a.key_file;
  if (!thread_flags_cpus(a.threads, "serve", &o.load.cpus)) return 1;
  o.max_body_bytes = a.max_body;
  o.timeout_seconds = a.timeout;

  // Signals go to one thread that waits for them (blocked everywhere else, including the threads the
  // server starts), which then shuts the server down.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = std::make_unique<server::HttpServer>(o);
  auto port = server->bind();
  if (!port.ok()) {
    std::fprintf(stderr, "edgellm serve: %s\n", port.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "edgellm serve: listening on http://%s:%d (loading %zu model%s)\n", o.host.c_str(), *port,
               o.models.size(), o.models.size() == 1 ? "" : "s");
  std::fflush(stderr);

  int exit_code = 0;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGINT || sig == SIGTERM) {
      std::fprintf(stderr, "edgellm serve: %s: finishing the running requests and stopping\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      server->shutdown();
    }
  });
  std::thread loader([&] {
    const Status st = server->load_models();
    if (!st.ok()) {
      std::fprintf(stderr, "edgellm serve: %s\n", st.error().message.c_str());
      exit_code = 1;
      server->shutdown();
      return;
    }
    std::fprintf(stderr, "edgellm serve: ready\n");
    std::fflush(stderr);
  });
  server->serve();
  loader.join();
  // Wake the signal thread if it is still waiting (the server stopped for another reason).
  pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  server.reset();
  return exit_code;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "OpenAI- and Ollama-compatible HTTP server (streaming, Prometheus /metrics)");
  cmd->add_option("-m,--model", a->models, "GGUF file or Hugging Face directory; repeat to serve several")->required();
  cmd->add_option("--alias", a->aliases, "Name clients use for the model of the same position (default: file name)");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--parallel", a->parallel, "Requests decoded together per model")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", a->ctx, "Positions per request, prompt and reply")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 22))
      ->capture_default_str();
  cmd->add_option("--kv-mem", a->kv_mem_mib,
                  "KV memory for all requests of a model, MiB (0: --parallel full contexts, at most 3/4 of the "
                  "available memory)")
      ->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type")->check(CLI::IsMember({"f16", "q8_0"}))->capture_default_str();
  cmd->add_option("--queue", a->queue, "Requests waiting for a slot at most (more get 503)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", a->prefill_chunk, "Tokens per engine step (prompt chunks and decode tokens)")
      ->check(CLI::Range(int64_t{1}, int64_t{16384}))
      ->capture_default_str();
  cmd->add_option("--block-size", a->block_size, "Positions per KV block")
      ->check(CLI::IsMember({16, 32}))
      ->capture_default_str();
  cmd->add_flag("--no-prefix-cache", a->no_prefix_cache, "Do not share the KV blocks of common prompt prefixes");
  add_thread_flags(cmd, a->threads);
  cmd->add_option("--require-signature", a->require_signature,
                  "Serve only models whose MODEL.minisig verifies with this minisign public key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--key-file", a->key_file,
                  "Key of encrypted models (edgellm encrypt); default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY "
                  "or the systemd credential edgellm-model-key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-body", a->max_body, "Largest request body in bytes (larger: 413)")->capture_default_str();
  cmd->add_option("--timeout", a->timeout, "Seconds a request may take from arrival to its last token (0: none)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd->callback([a, &exit_code] { exit_code = run_serve(*a); });
}

}  // namespace edgellm::cli
