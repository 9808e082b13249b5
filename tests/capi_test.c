/* The C API (edgellm.h) used from C99: streaming protocol, errors mid-run, abort from another thread,
 * async runs, parallel sessions, bad input, multi-turn KV reuse, history limits and prompt caches.
 * Linked with libedgellm.so. The models are written by `$EDGELLM_BIN synth` into a temporary
 * directory. Prints one line per failed check and exits non-zero if any failed. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, nanosleep, clock_gettime */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "edgellm/edgellm.h"

static int g_failures = 0;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #cond);     \
      ++g_failures;                                                       \
    }                                                                     \
  } while (0)
#define CHECK_STATUS(call, expected)                                                               \
  do {                                                                                             \
    edgellm_status st_ = (call);                                                                   \
    if (st_ != (expected)) {                                                                       \
      fprintf(stderr, "%s:%d: FAIL %s returned %s, expected %s\n", __FILE__, __LINE__, #call,      \
              edgellm_status_name(st_), edgellm_status_name(expected));                            \
      ++g_failures;                                                                                \
    }                                                                                              \
  } while (0)

/* ---- collecting what the callback receives ---- */

typedef struct {
  char* text; /* TEXT pieces concatenated, NUL-terminated */
  size_t len;
  char* final_text; /* FINISH text or ERROR message */
  int n_text, n_finish, n_error;
  int events_after_end; /* anything after FINISH/ERROR (must stay 0) */
  int stop_after;       /* return 1 after this many TEXT events (0: never) */
} Collector;

static void collector_init(Collector* c) {
  memset(c, 0, sizeof *c);
  c->text = calloc(1, 1);
  c->final_text = calloc(1, 1);
}

static void collector_free(Collector* c) {
  free(c->text);
  free(c->final_text);
}

static int32_t collect(edgellm_event event, const char* text, size_t len, void* user_data) {
  Collector* c = (Collector*)user_data;
  if (c->n_finish + c->n_error > 0) ++c->events_after_end;
  if (event == EDGELLM_EVENT_TEXT) {
    c->text = realloc(c->text, c->len + len + 1);
    memcpy(c->text + c->len, text, len);
    c->len += len;
    c->text[c->len] = '\0';
    ++c->n_text;
    return c->stop_after > 0 && c->n_text >= c->stop_after ? 1 : 0;
  }
  free(c->final_text);
  c->final_text = malloc(len + 1);
  memcpy(c->final_text, text, len);
  c->final_text[len] = '\0';
  if (event == EDGELLM_EVENT_FINISH) ++c->n_finish;
  if (event == EDGELLM_EVENT_ERROR) ++c->n_error;
  return 0;
}

/* ---- fixtures ---- */

static char g_dir[256];
static char g_model_a[300]; /* tiny qwen2, seed 42 */
static char g_model_b[300]; /* same shapes, seed 7: another model for prompt-cache checks */

static int synth(const char* path, int seed) {
  const char* bin = getenv("EDGELLM_BIN");
  char cmd[1024];
  if (!bin) {
    fprintf(stderr, "EDGELLM_BIN is not set\n");
    return 0;
  }
  snprintf(cmd, sizeof cmd, "'%s' synth --preset tiny --seed %d -o '%s' >/dev/null", bin, seed, path);
  return system(cmd) == 0;
}

static edgellm_model* load(const char* path) {
  edgellm_model* m = NULL;
  edgellm_model_params mp = edgellm_model_default_params();
  mp.n_threads = 2;
  if (edgellm_model_load(path, &mp, &m) != EDGELLM_OK) {
    fprintf(stderr, "cannot load %s: %s\n", path, edgellm_last_error());
    exit(1);
  }
  return m;
}

static edgellm_session* open_session(edgellm_model* m, int32_t n_ctx) {
  edgellm_session* s = NULL;
  edgellm_session_params sp = edgellm_session_default_params();
  sp.n_ctx = n_ctx;
  if (edgellm_session_create(m, &sp, &s) != EDGELLM_OK) {
    fprintf(stderr, "cannot create a session: %s\n", edgellm_model_last_error(m));
    exit(1);
  }
  return s;
}

