// test_llm — the interpreter's LLM clients against a local server (llm_test_server.c) that speaks
// both APIs: request format and headers (the key only in its header), parallel requests, 429 with
// retry-after, 500s with backoff, timeouts on slow and never-ending responses, malformed and
// truncated bodies, the rate limiter, the RocksDB cache, and kill -9 mid-run then rerun (no
// request paid twice); a key bound for plain http off this host is warned about (URL, not key).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "cache.h"
#include "fixture.h"
#include "llm.h"
#include "llm_test_server.h"

#define KEY "sk-ant-test-0123456789-SECRETKEY"

static llm_test_server_t *srv;

// The group's scratch directory (tests/unit/fixture.h) and the test server.
static int setup(void **state) {
  srv = llm_test_server_start(KEY);
  return srv ? fx_setup(state) : -1;
}

static int teardown(void **state) {
  llm_test_server_stop(&srv);
  return fx_teardown(state);
}

static void opts(llm_opts_t *o, llm_api_t api) {
  llm_opts_default(o);
  o->api = api;
  o->base_url = llm_test_server_url(srv);
  o->model = "test-model";
  o->api_key = KEY;
  o->max_tokens = 77;
  o->parallel = 4;
  o->max_retries = 3;
  o->timeout_ms = 3000;
  o->connect_timeout_ms = 1000;
  o->backoff_base_ms = 50;
  o->backoff_max_ms = 2000;
}

// Requests from index `from` on with this prompt, in arrival order: fills times[], returns count.
static size_t arrivals(const char *prompt, size_t from, double *times, size_t cap) {
  size_t n = llm_test_server_n_requests(srv), k = 0;
  for (size_t i = from; i < n; i++) {
    llm_test_request_t r;
    llm_test_server_get(srv, i, &r);
    if (r.prompt && !strcmp(r.prompt, prompt) && k < cap) times[k++] = r.t_arrive;
  }
  return k;
}

static void run1(const llm_opts_t *o, llm_cache_t *cache, llm_call_t *calls, size_t n) {
  llm_client_t *c = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_client_new(&c, o, cache, &err), 0);
  assert_int_equal(llm_run(c, calls, n, &err), 0);
  llm_client_destroy(&c);
}

static void test_anthropic_format(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  size_t from = llm_test_server_n_requests(srv);
  const char *prompts[] = {"first prompt \"quoted\"\nline 2", "second prompt", "third prompt \xc3\xa9"};
  llm_call_t calls[3] = {{0}};
  for (int i = 0; i < 3; i++) calls[i].prompt = prompts[i];
  run1(&o, NULL, calls, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(calls[i].rc, 0);
    char want[128];
    snprintf(want, sizeof want, "A:%s", prompts[i]);
    assert_string_equal(calls[i].text, want);
    assert_int_equal(calls[i].attempts, 1);
  }
  assert_int_equal(llm_test_server_n_requests(srv) - from, 3);
  for (size_t i = from; i < from + 3; i++) {
    llm_test_request_t r;
    assert_int_equal(llm_test_server_get(srv, i, &r), 0);
    assert_string_equal(r.path, "/v1/messages");
    assert_string_equal(r.x_api_key, KEY);
    assert_string_equal(r.authorization, "");
    assert_string_equal(r.anthropic_version, "2023-06-01");
    assert_string_equal(r.content_type, "application/json");
    assert_non_null(r.model);
    assert_string_equal(r.model, "test-model");
    assert_true(r.max_tokens == 77);
    assert_true(r.temperature == 0);
    assert_non_null(r.prompt);
    assert_null(strstr(r.body, KEY));  // the key only in its header
    assert_null(strstr(r.path, KEY));
    assert_int_equal(r.status, 200);
  }
  llm_calls_free(calls, 3);
}

