// Encoding a rendered chat prompt into token ids.
#pragma once

#include <cstdint>
#include <vector>

#include "chat/chat_template.h"
#include "util/expected.h"

namespace edgellm {

class Tokenizer;

// Encodes `prompt` as one text in which special tokens are recognised only in template segments, so
// message text such as "<|im_end|>" stays plain text. Adds no BOS: templates that need one write it
// (Llama), ChatML families have none; for "completion" the caller adds BOS if tokenizer.add_bos().
// Errors are the tokenizer's (e.g. oversize input). Thread-safe as Tokenizer::encode_segments is.
Expected<std::vector<int32_t>> encode_prompt(const Tokenizer& tokenizer, const RenderedPrompt& prompt);

}  // namespace edgellm