/* Greedy, a fixed length: runs are reproducible and long enough to show differences. */
static edgellm_generate_params greedy(edgellm_model* m, int32_t max_new_tokens) {
  edgellm_generate_params gp = edgellm_generate_default_params(m);
  edgellm_sampling_preset("greedy", &gp.sampling);
  gp.max_new_tokens = max_new_tokens;
  gp.ignore_stop_tokens = 1;
  return gp;
}

/* The text a fresh session completes `prompt` with. */
static char* fresh_completion(edgellm_model* m, const char* prompt, int32_t n) {
  edgellm_session* s = open_session(m, 256);
  edgellm_generate_params gp = greedy(m, n);
  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, prompt, &gp, collect, &c), EDGELLM_OK);
  edgellm_session_free(s);
  free(c.final_text);
  return c.text;
}

/* ---- streaming ---- */

static void test_streaming(edgellm_model* m) {
  edgellm_session* s = open_session(m, 256);
  edgellm_generate_params gp = greedy(m, 24);
  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat(s, "Tell me a story.", &gp, collect, &c), EDGELLM_OK);
  CHECK(c.n_finish == 1);
  CHECK(c.n_error == 0);
  CHECK(c.events_after_end == 0);
  CHECK(strcmp(c.text, c.final_text) == 0); /* TEXT pieces add up to the FINISH text */
  edgellm_perf perf;
  CHECK_STATUS(edgellm_session_get_perf(s, &perf), EDGELLM_OK);
  CHECK(perf.decode_tokens == 24);
  CHECK(strcmp(perf.finish_reason, "length") == 0);
  collector_free(&c);

  /* Completion, and a callback that stops early: still exactly one FINISH. */
  collector_init(&c);
  c.stop_after = 2;
  CHECK_STATUS(edgellm_session_complete(s, "Once upon a time", &gp, collect, &c), EDGELLM_OK);
  CHECK(c.n_text == 2);
  CHECK(c.n_finish == 1 && c.n_error == 0);
  CHECK(strcmp(c.text, c.final_text) == 0);
  CHECK_STATUS(edgellm_session_get_perf(s, &perf), EDGELLM_OK);
  CHECK(strcmp(perf.finish_reason, "callback") == 0);
  collector_free(&c);
  edgellm_session_free(s);
}

/* ---- an error inside a run: ERROR once, and the session works afterwards ---- */

static void test_error_mid_run(edgellm_model* m) {
  edgellm_session* s = open_session(m, 64);
  edgellm_generate_params gp = greedy(m, 8);
  char long_prompt[4096];
  size_t i;
  for (i = 0; i + 1 < sizeof long_prompt; ++i) long_prompt[i] = (char)('a' + i % 26);
  long_prompt[sizeof long_prompt - 1] = '\0';

  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, long_prompt, &gp, collect, &c), EDGELLM_ERROR_CONTEXT_FULL);
  CHECK(c.n_error == 1 && c.n_finish == 0 && c.n_text == 0);
  CHECK(strlen(c.final_text) > 0);
  CHECK(strcmp(c.final_text, edgellm_session_last_error(s)) == 0);
  collector_free(&c);

  /* The same through chat (the template adds tokens). */
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat(s, long_prompt, &gp, collect, &c), EDGELLM_ERROR_CONTEXT_FULL);
  CHECK(c.n_error == 1 && c.n_finish == 0);
  CHECK(edgellm_session_history_size(s) == 0); /* the failed turn is not kept */
  collector_free(&c);

  /* Still usable, and unaffected: the same answer as a fresh session. */
  char* expected = fresh_completion(m, "Hello", 8);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, "Hello", &gp, collect, &c), EDGELLM_OK);
  CHECK(c.n_finish == 1 && c.n_error == 0);
  CHECK(strcmp(c.text, expected) == 0);
  collector_free(&c);
  free(expected);
  edgellm_session_free(s);
}

/* ---- abort from another thread ---- */

typedef struct {
  edgellm_session* session;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int first_text_seen; /* guarded by mu */
  int aborted;         /* guarded by mu */
  int texts_after_abort;
  int n_finish, n_error;
} AbortState;

