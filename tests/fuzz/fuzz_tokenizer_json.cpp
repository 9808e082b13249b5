// Hugging Face tokenizer.json: the model (BPE vocab and merges), added tokens, normalizer, pre-tokenizer split
// regexes; then an encode of mixed text and a decode of every id. Seeds: the real Qwen/Llama tokenizers kept in
// tests/data and the trained fixtures'.
#include "fuzz_support.h"

#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = edgellm::fuzz::write_input("tokenizer.json", data, size);
  auto tok = edgellm::Tokenizer::from_tokenizer_json(path);
  if (tok.ok()) {
    auto ids = (*tok)->encode("Hello, wörld!\n  12345 你好 <|im_start|>user\xF0\x9F\x98\x80", true);
    if (ids.ok()) (void)(*tok)->decode(*ids);
    std::vector<int32_t> all;
    for (int32_t i = 0; i < (*tok)->n_vocab() && i < 4096; ++i) all.push_back(i);
    (void)(*tok)->decode(all);
  }
  return 0;
}
