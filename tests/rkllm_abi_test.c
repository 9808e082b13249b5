/* rkllm.h compiled as C: every member of the RKLLM-compatible structs sits at the offset the
 * vendor's v1.3.0 header gives it (../shared/specs/rkllm-api.md §4: declaration order, types, sizes
 * on aarch64 = LP64 and armhf = ILP32), the enum values and macros match §1-§2, and
 * rkllm_createDefaultParam returns the documented defaults. Links librkllmrt.so. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rkllm.h"

static int g_failures = 0;

static void check_eq(const char* what, long got, long expected) {
  if (got != expected) {
    fprintf(stderr, "FAIL %s: got %ld, expected %ld\n", what, got, expected);
    ++g_failures;
  }
}

/* Offsets for LP64 (x86-64, aarch64) and ILP32 (armhf). */
#define LP64 (sizeof(void*) == 8)
#define OFF(type, member, lp64, ilp32) \
  check_eq("offsetof(" #type ", " #member ")", (long)offsetof(type, member), LP64 ? (lp64) : (ilp32))
#define SIZE(type, lp64, ilp32) check_eq("sizeof(" #type ")", (long)sizeof(type), LP64 ? (lp64) : (ilp32))
#define MSIZE(type, member, bytes) \
  check_eq("sizeof(" #type "." #member ")", (long)sizeof(((type*)0)->member), (bytes))
#define VALUE(name, expected) check_eq(#name, (long)(name), (expected))

static void check_layouts(void) {
  const long P = (long)sizeof(void*);

  OFF(RKLLMExtendParam, base_domain_id, 0, 0);
  OFF(RKLLMExtendParam, embed_flash, 4, 4);
  OFF(RKLLMExtendParam, enabled_cpus_num, 5, 5);
  OFF(RKLLMExtendParam, enabled_cpus_mask, 8, 8);
  OFF(RKLLMExtendParam, n_batch, 12, 12);
  OFF(RKLLMExtendParam, use_cross_attn, 13, 13);
  OFF(RKLLMExtendParam, reserved, 14, 14);
  MSIZE(RKLLMExtendParam, reserved, 104);
  SIZE(RKLLMExtendParam, 120, 120);

  OFF(RKLLMParam, model_path, 0, 0);
  OFF(RKLLMParam, max_context_len, 8, 4);
  OFF(RKLLMParam, max_new_tokens, 12, 8);
  OFF(RKLLMParam, top_k, 16, 12);
  OFF(RKLLMParam, n_keep, 20, 16);
  OFF(RKLLMParam, top_p, 24, 20);
  OFF(RKLLMParam, temperature, 28, 24);
  OFF(RKLLMParam, repeat_penalty, 32, 28);
  OFF(RKLLMParam, frequency_penalty, 36, 32);
  OFF(RKLLMParam, presence_penalty, 40, 36);
  OFF(RKLLMParam, mirostat, 44, 40);
  OFF(RKLLMParam, mirostat_tau, 48, 44);
  OFF(RKLLMParam, mirostat_eta, 52, 48);
  OFF(RKLLMParam, skip_special_token, 56, 52);
  OFF(RKLLMParam, ignore_eos_token, 57, 53);
  OFF(RKLLMParam, is_async, 58, 54);
  OFF(RKLLMParam, extend_param, 60, 56);
  MSIZE(RKLLMParam, skip_special_token, 1);
  SIZE(RKLLMParam, 184, 176);

  OFF(RKLLMLoraAdapter, lora_adapter_path, 0, 0);
  OFF(RKLLMLoraAdapter, lora_adapter_name, P, P);
  OFF(RKLLMLoraAdapter, scale, 2 * P, 2 * P);
  SIZE(RKLLMLoraAdapter, 24, 12);

  OFF(RKLLMEmbedInput, embed, 0, 0);
  OFF(RKLLMEmbedInput, n_tokens, 8, 4);
  SIZE(RKLLMEmbedInput, 16, 8);
  OFF(RKLLMTokenInput, input_ids, 0, 0);
  OFF(RKLLMTokenInput, n_tokens, 8, 4);
  SIZE(RKLLMTokenInput, 16, 8);

  /* Every member of the image and video parts is a pointer or a size_t: P bytes each. */
  OFF(RKLLMMultiModalInput, prompt, 0, 0);
  OFF(RKLLMMultiModalInput, image, P, P);
  OFF(RKLLMMultiModalInput, image.image_embed, 1 * P, 1 * P);
  OFF(RKLLMMultiModalInput, image.n_image_tokens, 2 * P, 2 * P);
  OFF(RKLLMMultiModalInput, image.n_image, 3 * P, 3 * P);
  OFF(RKLLMMultiModalInput, image.image_start, 4 * P, 4 * P);
  OFF(RKLLMMultiModalInput, image.image_end, 5 * P, 5 * P);
  OFF(RKLLMMultiModalInput, image.image_content, 6 * P, 6 * P);
  OFF(RKLLMMultiModalInput, image.image_width, 7 * P, 7 * P);
  OFF(RKLLMMultiModalInput, image.image_height, 8 * P, 8 * P);
  OFF(RKLLMMultiModalInput, video, 9 * P, 9 * P);
  OFF(RKLLMMultiModalInput, video.video_embed, 9 * P, 9 * P);
  OFF(RKLLMMultiModalInput, video.n_frame_tokens, 10 * P, 10 * P);
  OFF(RKLLMMultiModalInput, video.n_frame_per_video, 11 * P, 11 * P);
  OFF(RKLLMMultiModalInput, video.n_video, 12 * P, 12 * P);
  OFF(RKLLMMultiModalInput, video.video_start, 13 * P, 13 * P);
  OFF(RKLLMMultiModalInput, video.video_end, 14 * P, 14 * P);
  OFF(RKLLMMultiModalInput, video.video_content, 15 * P, 15 * P);
  OFF(RKLLMMultiModalInput, video.frame_width, 16 * P, 16 * P);
  OFF(RKLLMMultiModalInput, video.frame_height, 17 * P, 17 * P);
  SIZE(RKLLMMultiModalInput, 144, 72);

  OFF(RKLLMInput, role, 0, 0);
  OFF(RKLLMInput, enable_thinking, 8, 4);
  OFF(RKLLMInput, input_type, 12, 8);
  OFF(RKLLMInput, prompt_input, 16, 12);
  OFF(RKLLMInput, embed_input, 16, 12);
  OFF(RKLLMInput, token_input, 16, 12);
  OFF(RKLLMInput, multimodal_input, 16, 12);
  MSIZE(RKLLMInput, input_type, 4);
  SIZE(RKLLMInput, 160, 84);

  OFF(RKLLMLoraParam, lora_adapter_name, 0, 0);
  SIZE(RKLLMLoraParam, 8, 4);
  OFF(RKLLMPromptCacheParam, save_prompt_cache, 0, 0);
  OFF(RKLLMPromptCacheParam, prompt_cache_path, 8, 4);
  SIZE(RKLLMPromptCacheParam, 16, 8);

  OFF(RKLLMCrossAttnParam, encoder_k_cache, 0, 0);
  OFF(RKLLMCrossAttnParam, encoder_v_cache, 8, 4);
  OFF(RKLLMCrossAttnParam, encoder_mask, 16, 8);
  OFF(RKLLMCrossAttnParam, encoder_pos, 24, 12);
  OFF(RKLLMCrossAttnParam, num_tokens, 32, 16);
  SIZE(RKLLMCrossAttnParam, 40, 20);

  OFF(RKLLMSamplingParam, top_k, 0, 0);
  OFF(RKLLMSamplingParam, top_p, 4, 4);
  OFF(RKLLMSamplingParam, temperature, 8, 8);
  OFF(RKLLMSamplingParam, repeat_penalty, 12, 12);
  OFF(RKLLMSamplingParam, frequency_penalty, 16, 16);
  OFF(RKLLMSamplingParam, presence_penalty, 20, 20);
  OFF(RKLLMSamplingParam, mirostat, 24, 24);
  OFF(RKLLMSamplingParam, mirostat_tau, 28, 28);
  OFF(RKLLMSamplingParam, mirostat_eta, 32, 32);
  SIZE(RKLLMSamplingParam, 36, 36);

  OFF(RKLLMInferParam, mode, 0, 0);
  OFF(RKLLMInferParam, lora_params, 8, 4);
  OFF(RKLLMInferParam, prompt_cache_params, 16, 8);
  OFF(RKLLMInferParam, sampling_params, 24, 12);
  OFF(RKLLMInferParam, keep_history, 32, 16);
  OFF(RKLLMInferParam, max_new_tokens, 36, 20);
  SIZE(RKLLMInferParam, 40, 24);

  OFF(RKLLMResultLastHiddenLayer, hidden_states, 0, 0);
  OFF(RKLLMResultLastHiddenLayer, embd_size, 8, 4);
  OFF(RKLLMResultLastHiddenLayer, num_tokens, 12, 8);
  SIZE(RKLLMResultLastHiddenLayer, 16, 12);
  OFF(RKLLMResultLogits, logits, 0, 0);
  OFF(RKLLMResultLogits, vocab_size, 8, 4);
  OFF(RKLLMResultLogits, num_tokens, 12, 8);
  SIZE(RKLLMResultLogits, 16, 12);

  OFF(RKLLMPerfStat, prefill_time_ms, 0, 0);
  OFF(RKLLMPerfStat, prefill_tokens, 4, 4);
  OFF(RKLLMPerfStat, generate_time_ms, 8, 8);
  OFF(RKLLMPerfStat, generate_tokens, 12, 12);
  OFF(RKLLMPerfStat, memory_usage_mb, 16, 16);
  SIZE(RKLLMPerfStat, 20, 20);

  OFF(RKLLMResult, text, 0, 0);
  OFF(RKLLMResult, token_id, 8, 4);
  OFF(RKLLMResult, last_hidden_layer, 16, 8);
  OFF(RKLLMResult, logits, 32, 20);
  OFF(RKLLMResult, perf, 48, 32);
  SIZE(RKLLMResult, 72, 52);

  OFF(RKLLMCallback, result_callback, 0, 0);
  OFF(RKLLMCallback, result_userdata, 1 * P, 1 * P);
  OFF(RKLLMCallback, tokenizer_callback, 2 * P, 2 * P);
  OFF(RKLLMCallback, tokenizer_userdata, 3 * P, 3 * P);
  OFF(RKLLMCallback, embed_callback, 4 * P, 4 * P);
  OFF(RKLLMCallback, embed_userdata, 5 * P, 5 * P);
  SIZE(RKLLMCallback, 48, 24);

  SIZE(LLMHandle, 8, 4);
}

static void check_values(void) {
  VALUE(RKLLM_RUN_NORMAL, 0);
  VALUE(RKLLM_RUN_WAITING, 1);
  VALUE(RKLLM_RUN_FINISH, 2);
  VALUE(RKLLM_RUN_ERROR, 3);
  VALUE(RKLLM_INPUT_PROMPT, 0);
  VALUE(RKLLM_INPUT_TOKEN, 1);
  VALUE(RKLLM_INPUT_EMBED, 2);
  VALUE(RKLLM_INPUT_MULTIMODAL, 3);
  VALUE(RKLLM_INFER_GENERATE, 0);
  VALUE(RKLLM_INFER_GET_LAST_HIDDEN_LAYER, 1);
  VALUE(RKLLM_INFER_GET_LOGITS, 2);
  VALUE(CPU0, 1);
  VALUE(CPU1, 2);
  VALUE(CPU2, 4);
  VALUE(CPU3, 8);
  VALUE(CPU4, 16);
  VALUE(CPU5, 32);
  VALUE(CPU6, 64);
  VALUE(CPU7, 128);
  check_eq("sizeof(LLMCallState)", (long)sizeof(LLMCallState), 4);
}

static void check_defaults(void) {
  RKLLMParam p = rkllm_createDefaultParam();
  check_eq("default model_path is NULL", p.model_path == NULL, 1);
  VALUE(p.top_k, 40);
  VALUE(p.n_keep, -1);
  check_eq("default top_p * 100", (long)(p.top_p * 100.0f + 0.5f), 90);
  check_eq("default temperature * 100", (long)(p.temperature * 100.0f + 0.5f), 80);
  check_eq("default repeat_penalty * 100", (long)(p.repeat_penalty * 100.0f + 0.5f), 110);
  check_eq("default frequency_penalty == 0", p.frequency_penalty == 0.0f, 1);
  check_eq("default presence_penalty == 0", p.presence_penalty == 0.0f, 1);
  VALUE(p.mirostat, 0);
  check_eq("default mirostat_tau * 10", (long)(p.mirostat_tau * 10.0f + 0.5f), 50);
  check_eq("default mirostat_eta * 10", (long)(p.mirostat_eta * 10.0f + 0.5f), 1);
  VALUE(p.is_async, 0);
  VALUE(p.extend_param.n_batch, 1);
  VALUE(p.extend_param.enabled_cpus_num, 4);
  VALUE(p.extend_param.use_cross_attn, 0);
}

int main(void) {
  check_layouts();
  check_values();
  check_defaults();
  if (g_failures) {
    fprintf(stderr, "%d ABI check(s) failed\n", g_failures);
    return 1;
  }
  printf("rkllm ABI: all checks passed (%s)\n", LP64 ? "LP64" : "ILP32");
  return 0;
}
