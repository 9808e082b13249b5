// `edgellm serve`: the HTTP server in front of the engines. Binds first (so a supervisor sees the port at
// once), loads the models while /health answers 503, then serves both dialects, /health and /metrics.
// shutdown() (from a signal) stops taking requests, lets every stream send its final event, and returns
// serve() within the grace period.
#pragma once

#include <httplib.h>

#include <chrono>
#include <memory>

#include "server/server_context.h"
#include "util/expected.h"

namespace edgellm::server {

class HttpServer {
 public:
  explicit HttpServer(ServeOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port (the OS's choice for port 0). Errors: an address that
  // cannot be bound (in use, not local), with the address.
  Expected<int> bind();
  // Loads every model and starts its engine. Errors name the model file. Thread-safe with serve().
  Status load_models();
  // Answers requests until shutdown(). Call after bind().
  void serve();
  // Thread-safe, idempotent: refuses new requests, cancels the running ones (their streams end with a
  // final event), waits up to `grace` for the streams to finish, then stops the listener.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  ServerContext& context() { return ctx_; }

 private:
  ServerContext ctx_;
  httplib::Server http_;
  int listen_socket_ = -1;  // the listening socket httplib made (see bind())
  std::mutex shutdown_mu_;
  bool stopped_ = false;  // guarded by shutdown_mu_
};

}  // namespace edgellm::server