/* Blocks the generating thread at its first TEXT until the other thread has called abort, so the
 * test knows exactly where generation stood when abort came. */
static int32_t abort_callback(edgellm_event event, const char* text, size_t len, void* user_data) {
  AbortState* a = (AbortState*)user_data;
  (void)text;
  (void)len;
  if (event == EDGELLM_EVENT_FINISH) ++a->n_finish;
  if (event == EDGELLM_EVENT_ERROR) ++a->n_error;
  if (event != EDGELLM_EVENT_TEXT) return 0;
  pthread_mutex_lock(&a->mu);
  if (a->aborted) {
    ++a->texts_after_abort;
  } else {
    a->first_text_seen = 1;
    pthread_cond_broadcast(&a->cv);
    while (!a->aborted) pthread_cond_wait(&a->cv, &a->mu);
  }
  pthread_mutex_unlock(&a->mu);
  return 0;
}

static void* aborter(void* arg) {
  AbortState* a = (AbortState*)arg;
  pthread_mutex_lock(&a->mu);
  while (!a->first_text_seen) pthread_cond_wait(&a->cv, &a->mu);
  edgellm_session_abort(a->session);
  a->aborted = 1;
  pthread_cond_broadcast(&a->cv);
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static void test_abort(edgellm_model* m) {
  edgellm_session* s = open_session(m, 256);
  edgellm_generate_params gp = greedy(m, 200);

  /* Where generation stands at the first TEXT: a callback that stops there. */
  Collector c;
  collector_init(&c);
  c.stop_after = 1;
  CHECK_STATUS(edgellm_session_complete(s, "The quick brown fox", &gp, collect, &c), EDGELLM_OK);
  edgellm_perf perf;
  edgellm_session_get_perf(s, &perf);
  const int64_t tokens_at_first_text = perf.decode_tokens;
  collector_free(&c);

  AbortState a;
  memset(&a, 0, sizeof a);
  a.session = s;
  pthread_mutex_init(&a.mu, NULL);
  pthread_cond_init(&a.cv, NULL);
  pthread_t thread;
  pthread_create(&thread, NULL, aborter, &a);
  CHECK_STATUS(edgellm_session_complete(s, "The quick brown fox", &gp, abort_callback, &a), EDGELLM_ERROR_ABORTED);
  pthread_join(thread, NULL);
  CHECK(a.n_error == 1 && a.n_finish == 0);
  CHECK(a.texts_after_abort <= 1); /* at most the flush of bytes decoded before the abort */
  edgellm_session_get_perf(s, &perf);
  CHECK(perf.decode_tokens <= tokens_at_first_text + 1); /* stopped within one step */
  CHECK(strcmp(perf.finish_reason, "aborted") == 0);
  CHECK(edgellm_session_is_running(s) == 0);
  pthread_cond_destroy(&a.cv);
  pthread_mutex_destroy(&a.mu);

  /* The session works afterwards and gives what a fresh one gives. */
  char* expected = fresh_completion(m, "Hello", 8);
  edgellm_generate_params gp8 = greedy(m, 8);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, "Hello", &gp8, collect, &c), EDGELLM_OK);
  CHECK(strcmp(c.text, expected) == 0);
  collector_free(&c);
  free(expected);
  edgellm_session_free(s);
}

/* An abort while nothing runs is a no-op: it must not stop the next run. */
static void test_abort_when_idle(edgellm_model* m) {
  edgellm_session* s = open_session(m, 256);
  edgellm_generate_params gp = greedy(m, 8);
  Collector c;
  collector_init(&c);
  edgellm_session_abort(s);
  CHECK_STATUS(edgellm_session_complete(s, "Hello", &gp, collect, &c), EDGELLM_OK);
  CHECK(c.n_finish == 1 && c.n_error == 0);
  collector_free(&c);
  edgellm_session_free(s);
}

/* ---- asynchronous runs ---- */

