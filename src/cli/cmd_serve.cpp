// edgellm serve: OpenAI- and Ollama-compatible HTTP server over the serving engine (docs/serving.md).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/thread_flags.h"
#include "server/http_server.h"
#include "server/serve_config.h"

namespace edgellm::cli {
namespace {

struct ServeArgs {
  server::ServeSettings cli;  // what the command line says (defaults where it says nothing)
  std::vector<std::string> model_paths, aliases;
  ThreadFlags threads;
  std::string config;        // --config FILE
  std::string check_config;  // --check-config FILE: validate and exit
  bool no_prefix_cache = false;
  CLI::App* cmd = nullptr;   // to ask which options were given
};

bool given(const ServeArgs& a, const char* option) { return a.cmd->get_option(option)->count() > 0; }

// Defaults, then the config file, then what the command line gives explicitly. Errors are printed.
bool resolve_settings(const ServeArgs& a, const std::string& config, server::ServeSettings* out) {
  server::ServeSettings s;
  if (!config.empty()) {
    const Status st = server::read_serve_config(config, &s);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().message.c_str());
      return false;
    }
  }
  const server::ServeSettings& c = a.cli;
  if (given(a, "--model")) {
    s.models.clear();
    for (size_t i = 0; i < a.model_paths.size(); ++i) {
      s.models.push_back({a.model_paths[i], i < a.aliases.size() ? a.aliases[i] : ""});
    }
  }
  if (a.aliases.size() > a.model_paths.size()) {
    std::fprintf(stderr, "edgellm serve: %zu --alias for %zu -m: give at most one alias per model, in order\n",
                 a.aliases.size(), a.model_paths.size());
    return false;
  }
  if (given(a, "--host")) s.host = c.host;
  if (given(a, "--port")) s.port = c.port;
  if (given(a, "--insecure")) s.insecure = c.insecure;
  if (given(a, "--max-body")) s.max_body = c.max_body;
  if (given(a, "--timeout")) s.timeout = c.timeout;
  if (given(a, "--threads")) s.threads = a.threads.threads;
  if (given(a, "--require-signature")) s.require_signature = c.require_signature;
  if (given(a, "--key-file")) s.key_file = c.key_file;
  if (given(a, "--parallel")) s.parallel = c.parallel;
  if (given(a, "--ctx")) s.ctx = c.ctx;
  if (given(a, "--kv-mem")) s.kv_mem_mib = c.kv_mem_mib;
  if (given(a, "--kv-type")) s.kv_type = c.kv_type;
  if (given(a, "--queue")) s.queue = c.queue;
  if (given(a, "--prefill-chunk")) s.prefill_chunk = c.prefill_chunk;
  if (given(a, "--block-size")) s.block_size = c.block_size;
  if (given(a, "--no-prefix-cache")) s.prefix_cache = false;
  if (given(a, "--api-keys-file")) s.api_keys_file = c.api_keys_file;
  // Under systemd, a keys file passed as the credential edgellm-api-keys (LoadCredential=, docs/deploy.md):
  // the service's own user can read it wherever the original lies.
  if (s.api_keys_file.empty()) {
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && *dir != '\0') {
      const std::string credential = std::string(dir) + "/edgellm-api-keys";
      std::error_code ec;
      if (std::filesystem::exists(credential, ec)) s.api_keys_file = credential;
    }
  }
  if (given(a, "--db")) s.db = c.db;
  if (given(a, "--trusted-proxy")) s.trusted_proxies = c.trusted_proxies;
  s.plain_keys = c.plain_keys;
  const Status st = server::check_serve_settings(s);
  if (!st.ok()) {
    std::stringstream lines(st.error().message);
    for (std::string line; std::getline(lines, line);) std::fprintf(stderr, "edgellm serve: %s\n", line.c_str());
    return false;
  }
  *out = std::move(s);
  return true;
}

