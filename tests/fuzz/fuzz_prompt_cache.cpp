// Prompt cache files (Session::save_state / load_state: tokens, KV cache rows, the weights' digest) loaded into a
// session of a tiny Qwen2 model; a load that succeeds must leave a session that generates. Seeds: states saved
// with f32 and f16 caches.
#include "fuzz_support.h"

#include "runtime/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto model = edgellm::fuzz::tiny_model();
  static std::unique_ptr<edgellm::Session> session = [&] {
    edgellm::SessionOptions o;
    o.n_ctx = 64;
    auto s = edgellm::Session::create(model, o);
    if (!s.ok()) std::abort();
    return std::move(*s);
  }();
  const std::string path = edgellm::fuzz::write_input("state.bin", data, size);
  session->trim(0);
  if (session->load_state(path).ok()) {
    edgellm::GenerateOptions g;
    g.max_new_tokens = 2;
    (void)session->generate(g, [](std::string_view) { return true; });
  }
  return 0;
}