static void test_openai_format(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_OPENAI);
  char base[128];
  snprintf(base, sizeof base, "%s/v1/", llm_test_server_url(srv));  // trailing slash tolerated
  o.base_url = base;
  size_t from = llm_test_server_n_requests(srv);
  llm_call_t call = {.prompt = "openai prompt"};
  run1(&o, NULL, &call, 1);
  assert_int_equal(call.rc, 0);
  assert_string_equal(call.text, "A:openai prompt");
  llm_test_request_t r;
  assert_int_equal(llm_test_server_get(srv, from, &r), 0);
  assert_string_equal(r.path, "/v1/chat/completions");
  assert_string_equal(r.authorization, "Bearer " KEY);
  assert_string_equal(r.x_api_key, "");
  assert_null(strstr(r.body, KEY));
  llm_calls_free(&call, 1);
  // without a key: no Authorization header (local servers); this server then refuses (401)
  o.api_key = NULL;
  from = llm_test_server_n_requests(srv);
  run1(&o, NULL, &call, 1);
  assert_true(call.rc < 0);
  assert_int_equal(call.attempts, 1);  // 401 is not retried
  assert_int_equal(call.http_status, 401);
  assert_int_equal(llm_test_server_get(srv, from, &r), 0);
  assert_string_equal(r.authorization, "");
  llm_calls_free(&call, 1);
}

static void test_key_never_leaks(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  llm_call_t call = {.prompt = "echo my key [401]"};
  run1(&o, NULL, &call, 1);
  assert_true(call.rc < 0);
  assert_int_equal(call.attempts, 1);
  assert_non_null(strstr(call.error, "http 401"));
  assert_null(strstr(call.error, KEY));
  assert_null(strstr(call.error, "SECRETKEY"));
  assert_non_null(strstr(call.error, "[redacted]"));
  // a key with a line break is refused (header injection)
  o.api_key = "abc\r\nx-evil: 1";
  llm_client_t *c = NULL;
  ps_err_t err = {0, {0}};
  assert_true(llm_client_new(&c, &o, NULL, &err) < 0);
  assert_null(strstr(err.msg, "evil"));
  // the Anthropic API without a key is a configuration error
  o.api_key = NULL;
  assert_true(llm_client_new(&c, &o, NULL, &err) < 0);
}

static void test_retry_after(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  const char *p = "rate limited [429x1:1]";
  size_t from = llm_test_server_n_requests(srv);
  llm_call_t call = {.prompt = p};
  run1(&o, NULL, &call, 1);
  assert_int_equal(call.rc, 0);
  assert_int_equal(call.attempts, 2);
  double t[4];
  assert_int_equal(arrivals(p, from, t, 4), 2);
  printf("429 retry-after 1: gap %.3f s\n", t[1] - t[0]);
  assert_true(t[1] - t[0] >= 0.95);  // honoured retry-after, not the 50 ms backoff
  assert_true(t[1] - t[0] < 2.5);
  llm_calls_free(&call, 1);
  // 429 without retry-after: exponential backoff from 50 ms
  p = "rate limited no header [429x2:0]";
  from = llm_test_server_n_requests(srv);
  call.prompt = p;
  run1(&o, NULL, &call, 1);
  assert_int_equal(call.rc, 0);
  assert_int_equal(call.attempts, 3);
  assert_int_equal(arrivals(p, from, t, 4), 3);
  assert_true(t[1] - t[0] >= 0.024 && t[1] - t[0] < 1.0);  // 50 ms x [0.5, 1]
  assert_true(t[2] - t[1] >= 0.049 && t[2] - t[1] < 1.5);  // 100 ms x [0.5, 1]
  llm_calls_free(&call, 1);
}

static void test_500_backoff_and_give_up(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  llm_call_t calls[2] = {{.prompt = "flaky [500x2]"}, {.prompt = "broken [500x100]"}};
  o.max_retries = 2;
  run1(&o, NULL, calls, 2);
  assert_int_equal(calls[0].rc, 0);
  assert_int_equal(calls[0].attempts, 3);
  assert_string_equal(calls[0].text, "A:flaky [500x2]");
  assert_true(calls[1].rc < 0);
  assert_int_equal(calls[1].attempts, 3);  // 1 + max_retries
  assert_null(calls[1].text);
  assert_non_null(strstr(calls[1].error, "http 500"));
  llm_calls_free(calls, 2);
}

