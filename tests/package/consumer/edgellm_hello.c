/* Loads MODEL with the C API (edgellm.h), completes PROMPT greedily with N new tokens and prints the text.
 * Usage: edgellm_hello MODEL PROMPT N */
#include <stdio.h>
#include <stdlib.h>

#include <edgellm/edgellm.h>

static int32_t print_piece(edgellm_event event, const char* text, size_t len, void* user_data) {
  (void)user_data;
  if (event == EDGELLM_EVENT_TEXT) fwrite(text, 1, len, stdout);
  if (event == EDGELLM_EVENT_ERROR) fprintf(stderr, "error: %.*s\n", (int)len, text);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s MODEL PROMPT N\n", argv[0]);
    return 2;
  }
  edgellm_model_params mp = edgellm_model_default_params();
  mp.n_threads = 1;
  edgellm_model* model = NULL;
  if (edgellm_model_load(argv[1], &mp, &model) != EDGELLM_OK) {
    fprintf(stderr, "load: %s\n", edgellm_last_error());
    return 1;
  }
  edgellm_session* session = NULL;
  edgellm_session_params sp = edgellm_session_default_params();
  if (edgellm_session_create(model, &sp, &session) != EDGELLM_OK) {
    fprintf(stderr, "session: %s\n", edgellm_last_error());
    return 1;
  }
  edgellm_generate_params gp = edgellm_generate_default_params(model);
  gp.sampling.temperature = 0.0f;
  gp.max_new_tokens = atoi(argv[3]);
  gp.ignore_stop_tokens = 1;
  edgellm_status st = edgellm_session_complete(session, argv[2], &gp, print_piece, NULL);
  printf("\n");
  edgellm_session_free(session);
  edgellm_model_free(model);
  printf("edgellm %s: %s\n", edgellm_version(), edgellm_status_name(st));
  return st == EDGELLM_OK ? 0 : 1;
}
