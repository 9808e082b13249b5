// LoRA adapters as GGUF files (llama.cpp's adapter format) against a tiny Qwen2 base: metadata, tensor pairs
// and their shapes checked against the base model's weights. Seeds: adapters for the tiny base, fitting and not.
#include "fuzz_support.h"

#include "model/lora.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto model = edgellm::fuzz::tiny_model();
  const std::string path = edgellm::fuzz::write_input("adapter.gguf", data, size);
  (void)edgellm::LoraAdapter::load(path, model->model());
  return 0;
}