static void test_timeouts(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  o.timeout_ms = 400;
  o.max_retries = 1;
  llm_call_t calls[3] = {{.prompt = "never ends [hang]"}, {.prompt = "slow but fine [slow150]"}, {.prompt = "quick"}};
  double t0 = llm_test_now();
  run1(&o, NULL, calls, 3);
  double el = llm_test_now() - t0;
  printf("hang: %s, %.2f s\n", calls[0].error, el);
  assert_true(calls[0].rc < 0);
  assert_int_equal(calls[0].attempts, 2);
  assert_non_null(strstr(calls[0].error, "timeout"));
  assert_true(el >= 0.8 && el < 3.0);
  assert_int_equal(calls[1].rc, 0);
  assert_int_equal(calls[1].attempts, 1);
  assert_int_equal(calls[2].rc, 0);
  // a slow response beyond the timeout: retried, then fails
  llm_calls_free(calls, 3);
  o.timeout_ms = 200;
  llm_call_t slow = {.prompt = "too slow [slow600]"};
  run1(&o, NULL, &slow, 1);
  assert_true(slow.rc < 0);
  assert_int_equal(slow.attempts, 2);
  assert_non_null(strstr(slow.error, "timeout"));
  llm_calls_free(&slow, 1);
}

static void test_bad_bodies(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  o.max_retries = 1;
  llm_call_t calls[4] = {{.prompt = "junk once [badjsonx1]"},
                         {.prompt = "junk always [badjsonx99]"},
                         {.prompt = "cut once [truncx1]"},
                         {.prompt = "cut always [truncx99]"}};
  run1(&o, NULL, calls, 4);
  assert_int_equal(calls[0].rc, 0);
  assert_int_equal(calls[0].attempts, 2);
  assert_true(calls[1].rc < 0);
  assert_non_null(strstr(calls[1].error, "malformed JSON"));
  assert_int_equal(calls[2].rc, 0);
  assert_int_equal(calls[2].attempts, 2);
  assert_string_equal(calls[2].text, "A:cut once [truncx1]");
  assert_true(calls[3].rc < 0);
  assert_int_equal(calls[3].attempts, 2);
  printf("truncated: %s\n", calls[3].error);
  llm_calls_free(calls, 4);
  // the response parser on its own
  char *text = NULL, why[128];
  uint64_t in = 0, out = 0;
  const char *good = "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"tool_use\"},"
                     "{\"type\":\"text\",\"text\":\"b\"}],\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}";
  assert_int_equal(llm_parse_response(LLM_API_ANTHROPIC, good, strlen(good), &text, &in, &out, why, sizeof why), 0);
  assert_string_equal(text, "ab");
  assert_true(in == 3 && out == 4);
  free(text);
  const char *bad[] = {"", "[]", "{}", "{\"content\":5}", "{\"content\":[{\"type\":\"image\"}]}", "{\"choices\":[]}", "nul"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_true(llm_parse_response(LLM_API_ANTHROPIC, bad[i], strlen(bad[i]), &text, NULL, NULL, why, sizeof why) < 0);
    assert_null(text);
    assert_true(llm_parse_response(LLM_API_OPENAI, bad[i], strlen(bad[i]), &text, NULL, NULL, why, sizeof why) < 0);
  }
}