static void sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  nanosleep(&ts, NULL);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void test_async(edgellm_model* m) {
  edgellm_session* s = open_session(m, 256);
  edgellm_generate_params gp = greedy(m, 16);
  char* expected = fresh_completion(m, "Hello", 16);
  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete_async(s, "Hello", &gp, collect, &c), EDGELLM_OK);
  CHECK_STATUS(edgellm_session_wait(s), EDGELLM_OK);
  CHECK(edgellm_session_is_running(s) == 0);
  CHECK(c.n_finish == 1 && c.n_error == 0);
  CHECK(strcmp(c.text, expected) == 0);
  CHECK_STATUS(edgellm_session_wait(s), EDGELLM_OK); /* nothing running: OK */
  collector_free(&c);

  /* Async chat, aborted from this thread while it runs. */
  edgellm_generate_params gp_long = greedy(m, 100000);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat_async(s, "Go on forever", &gp_long, collect, &c), EDGELLM_OK);
  const double start = now_ms();
  while (!edgellm_session_is_running(s) && now_ms() - start < 5000) sleep_ms(1);
  edgellm_session_abort(s);
  const edgellm_status st = edgellm_session_wait(s);
  /* Aborted, or (on a very fast machine) ended by the full context first. */
  CHECK(st == EDGELLM_ERROR_ABORTED || st == EDGELLM_OK);
  CHECK(c.n_finish + c.n_error == 1);
  collector_free(&c);
  free(expected);
  edgellm_session_free(s);
}

/* ---- two sessions on one model, in parallel ---- */

typedef struct {
  edgellm_model* model;
  const char* prompt;
  char* text;
  edgellm_status status;
} ParallelRun;

static void* parallel_run(void* arg) {
  ParallelRun* r = (ParallelRun*)arg;
  edgellm_session* s = open_session(r->model, 256);
  edgellm_generate_params gp = greedy(r->model, 32);
  Collector c;
  collector_init(&c);
  r->status = edgellm_session_complete(s, r->prompt, &gp, collect, &c);
  r->text = c.text;
  free(c.final_text);
  edgellm_session_free(s);
  return NULL;
}

static void test_parallel_sessions(edgellm_model* m) {
  char* alone_a = fresh_completion(m, "First prompt", 32);
  char* alone_b = fresh_completion(m, "A different second prompt", 32);
  ParallelRun runs[2] = {{m, "First prompt", NULL, EDGELLM_OK}, {m, "A different second prompt", NULL, EDGELLM_OK}};
  pthread_t threads[2];
  int i;
  for (i = 0; i < 2; ++i) pthread_create(&threads[i], NULL, parallel_run, &runs[i]);
  for (i = 0; i < 2; ++i) pthread_join(threads[i], NULL);
  CHECK(runs[0].status == EDGELLM_OK && runs[1].status == EDGELLM_OK);
  CHECK(strcmp(runs[0].text, alone_a) == 0);
  CHECK(strcmp(runs[1].text, alone_b) == 0);
  for (i = 0; i < 2; ++i) free(runs[i].text);
  free(alone_a);
  free(alone_b);
}

/* ---- bad input ---- */

