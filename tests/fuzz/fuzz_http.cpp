// The HTTP server end to end: raw request bytes from the input go over a TCP connection to an in-process
// `edgellm serve` (cpp-httplib's request parser, then edgellm's routes: OpenAI and Ollama bodies, messages,
// tools, sampling fields, response formats, grammars) serving a tiny model with short contexts. The server must
// answer or close within 20 seconds of the request's end (no hang), and survive every input.
#include "fuzz_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "server/http_server.h"

namespace {

int server_port() {
  static const int port = [] {
    using edgellm::server::HttpServer;
    using edgellm::server::ServeOptions;
    edgellm::SynthOptions so;
    so.weight_type = edgellm::DType::kF32;
    const std::string path = edgellm::fuzz::scratch_dir() + "/served.gguf";
    if (!edgellm::write_synthetic_gguf(edgellm::fuzz::tiny_config(), so, path).ok()) std::abort();
    ServeOptions o;
    o.models.push_back({path, "tiny"});
    o.host = "127.0.0.1";
    o.port = 0;
    o.engine.max_parallel = 2;
    o.engine.n_ctx = 96;
    o.engine.kv_type = edgellm::DType::kF32;
    o.engine.prefill_chunk = 64;
    o.engine.max_queue = 4;
    o.load.n_threads = 1;
    o.load.check_memory = false;
    o.max_body_bytes = 64 << 10;
    o.timeout_seconds = 10;
    auto* server = new HttpServer(o);  // lives for the process
    auto bound = server->bind();
    if (!bound.ok() || !server->load_models().ok()) std::abort();
    std::thread([server] { server->serve(); }).detach();
    return *bound;
  }();
  return port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int port = server_port();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();  // the server died
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = ::send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early on a bad request
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        std::fprintf(stderr, "fuzz_http: no end of the response 20 s after the request\n");
        std::abort();
      }
      break;  // reset by the server: fine
    }
  }
  ::close(fd);
  return 0;
}