static void test_parallel_and_rate_limit(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  // parallel: 4 requests of 300 ms each with 4 slots take ~0.3 s, not 1.2 s
  llm_call_t calls[6];
  char prompts[6][64];
  memset(calls, 0, sizeof calls);
  for (int i = 0; i < 4; i++) {
    snprintf(prompts[i], sizeof prompts[i], "parallel %d [slow300]", i);
    calls[i].prompt = prompts[i];
  }
  double t0 = llm_test_now();
  run1(&o, NULL, calls, 4);
  double el = llm_test_now() - t0;
  printf("4 x 300 ms in parallel: %.3f s\n", el);
  for (int i = 0; i < 4; i++) assert_int_equal(calls[i].rc, 0);
  assert_true(el < 1.1);  // sequential would take 1.2 s
  llm_calls_free(calls, 4);
  // requests per minute: 600/min = one every 100 ms, even with 6 slots free
  o.parallel = 6;
  o.requests_per_min = 600;
  size_t from = llm_test_server_n_requests(srv);
  for (int i = 0; i < 6; i++) {
    snprintf(prompts[i], sizeof prompts[i], "rpm %d", i);
    calls[i].prompt = prompts[i];
  }
  run1(&o, NULL, calls, 6);
  double t[6];
  size_t n = llm_test_server_n_requests(srv) - from;
  assert_int_equal(n, 6);
  for (size_t i = 0; i < 6; i++) {
    llm_test_request_t r;
    llm_test_server_get(srv, from + i, &r);
    t[i] = r.t_arrive;
  }
  double min_gap = 1e9;
  for (int i = 1; i < 6; i++)
    if (t[i] - t[i - 1] < min_gap) min_gap = t[i] - t[i - 1];
  printf("rpm 600: span %.3f s, min gap %.3f s\n", t[5] - t[0], min_gap);
  assert_true(t[5] - t[0] >= 0.45);
  assert_true(min_gap >= 0.08);
  llm_calls_free(calls, 6);
  // tokens per minute: a prompt of 40 bytes + max_tokens 100 = 110 tokens; 66000/min -> 100 ms each
  o.requests_per_min = 0;
  o.max_tokens = 100;
  o.tokens_per_min = 66000;
  from = llm_test_server_n_requests(srv);
  for (int i = 0; i < 5; i++) {
    snprintf(prompts[i], sizeof prompts[i], "tpm %d ", i);
    while (strlen(prompts[i]) < 40) strcat(prompts[i], ".");
    assert_int_equal(strlen(prompts[i]), 40);
    calls[i].prompt = prompts[i];
  }
  run1(&o, NULL, calls, 5);
  for (size_t i = 0; i < 5; i++) {
    llm_test_request_t r;
    llm_test_server_get(srv, from + i, &r);
    t[i] = r.t_arrive;
  }
  printf("tpm: span %.3f s\n", t[4] - t[0]);
  assert_true(t[4] - t[0] >= 0.36);
  llm_calls_free(calls, 5);
}

typedef struct { int calls; llm_stats_t last; } progress_seen_t;
static void on_progress(void *ctx, const llm_stats_t *st) {
  progress_seen_t *p = ctx;
  p->calls++;
  p->last = *st;
}

static void test_cache(void **state) {
  (void)state;
  char path[PATH_MAX];
  fx_path(path, sizeof path, "cache-a");
  llm_cache_t *cache = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_cache_open(&cache, path, &err), 0);
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  llm_call_t calls[3] = {{.prompt = "cache 1"}, {.prompt = "cache 2"}, {.prompt = "cache fails [500x99]"}};
  o.max_retries = 0;
  size_t from = llm_test_server_n_requests(srv);
  run1(&o, cache, calls, 3);
  assert_int_equal(llm_test_server_n_requests(srv) - from, 3);
  assert_int_equal(llm_cache_count(cache), 2);  // failures are not cached
  llm_calls_free(calls, 3);
  from = llm_test_server_n_requests(srv);
  run1(&o, cache, calls, 3);
  assert_int_equal(llm_test_server_n_requests(srv) - from, 1);  // only the failed one again
  assert_int_equal(calls[0].cached, 1);
  assert_int_equal(calls[0].attempts, 0);
  assert_string_equal(calls[0].text, "A:cache 1");
  assert_int_equal(calls[2].cached, 0);
  llm_calls_free(calls, 3);
  // monitoring: the progress hook sees each finished call (2 from the cache, 1 failed again)
  progress_seen_t seen = {0};
  o.progress = on_progress;
  o.progress_ctx = &seen;
  run1(&o, cache, calls, 3);
  assert_int_equal(seen.calls, 3);
  assert_int_equal(seen.last.cache_hits, 2);
  assert_int_equal(seen.last.failed, 1);
  assert_int_equal(seen.last.answered, 2);
  llm_calls_free(calls, 3);
  o.progress = NULL;
  // another model or endpoint is another key
  o.model = "other-model";
  from = llm_test_server_n_requests(srv);
  run1(&o, cache, calls, 1);
  assert_int_equal(llm_test_server_n_requests(srv) - from, 1);
  llm_calls_free(calls, 1);
  llm_cache_destroy(&cache);
  // the key is not in the cache files
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "grep -r -q SECRETKEY %s", path);
  assert_int_not_equal(system(cmd), 0);
}

static volatile sig_atomic_t stop_now;

