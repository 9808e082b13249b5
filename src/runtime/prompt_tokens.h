// The token sequence a model sees for a request: a completion prompt, or a conversation rendered with the
// model's own chat template. Shared by sessions (runtime/session.h) and the serving engine's callers.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "chat/chat_template.h"
#include "runtime/loaded_model.h"
#include "util/expected.h"

namespace edgellm {

// `prompt` tokenized (special-token texts become control tokens only with allow_special), BOS first if
// the model wants one. Errors: invalid UTF-8 (kInvalidArgument), an empty result.
Expected<std::vector<int32_t>> completion_tokens(const LoadedModel& model, std::string_view prompt, bool allow_special);

// `messages` rendered with the model's chat template (message text never becomes control tokens).
// Errors: what the template cannot render (kUnsupported), invalid UTF-8.
Expected<std::vector<int32_t>> chat_tokens(const LoadedModel& model, const std::vector<ChatMessage>& messages,
                                           const ChatOptions& options);

}  // namespace edgellm
