// Qwen 1's qwen.tiktoken (base64 token, rank per line); then an encode and a decode. Seed: the real file's head.
#include "fuzz_support.h"

#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = edgellm::fuzz::write_input("qwen.tiktoken", data, size);
  auto tok = edgellm::Tokenizer::from_tiktoken(path);
  if (tok.ok()) {
    auto ids = (*tok)->encode("Hello, wörld! 12345 你好 <|im_start|>", true);
    if (ids.ok()) (void)(*tok)->decode(*ids);
  }
  return 0;
}
