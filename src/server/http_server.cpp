#include "server/http_server.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <thread>

#include "server/generation.h"
#include "server/routes.h"
#include "server/system_metrics.h"
#include "server/web_page.h"
#include "util/log.h"

namespace edgellm::server {
namespace {

std::string default_alias(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "dir/" -> "dir"
  std::string name = p.filename().string();
  const size_t dot = name.rfind(".gguf");
  if (dot != std::string::npos && dot + 5 == name.size()) name.resize(dot);
  return name;
}

std::string mtime_rfc3339(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "1970-01-01T00:00:00Z";
  std::tm tm{};
  gmtime_r(&st.st_mtime, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Dialect dialect_of(const std::string& path) {
  return path.rfind("/api/", 0) == 0 ? Dialect::kOllama : Dialect::kOpenAI;
}

}  // namespace

HttpServer::HttpServer(ServeOptions options) : ctx_(std::move(options)) {
  const ServeOptions& o = ctx_.options();
  declare_serving_metrics(ctx_);
  // EDGELLM_SYSFS_ROOT: where /sys is mounted when not at / (a container; the tests' fake board).
  const char* sysfs_root = std::getenv("EDGELLM_SYSFS_ROOT");
  declare_system_metrics(ctx_.metrics(), sysfs_root != nullptr ? sysfs_root : "");

  int threads = o.http_threads;
  if (threads <= 0) {
    // Every running and queued request holds a thread while it streams; a few more answer the rest
    // (health checks, metrics scrapes, model lists) meanwhile.
    const size_t n_models = std::max<size_t>(1, o.models.size());
    threads = static_cast<int>(n_models) * (o.engine.max_parallel + static_cast<int>(o.engine.max_queue)) + 8;
    threads = std::min(threads, 1024);
  }
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_.set_payload_max_length(o.max_body_bytes);
  // SO_REUSEADDR only (a restart can bind at once). httplib's default adds SO_REUSEPORT, which lets a
  // second server on the same port share its connections instead of failing to start.
  http_.set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_socket_ = sock;
  });
  http_.set_read_timeout(30, 0);
  http_.set_write_timeout(30, 0);
  http_.set_keep_alive_timeout(2);  // also what an idle connection can hold up a shutdown
  // Many requests per connection: every reconnect is a chance to meet a full accept queue.
  http_.set_keep_alive_max_count(1000);  // also what an idle connection can hold up a shutdown

  // Bodies for errors httplib answers by itself (no route, a body over the limit, a request it could
  // not read), in the dialect of the path; responses a route already filled are left alone.
  http_.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.code = "not_found";
      e.message = "no route " + req.method + " " + req.path;
    } else if (res.status == 413) {
      e.param = "";
      e.message = "the request body is larger than the server's limit of " +
                  std::to_string(ctx_.options().max_body_bytes) + " bytes (--max-body)";
    } else {
      e.message = std::string("the request could not be read (HTTP ") + std::to_string(res.status) + ")";
    }
    send_error(res, dialect_of(req.path), e);
    ctx_.metrics().add("edgellm_requests_total", {"other", "", std::to_string(res.status), ""});
    return httplib::Server::HandlerResponse::Handled;
  }));

  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const char* status = ctx_.shutting_down() ? "shutting down" : ctx_.ready() ? "ok" : "loading";
    send_json(res, {{"status", status}}, ctx_.ready() && !ctx_.shutting_down() ? 200 : 503);
  });
  // With API keys on, a scrape needs one too (Prometheus: `authorization: {credentials_file: ...}`).
  http_.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      authenticate(ctx_, req);
    } catch (const RequestError& e) {
      send_error(res, Dialect::kOpenAI, e.error());
      return;
    }
    res.set_content(ctx_.metrics().render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  register_web_page(http_);  // the chat page at "/" (web/, docs/serving.md "Web chat page")
  register_openai_routes(http_, ctx_);
  register_ollama_routes(http_, ctx_);
}

HttpServer::~HttpServer() { shutdown(std::chrono::milliseconds(0)); }

Expected<int> HttpServer::bind() {
  const ServeOptions& o = ctx_.options();
  int port = o.port;
  bool ok = false;
  if (port == 0) {
    port = http_.bind_to_any_port(o.host);
    ok = port > 0;
  } else {
    ok = http_.bind_to_port(o.host, port);
  }
  if (!ok) {
    return make_error(ErrorCode::kIo, "cannot listen on " + o.host + ":" + std::to_string(o.port) +
                                          " (address in use, or not an address of this machine)");
  }
  // Debian's cpp-httplib listens with a backlog of 5: a burst of connections overflows it and the kernel
  // resets the ones it cannot queue (clients saw them as read errors). Listening again on the bound
  // socket raises the backlog (Linux updates it in place).
  if (listen_socket_ >= 0) ::listen(listen_socket_, SOMAXCONN);
  return port;
}

Status HttpServer::load_models() {
  const ServeOptions& o = ctx_.options();
  std::vector<std::unique_ptr<ServedModel>> models;
  for (const auto& spec : o.models) {
    auto m = std::make_unique<ServedModel>();
    m->path = spec.path;
    m->alias = spec.alias.empty() ? default_alias(spec.path) : spec.alias;
    EDGELLM_ASSIGN_OR_RETURN(m->model, LoadedModel::load(spec.path, o.load));
    auto engine = Engine::create(m->model, o.engine);
    if (!engine.ok()) return make_error(engine.error().code, spec.path + ": " + engine.error().message);
    m->engine = std::move(*engine);
    m->created_unix = static_cast<int64_t>(std::time(nullptr));
    std::error_code ec;
    m->size_bytes = std::filesystem::is_regular_file(spec.path, ec) ? std::filesystem::file_size(spec.path, ec)
                                                                    : m->model->model().weight_bytes();
    m->modified_at = mtime_rfc3339(spec.path);
    EDGELLM_LOG_INFO("serve: model '%s' (%s) ready", m->alias.c_str(), spec.path.c_str());
    models.push_back(std::move(m));
  }
  ctx_.set_models(std::move(models));
  return {};
}

void HttpServer::serve() {
  {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (stopped_) return;  // a signal came before the server started listening
  }
  http_.listen_after_bind();
}

void HttpServer::shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  if (stopped_) return;
  stopped_ = true;
  ctx_.begin_shutdown();
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (ctx_.open_streams() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // httplib's stop() closes the socket, but does nothing if its accept loop has not started yet (a SIGTERM
  // right after start, on a busy machine): then shutting the still-open socket down makes that loop's first
  // accept fail, and it returns.
  const bool running = http_.is_running();
  http_.stop();
  if (!running && listen_socket_ >= 0) ::shutdown(listen_socket_, SHUT_RDWR);
}

}  // namespace edgellm::server