static void test_stop_flag(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  stop_now = 1;
  o.stop = &stop_now;
  llm_client_t *c = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_client_new(&c, &o, NULL, &err), 0);
  llm_call_t call = {.prompt = "stopped [slow200]"};
  assert_int_equal(llm_run(c, &call, 1, &err), PS_EINTR);
  llm_client_destroy(&c);
  llm_calls_free(&call, 1);
}

static void test_connection_refused(void **state) {
  (void)state;
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  o.base_url = "http://127.0.0.1:1";
  o.max_retries = 2;
  llm_call_t call = {.prompt = "nobody there"};
  run1(&o, NULL, &call, 1);
  assert_true(call.rc < 0);
  assert_int_equal(call.attempts, 3);
  assert_non_null(strstr(call.error, "transport"));
  llm_calls_free(&call, 1);
}

// kill -9 in the middle of a batch, then rerun: every answer that arrived before the kill comes
// from the cache; no prompt is answered twice by the server.
static void test_kill9_resume(void **state) {
  (void)state;
  enum { N = 10 };
  char path[PATH_MAX];
  fx_path(path, sizeof path, "cache-kill");
  char prompts[N][64];
  llm_call_t calls[N];
  memset(calls, 0, sizeof calls);
  for (int i = 0; i < N; i++) {
    snprintf(prompts[i], sizeof prompts[i], "kill test %d [slow120]", i);
    calls[i].prompt = prompts[i];
  }
  llm_opts_t o;
  opts(&o, LLM_API_ANTHROPIC);
  o.parallel = 1;
  size_t from = llm_test_server_n_requests(srv);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    llm_cache_t *cache = NULL;
    ps_err_t err = {0, {0}};
    if (llm_cache_open(&cache, path, &err) < 0) _exit(3);
    llm_client_t *c = NULL;
    if (llm_client_new(&c, &o, cache, &err) < 0) _exit(4);
    llm_run(c, calls, N, &err);
    _exit(5);  // not reached before the kill
  }
  double t0 = llm_test_now();
  while (llm_test_server_n_requests(srv) - from < 5 && llm_test_now() - t0 < 10) usleep(2000);
  assert_true(llm_test_server_n_requests(srv) - from >= 5);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  usleep(300000);  // let the server finish the request that was in flight
  size_t first = llm_test_server_n_requests(srv) - from;
  // requests are sequential (parallel 1): the last one to arrive was in flight at the kill; its
  // answer may have reached the socket of the dead process but never the cache (unavoidable)
  llm_test_request_t last;
  assert_int_equal(llm_test_server_get(srv, from + first - 1, &last), 0);
  assert_non_null(last.prompt);
  char inflight[64];
  snprintf(inflight, sizeof inflight, "%s", last.prompt);
  printf("kill -9 after %zu requests (in flight: %s)\n", first, inflight);
  // rerun
  llm_cache_t *cache = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_cache_open(&cache, path, &err), 0);
  // every answer received before the kill is stored: all but the one in flight (or all, when the
  // kill fell between storing an answer and sending the next request)
  size_t stored = llm_cache_count(cache);
  assert_true(stored == first - 1 || stored == first);
  size_t from2 = llm_test_server_n_requests(srv);
  o.parallel = 4;
  run1(&o, cache, calls, N);
  size_t cached = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(calls[i].rc, 0);
    char want[700];
    snprintf(want, sizeof want, "A:%s", prompts[i]);
    assert_string_equal(calls[i].text, want);
    cached += (size_t)calls[i].cached;
    // no prompt answered twice by the server (but the one in flight at the kill)
    size_t answered = llm_test_server_count(srv, prompts[i], 1);
    if (strcmp(prompts[i], inflight) != 0) assert_int_equal(answered, 1);
    else assert_true(answered >= 1 && answered <= 2);
  }
  assert_int_equal(cached, stored);
  assert_int_equal(llm_test_server_n_requests(srv) - from2, N - cached);
  for (size_t i = from2; i < llm_test_server_n_requests(srv); i++) {  // none of the cached asked again
    llm_test_request_t r;
    llm_test_server_get(srv, i, &r);
    for (int k = 0; k < N; k++)
      if (calls[k].cached) assert_string_not_equal(r.prompt, prompts[k]);
  }
  llm_calls_free(calls, N);
  // and once more: everything from the cache
  from2 = llm_test_server_n_requests(srv);
  run1(&o, cache, calls, N);
  assert_int_equal(llm_test_server_n_requests(srv), from2);
  llm_calls_free(calls, N);
  llm_cache_destroy(&cache);
}

