// One renderer per template family (internal to src/chat). Each mirrors one real Jinja template,
// cited at its definition, and is checked byte for byte against transformers. Callers have already
// validated the conversation: non-empty, known roles, valid UTF-8 (see ChatTemplate::render).
#pragma once

#include <string_view>
#include <vector>

#include "chat/chat_template.h"
#include "util/expected.h"

namespace edgellm::chat_detail {

// ChatML, one turn per message, no default system prompt (the common "chatml" template).
RenderedPrompt render_chatml(const std::vector<ChatMessage>& messages, const ChatOptions& opts);
// Qwen 1.5 / 2 / 2.5 (without tools): ChatML plus `default_system` when messages[0] is not a system turn.
RenderedPrompt render_qwen2(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                            std::string_view default_system);
// Qwen 1: make_context(chat_format="chatml"); turns joined by '\n', default system prompt.
Expected<RenderedPrompt> render_qwen1(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                                      std::string_view default_system);
// Qwen3 (qwen3.jinja): reasoning kept only after the last user query; enable_thinking=false.
RenderedPrompt render_qwen3(const std::vector<ChatMessage>& messages, const ChatOptions& opts);

// Llama 2 chat: [INST] <<SYS>> ... [/INST]; roles must alternate.
Expected<RenderedPrompt> render_llama2(const std::vector<ChatMessage>& messages, const ChatOptions& opts);
// Llama 3 Instruct (llama-3-instruct.jinja).
RenderedPrompt render_llama3(const std::vector<ChatMessage>& messages, const ChatOptions& opts);
// Llama 3.1 / 3.2 Instruct without tools: a system block with the knowledge cutoff and `date`.
RenderedPrompt render_llama31(const std::vector<ChatMessage>& messages, const ChatOptions& opts,
                              std::string_view date);

}  // namespace edgellm::chat_detail
