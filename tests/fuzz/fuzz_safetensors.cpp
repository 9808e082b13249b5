// A safetensors file: the 8-byte header length, the JSON header (dtypes, shapes, data offsets, __metadata__)
// and the offsets checked against the file. Seeds: synthetic Hugging Face checkpoints.
#include "fuzz_support.h"

#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = edgellm::fuzz::write_input("model.safetensors", data, size);
  auto st = edgellm::Safetensors::open(path);
  if (st.ok()) {
    size_t total = 0;
    for (const auto& t : st->tensors()) total += t.ref.size_bytes;
    (void)total;
  }
  return 0;
}
