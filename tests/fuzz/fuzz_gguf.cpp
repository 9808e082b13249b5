// GGUF model files through the whole loader: the reader (header, metadata, tensor infos, data offsets), the
// architecture's config and tensor binding, the tokenizer and chat template stored in the file, and a first
// tokenization. Seeds: synthetic models of every architecture and the tokenizer-bearing fixtures.
#include "fuzz_support.h"

#include "runtime/loaded_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = edgellm::fuzz::write_input("input.gguf", data, size);
  edgellm::LoadOptions o;
  o.n_threads = 1;
  o.check_memory = false;
  auto model = edgellm::LoadedModel::load(path, o);
  if (model.ok()) {
    auto ids = (*model)->tokenizer().encode("Hello, wörld! 你好 <|im_start|>", true);
    if (ids.ok()) (void)(*model)->tokenizer().decode(*ids);
  }
  return 0;
}