static void test_key_file(void **state) {
  (void)state;
  char path[PATH_MAX];
  fx_path(path, sizeof path, "key");
  FILE *f = fopen(path, "w");
  fprintf(f, "  %s  \n", KEY);
  fclose(f);
  char *key = NULL;
  ps_err_t err = {0, {0}};
  assert_int_equal(llm_read_key_file(path, &key, &err), 0);
  assert_string_equal(key, KEY);
  free(key);
  f = fopen(path, "w");
  fclose(f);
  assert_true(llm_read_key_file(path, &key, &err) < 0);
  assert_null(key);
}

// Plain http to a non-loopback host with a key: a warning naming the URL, never the key; https,
// loopback or no key: silent.
static void test_insecure_url(void **state) {
  (void)state;
  assert_int_equal(llm_url_is_insecure("http://llm.example.org:8080/v1"), 1);
  assert_int_equal(llm_url_is_insecure("HTTP://10.0.0.5/v1"), 1);
  assert_int_equal(llm_url_is_insecure("http://user:pw@llm.example.org/v1"), 1);
  assert_int_equal(llm_url_is_insecure("http://[2001:db8::1]:8080/v1"), 1);
  assert_int_equal(llm_url_is_insecure("llm.example.org/v1"), 1);  // curl's default scheme is http
  assert_int_equal(llm_url_is_insecure("http://127.0.0.1:8080/v1"), 0);
  assert_int_equal(llm_url_is_insecure("http://127.3.4.5/v1"), 0);
  assert_int_equal(llm_url_is_insecure("http://localhost:8080/v1"), 0);
  assert_int_equal(llm_url_is_insecure("http://[::1]:8080/v1"), 0);
  assert_int_equal(llm_url_is_insecure("https://api.anthropic.com"), 0);
  assert_int_equal(llm_url_is_insecure("http://127.0.0.1.evil.org/v1"), 1);
  // the warning from llm_client_new, captured from stderr
  char log[PATH_MAX];
  fx_path(log, sizeof log, "warn.log");
  const char *urls[3] = {"http://llm.example.org:8080/v1", "https://llm.example.org/v1", "http://localhost:9/v1"};
  for (int i = 0; i < 3; i++) {
    for (int with_key = 0; with_key < 2; with_key++) {
      fflush(stderr);
      int saved = dup(2), fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
      assert_true(saved >= 0 && fd >= 0);
      dup2(fd, 2);
      close(fd);
      llm_opts_t o;
      opts(&o, LLM_API_OPENAI);
      o.base_url = urls[i];
      o.api_key = with_key ? KEY : NULL;
      llm_client_t *c = NULL;
      ps_err_t err = {0, {0}};
      int rc = llm_client_new(&c, &o, NULL, &err);
      fflush(stderr);
      dup2(saved, 2);
      close(saved);
      assert_int_equal(rc, 0);
      llm_client_destroy(&c);
      char got[1024] = {0};
      FILE *f = fopen(log, "r");
      assert_non_null(f);
      size_t n = fread(got, 1, sizeof got - 1, f);
      fclose(f);
      got[n] = 0;
      int want = i == 0 && with_key;
      if (want && !(strstr(got, "WARN") && strstr(got, urls[i]) && strstr(got, "unencrypted")))
        fail_msg("%s with a key: want a warning naming it, got '%s'", urls[i], got);
      if (!want && strstr(got, "unencrypted")) fail_msg("%s (key %d): unexpected warning '%s'", urls[i], with_key, got);
      if (strstr(got, KEY)) fail_msg("the key leaked into the log: '%s'", got);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_anthropic_format), cmocka_unit_test(test_openai_format),
      cmocka_unit_test(test_key_never_leaks), cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_500_backoff_and_give_up), cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_bad_bodies), cmocka_unit_test(test_parallel_and_rate_limit),
      cmocka_unit_test(test_cache), cmocka_unit_test(test_stop_flag),
      cmocka_unit_test(test_connection_refused), cmocka_unit_test(test_kill9_resume),
      cmocka_unit_test(test_key_file), cmocka_unit_test(test_insecure_url),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