static void test_bad_input(edgellm_model* m) {
  edgellm_model* none = NULL;
  edgellm_session* s = open_session(m, 64);
  edgellm_generate_params gp = greedy(m, 4);
  Collector c;

  /* NULL pointers: an error status, never a crash. */
  CHECK_STATUS(edgellm_model_load(NULL, NULL, &none), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(none == NULL);
  CHECK(strlen(edgellm_last_error()) > 0);
  CHECK_STATUS(edgellm_model_load(g_model_a, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_load("/nonexistent/model.gguf", NULL, &none), EDGELLM_ERROR_IO);
  CHECK(strstr(edgellm_last_error(), "/nonexistent/model.gguf") != NULL);
  CHECK_STATUS(edgellm_session_create(NULL, NULL, &s), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(s != NULL); /* untouched */
  CHECK_STATUS(edgellm_session_create(m, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_chat(NULL, "hi", &gp, collect, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_chat(s, NULL, &gp, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_complete(s, NULL, &gp, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat(s, "hi", NULL, collect, &c), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(c.n_finish == 0);
  collector_free(&c);
  CHECK_STATUS(edgellm_session_complete_async(s, NULL, &gp, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_chat_async(NULL, "hi", &gp, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_prefill(s, NULL, 3), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_generate(NULL, &gp, NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_save_state(s, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_load_state(s, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_add_message(s, NULL, "x"), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_add_message(s, "wizard", "x"), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_tokenize(m, NULL, 5, 0, NULL, 0, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_model_get_info(NULL, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_session_get_perf(s, NULL), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK_STATUS(edgellm_sampling_preset(NULL, &gp.sampling), EDGELLM_ERROR_INVALID_ARGUMENT);
  edgellm_session_abort(NULL);
  edgellm_session_free(NULL);
  edgellm_model_free(NULL);
  CHECK(edgellm_session_is_running(NULL) == 0);

  /* Unknown names. */
  edgellm_sampling_params sp;
  CHECK_STATUS(edgellm_sampling_preset("no-such-preset", &sp), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(edgellm_last_error(), "no-such-preset") != NULL);
  edgellm_model_params mp = edgellm_model_default_params();
  mp.chat_template = "no-such-template";
  CHECK(edgellm_model_load(g_model_a, &mp, &none) != EDGELLM_OK);
  CHECK(none == NULL);
  CHECK(strstr(edgellm_last_error(), "no-such-template") != NULL);

  /* Invalid UTF-8 and bad parameters: ERROR through the callback, a status, a message. */
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat(s, "caf\xc3\x28 \xff", &gp, collect, &c), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(c.n_error == 1 && c.n_finish == 0);
  CHECK(strstr(edgellm_session_last_error(s), "UTF-8") != NULL);
  collector_free(&c);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, "\xe2\x82", &gp, collect, &c), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(c.n_error == 1);
  collector_free(&c);
  edgellm_generate_params bad = gp;
  bad.sampling.top_p = -3.0f;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, "Hello", &bad, collect, &c), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(c.n_error == 1);
  collector_free(&c);
  bad = gp;
  bad.max_new_tokens = -1;
  CHECK(edgellm_session_complete(s, "Hello", &bad, NULL, NULL) == EDGELLM_ERROR_INVALID_ARGUMENT);
  bad = gp;
  bad.n_stop_strings = 2;
  bad.stop_strings = NULL;
  CHECK(edgellm_session_complete(s, "Hello", &bad, NULL, NULL) == EDGELLM_ERROR_INVALID_ARGUMENT);
  int32_t out_of_range[2] = {5, 1 << 30};
  CHECK(edgellm_session_prefill(s, out_of_range, 2) != EDGELLM_OK);
  size_t n = 0;
  CHECK_STATUS(edgellm_detokenize(m, out_of_range, 2, NULL, 0, &n), EDGELLM_ERROR_INVALID_ARGUMENT);

  /* Still usable. */
  char* expected = fresh_completion(m, "Hello", 4);
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, "Hello", &gp, collect, &c), EDGELLM_OK);
  CHECK(strcmp(c.text, expected) == 0);
  collector_free(&c);
  free(expected);
  edgellm_session_free(s);
}

/* ---- multi-turn chat ---- */

static char* chat_turn(edgellm_session* s, const char* message, const edgellm_generate_params* gp, edgellm_perf* perf) {
  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_chat(s, message, gp, collect, &c), EDGELLM_OK);
  CHECK(c.n_finish == 1);
  if (perf) edgellm_session_get_perf(s, perf);
  free(c.final_text);
  return c.text;
}

static void test_multi_turn(edgellm_model* m) {
  const char* turns[3] = {"Hi there", "What is your name?", "Tell me more."};
  edgellm_generate_params gp = greedy(m, 12);
  edgellm_session* s = open_session(m, 512);
  edgellm_perf perf[3];
  char* replies[3];
  int i;
  CHECK_STATUS(edgellm_session_set_system_prompt(s, "You are terse."), EDGELLM_OK);
  for (i = 0; i < 3; ++i) replies[i] = chat_turn(s, turns[i], &gp, &perf[i]);
  CHECK(edgellm_session_history_size(s) == 6);
  /* Each later turn reuses at least the whole previous prompt. */
  CHECK(perf[1].reused_tokens >= perf[0].prompt_tokens);
  CHECK(perf[2].reused_tokens >= perf[1].prompt_tokens);
  CHECK(perf[1].prefill_tokens == perf[1].prompt_tokens - perf[1].reused_tokens);

  /* One prefill of the whole transcript gives the same third answer. */
  edgellm_session* t = open_session(m, 512);
  edgellm_session_set_system_prompt(t, "You are terse.");
  edgellm_session_add_message(t, "user", turns[0]);
  edgellm_session_add_message(t, "assistant", replies[0]);
  edgellm_session_add_message(t, "user", turns[1]);
  edgellm_session_add_message(t, "assistant", replies[1]);
  edgellm_perf whole;
  char* third = chat_turn(t, turns[2], &gp, &whole);
  CHECK(strcmp(third, replies[2]) == 0);
  CHECK(whole.reused_tokens == 0 && whole.prefill_tokens == perf[2].prompt_tokens);
  free(third);
  edgellm_session_free(t);
  for (i = 0; i < 3; ++i) free(replies[i]);
  edgellm_session_free(s);

  /* With one-token answers the sampled token is never in the cache, so turn 2 prefills exactly
   * its new tokens: everything after turn 1's prompt. */
  edgellm_generate_params one = greedy(m, 1);
  s = open_session(m, 512);
  for (i = 0; i < 2; ++i) free(chat_turn(s, turns[i], &one, &perf[i]));
  CHECK(perf[1].reused_tokens == perf[0].prompt_tokens);
  CHECK(perf[1].prefill_tokens == perf[1].prompt_tokens - perf[0].prompt_tokens);
  edgellm_session_free(s);
}

static void test_history_limits(edgellm_model* m) {
  const char* turns[4] = {"one", "two", "three", "four"};
  edgellm_generate_params gp = greedy(m, 4);
  edgellm_session* s = open_session(m, 512);
  const char* role;
  const char* content;
  int i;
  CHECK_STATUS(edgellm_session_set_system_prompt(s, "System."), EDGELLM_OK);
  CHECK_STATUS(edgellm_session_set_history_limit(s, 2, 0), EDGELLM_OK);
  edgellm_perf perf;
  for (i = 0; i < 4; ++i) free(chat_turn(s, turns[i], &gp, &perf));
  /* Only the last two rounds, whole, starting with a user message. */
  CHECK(edgellm_session_history_size(s) == 4);
  CHECK_STATUS(edgellm_session_history_message(s, 0, &role, &content), EDGELLM_OK);
  CHECK(strcmp(role, "user") == 0 && strcmp(content, "three") == 0);
  CHECK_STATUS(edgellm_session_history_message(s, 1, &role, &content), EDGELLM_OK);
  CHECK(strcmp(role, "assistant") == 0);
  CHECK_STATUS(edgellm_session_history_message(s, 2, &role, &content), EDGELLM_OK);
  CHECK(strcmp(role, "user") == 0 && strcmp(content, "four") == 0);
  /* Dropping a round re-prefills from the first changed token: the system prompt stays cached. */
  CHECK(perf.reused_tokens > 0);
  CHECK_STATUS(edgellm_session_set_history_limit(s, -1, 0), EDGELLM_ERROR_INVALID_ARGUMENT);
  edgellm_session_free(s);
}

/* ---- prompt cache ---- */

static void test_prompt_cache(edgellm_model* a, edgellm_model* b) {
  char path[400], corrupt[400];
  snprintf(path, sizeof path, "%s/prefix.kv", g_dir);
  snprintf(corrupt, sizeof corrupt, "%s/corrupt.kv", g_dir);
  const char* prefix = "You are a helpful assistant. Answer briefly.";
  const char* prompt = "You are a helpful assistant. Answer briefly. What is two and two?";
  edgellm_generate_params prefill_only = greedy(a, 0);
  edgellm_generate_params gp = greedy(a, 16);

  edgellm_session* s = open_session(a, 256);
  CHECK_STATUS(edgellm_session_save_state(s, path), EDGELLM_ERROR_INVALID_ARGUMENT); /* nothing cached yet */
  CHECK_STATUS(edgellm_session_complete(s, prefix, &prefill_only, NULL, NULL), EDGELLM_OK);
  const int32_t n_prefix = edgellm_session_n_cached(s);
  CHECK(n_prefix > 0);
  CHECK_STATUS(edgellm_session_save_state(s, path), EDGELLM_OK);
  edgellm_session_free(s);

  char* expected = fresh_completion(a, prompt, 16);
  s = open_session(a, 256);
  CHECK_STATUS(edgellm_session_load_state(s, path), EDGELLM_OK);
  CHECK(edgellm_session_n_cached(s) == n_prefix);
  Collector c;
  collector_init(&c);
  CHECK_STATUS(edgellm_session_complete(s, prompt, &gp, collect, &c), EDGELLM_OK);
  CHECK(strcmp(c.text, expected) == 0); /* the same continuation */
  edgellm_perf perf;
  edgellm_session_get_perf(s, &perf);
  CHECK(perf.reused_tokens >= n_prefix - 1); /* the loaded prefix was used */
  collector_free(&c);
  edgellm_session_free(s);

  /* A cache of another model is rejected with a message; the session is untouched. */
  edgellm_session* other = open_session(b, 256);
  CHECK_STATUS(edgellm_session_load_state(other, path), EDGELLM_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(edgellm_session_last_error(other), "another model") != NULL);
  CHECK(edgellm_session_n_cached(other) == 0);
  edgellm_session_free(other);

  /* Corrupted files: truncated, bad magic, missing. */
  FILE* in = fopen(path, "rb");
  CHECK(in != NULL);
  if (in) {
    static char bytes[1 << 20];
    const size_t n = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    FILE* out = fopen(corrupt, "wb");
    fwrite(bytes, 1, n / 2, out);
    fclose(out);
    s = open_session(a, 256);
    CHECK_STATUS(edgellm_session_load_state(s, corrupt), EDGELLM_ERROR_FORMAT);
    CHECK(strstr(edgellm_session_last_error(s), corrupt) != NULL);
    bytes[0] = 'X';
    out = fopen(corrupt, "wb");
    fwrite(bytes, 1, n, out);
    fclose(out);
    CHECK_STATUS(edgellm_session_load_state(s, corrupt), EDGELLM_ERROR_FORMAT);
    CHECK_STATUS(edgellm_session_load_state(s, "/nonexistent/cache.kv"), EDGELLM_ERROR_IO);
    /* Still usable. */
    collector_init(&c);
    CHECK_STATUS(edgellm_session_complete(s, prompt, &gp, collect, &c), EDGELLM_OK);
    CHECK(strcmp(c.text, expected) == 0);
    collector_free(&c);
    edgellm_session_free(s);
  }
  free(expected);
}

int main(void) {
  const char* tmp = getenv("TMPDIR");
  snprintf(g_dir, sizeof g_dir, "%s/edgellm_capi_c_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(g_dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(g_model_a, sizeof g_model_a, "%s/a.gguf", g_dir);
  snprintf(g_model_b, sizeof g_model_b, "%s/b.gguf", g_dir);
  if (!synth(g_model_a, 42) || !synth(g_model_b, 7)) {
    fprintf(stderr, "cannot write the tiny models\n");
    return 1;
  }
  edgellm_model* a = load(g_model_a);
  edgellm_model* b = load(g_model_b);

  test_streaming(a);
  test_error_mid_run(a);
  test_abort(a);
  test_abort_when_idle(a);
  test_async(a);
  test_parallel_sessions(a);
  test_bad_input(a);
  test_multi_turn(a);
  test_history_limits(a);
  test_prompt_cache(a, b);

  edgellm_model_free(b);
  edgellm_model_free(a);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_dir);
  if (g_failures) {
    fprintf(stderr, "capi_test: %d check(s) failed\n", g_failures);
    return 1;
  }
  printf("capi_test: all checks passed\n");
  return 0;
}
