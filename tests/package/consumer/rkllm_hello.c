/* An RKLLM-style program (vendor API, rkllm.h) against edgellm's librkllmrt.so: one chat turn, greedy,
 * pieces printed as they come. Usage: rkllm_hello MODEL PROMPT N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rkllm.h>

static int on_result(RKLLMResult* result, void* userdata, LLMCallState state) {
  (void)userdata;
  if (state == RKLLM_RUN_NORMAL) fputs(result->text, stdout);
  if (state == RKLLM_RUN_ERROR) fprintf(stderr, "run error\n");
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL PROMPT N\n", argv[0]);
    return 2;
  }
  RKLLMParam p = rkllm_createDefaultParam();
  p.model_path = argv[1];
  p.max_new_tokens = atoi(argv[3]);
  p.max_context_len = 256;
  p.top_k = 1;
  p.temperature = 0.0f;
  RKLLMCallback cb;
  memset(&cb, 0, sizeof cb);
  cb.result_callback = on_result;
  LLMHandle h = NULL;
  if (rkllm_init(&h, &p, &cb) != 0) return 1;
  RKLLMInput in;
  memset(&in, 0, sizeof in);
  in.role = "user";
  in.input_type = RKLLM_INPUT_PROMPT;
  in.prompt_input = argv[2];
  RKLLMInferParam ip;
  memset(&ip, 0, sizeof ip);
  ip.mode = RKLLM_INFER_GENERATE;
  int rc = rkllm_run(h, &in, &ip, NULL);
  printf("\nrkllm_run: %d\n", rc);
  rkllm_destroy(h);
  return rc == 0 ? 0 : 1;
}