int run_serve(const ServeArgs& a) {
  if (!a.check_config.empty()) {
    server::ServeSettings s;
    if (!resolve_settings(a, a.check_config, &s)) return 1;
    const auto keys = server::load_api_keys(s);
    std::printf("%s: OK: %zu model%s on %s:%d, %zu API key%s%s\n", a.check_config.c_str(), s.models.size(),
                s.models.size() == 1 ? "" : "s", s.host.c_str(), s.port, keys->size(), keys->size() == 1 ? "" : "s",
                keys->empty() ? " (no authentication)" : "");
    return 0;
  }
  server::ServeSettings settings;
  if (!resolve_settings(a, a.config, &settings)) return 1;
  auto keys = server::load_api_keys(settings);  // checked in resolve_settings

  server::ServeOptions o;
  for (const auto& m : settings.models) o.models.push_back({m.path, m.alias});
  o.host = settings.host;
  o.port = settings.port;
  o.engine.max_parallel = settings.parallel;
  o.engine.n_ctx = settings.ctx;
  o.engine.kv_mem_bytes = settings.kv_mem_mib * (int64_t{1} << 20);
  o.engine.kv_type = dtype_from_name(settings.kv_type).value_or(DType::kF16);
  o.engine.max_queue = settings.queue;
  o.engine.prefill_chunk = settings.prefill_chunk;
  o.engine.block_size = settings.block_size;
  o.engine.prefix_cache = settings.prefix_cache;
  o.load.n_threads = settings.threads;
  o.load.pin_threads = a.threads.pin;
  o.load.prefetch = true;
  o.load.require_signature = settings.require_signature;
  o.load.key_file = settings.key_file;
  if (!thread_flags_cpus(a.threads, "serve", &o.load.cpus)) return 1;
  o.max_body_bytes = static_cast<size_t>(settings.max_body);
  o.timeout_seconds = settings.timeout;
  o.trusted_proxies = settings.trusted_proxies;
  o.keys = std::move(*keys);
  o.limits = settings.limits;
  o.policy = settings.policy;
  auto filters = server::InputFilters::compile(settings.filters);  // checked while reading the config
  if (!filters.ok()) {
    std::fprintf(stderr, "edgellm serve: %s\n", filters.error().message.c_str());
    return 1;
  }
  o.filters = *filters;
  const size_t n_keys = o.keys.size();
  // A file-size limit (ulimit -f) must fail the store's write, not kill the server: SIGXFSZ is ignored.
  signal(SIGXFSZ, SIG_IGN);

  // Signals go to one thread that waits for them (blocked everywhere else, including the threads the
  // server starts), which then shuts the server down. Blocked before any thread starts (the store's writer
  // is the first): a thread that has them unblocked would take them with their default action.
  // A shell starts background jobs with SIGINT ignored, nohup with SIGHUP ignored: an ignored signal never
  // reaches sigwait, so each gets its default disposition back first (blocked below, it is only waited for).
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<server::ConversationStore> store;
  if (!settings.db.empty()) {
    server::StoreOptions so;
    so.synchronous_full = settings.store_synchronous_full;
    so.retention_days = settings.store_retention_days;
    so.max_bytes = settings.store_max_mb * (int64_t{1} << 20);
    so.quota_bytes = settings.store_quota_mb * (int64_t{1} << 20);
    auto opened = server::ConversationStore::open(settings.db, so);
    if (!opened.ok()) {
      std::fprintf(stderr, "edgellm serve: %s\n", opened.error().message.c_str());
      return 1;
    }
    store = std::move(*opened);
  }

  auto server = std::make_unique<server::HttpServer>(o);
  if (store) {
    std::fprintf(stderr, "edgellm serve: saving every exchange to %s\n", store->path().c_str());
    server->context().set_store(std::move(store));
  }
  auto port = server->bind();
  if (!port.ok()) {
    std::fprintf(stderr, "edgellm serve: %s\n", port.error().message.c_str());
    return 1;
  }
  std::fprintf(stderr, "edgellm serve: listening on http://%s:%d (loading %zu model%s; %s)\n", o.host.c_str(), *port,
               o.models.size(), o.models.size() == 1 ? "" : "s",
               n_keys == 0 ? "no API keys" : (std::to_string(n_keys) + " API key" + (n_keys == 1 ? "" : "s")).c_str());
  std::fflush(stderr);

  int exit_code = 0;
  std::thread signal_thread([&] {
    for (;;) {
      int sig = 0;
      sigwait(&signals, &sig);
      if (sig == SIGHUP) {
        // Reload what can change without a restart (the API keys); a bad file keeps the old ones.
        server::ServeSettings next;
        if (!resolve_settings(a, a.config, &next)) {
          std::fprintf(stderr, "edgellm serve: SIGHUP: the configuration above has errors; keeping the old one\n");
          continue;
        }
        auto reloaded = server::load_api_keys(next);
        if (!reloaded.ok() || (reloaded->empty() && !next.insecure && !server::is_loopback_host(o.host))) {
          std::fprintf(stderr, "edgellm serve: SIGHUP: %s; keeping the old keys\n",
                       reloaded.ok() ? "no API keys left on a non-loopback address" : reloaded.error().message.c_str());
          continue;
        }
        const size_t n = reloaded->size();
        server->context().set_keys(std::move(*reloaded));
        server->context().set_limits(next.limits);
        const size_t n_rules = next.policy.size();
        server->context().set_policy(std::move(next.policy));
        if (auto f = server::InputFilters::compile(next.filters); f.ok()) server->context().set_filters(*f);
        std::fprintf(stderr, "edgellm serve: SIGHUP: reloaded, %zu API key%s, rate limits %s, %zu policy rule%s\n", n,
                     n == 1 ? "" : "s", next.limits.any() ? "on" : "off", n_rules, n_rules == 1 ? "" : "s");
        std::fflush(stderr);
        continue;
      }
      std::fprintf(stderr, "edgellm serve: %s: finishing the running requests and stopping\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
      server->shutdown();
      return;
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
  server::ServeSettings& c = a->cli;
  auto* cmd = app.add_subcommand("serve", "OpenAI- and Ollama-compatible HTTP server (streaming, Prometheus /metrics)");
  a->cmd = cmd;
  cmd->add_option("-m,--model", a->model_paths,
                  "GGUF file or Hugging Face directory; repeat to serve several (replaces the config's [[model]])");
  cmd->add_option("--alias", a->aliases, "Name clients use for the model of the same position (default: file name)");
  cmd->add_option("--config", a->config,
                  "TOML file with every setting below ([[model]], [server], [engine], [auth]), the rate limits "
                  "([limits.key], [limits.address]), time-of-day caps ([[policy]]), input and output filters "
                  "([filters]) and the conversation store ([store]); the "
                  "command line overrides it; SIGHUP re-reads it and the keys file (keys, limits, policy, filters)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--check-config", a->check_config,
                  "Check this config file (with the command line's overrides), print each error with its line, and "
                  "exit")
      ->check(CLI::ExistingFile)
      ->excludes("--config");
  cmd->add_option("--host", c.host, "Address to listen on (beyond loopback only with API keys or --insecure)")
      ->capture_default_str();
  cmd->add_option("--port", c.port, "Port (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", c.plain_keys,
                  "An API key clients must send (Authorization: Bearer KEY); repeat for several. Prefer "
                  "--api-keys-file: a key on the command line is visible to other users of the machine");
  cmd->add_option("--api-keys-file", c.api_keys_file,
                  "File of API key hashes, one `NAME sha256:HEX` per line (`edgellm keys add NAME --file FILE`); "
                  "default under systemd: the credential edgellm-api-keys");
  cmd->add_option("--db", c.db,
                  "Save every finished exchange in this SQLite file (the conversation store; created if missing; "
                  "read it with `edgellm history`)");
  cmd->add_option("--trusted-proxy", c.trusted_proxies,
                  "A reverse proxy's address (nginx in front of a fleet): its X-Forwarded-For header names the client "
                  "for rate limits, logs and the store; repeat for several");
  cmd->add_flag("--insecure", c.insecure, "Allow listening beyond loopback without API keys");
  cmd->add_option("--parallel", c.parallel, "Requests decoded together per model")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("-c,--ctx", c.ctx, "Positions per request, prompt and reply")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 22))
      ->capture_default_str();
  cmd->add_option("--kv-mem", c.kv_mem_mib,
                  "KV memory for all requests of a model, MiB (0: --parallel full contexts, at most 3/4 of the "
                  "available memory)")
      ->capture_default_str();
  cmd->add_option("--kv-type", c.kv_type, "KV cache type")
      ->check(CLI::IsMember({"f16", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--queue", c.queue, "Requests waiting for a slot at most (more get 503)")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}))
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", c.prefill_chunk, "Tokens per engine step (prompt chunks and decode tokens)")
      ->check(CLI::Range(int64_t{1}, int64_t{16384}))
      ->capture_default_str();
  cmd->add_option("--block-size", c.block_size, "Positions per KV block")
      ->check(CLI::IsMember({16, 32}))
      ->capture_default_str();
  cmd->add_flag("--no-prefix-cache", a->no_prefix_cache, "Do not share the KV blocks of common prompt prefixes");
  add_thread_flags(cmd, a->threads);
  cmd->add_option("--require-signature", c.require_signature,
                  "Serve only models whose MODEL.minisig verifies with this minisign public key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--key-file", c.key_file,
                  "Key of encrypted models (edgellm encrypt); default: EDGELLM_MODEL_KEY_FILE, EDGELLM_MODEL_KEY "
                  "or the systemd credential edgellm-model-key")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-body", c.max_body, "Largest request body in bytes (larger: 413)")->capture_default_str();
  cmd->add_option("--timeout", c.timeout, "Seconds a request may take from arrival to its last token (0: none)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd->callback([a, &exit_code] { exit_code = run_serve(*a); });
}

}  // namespace edgellm::cli
