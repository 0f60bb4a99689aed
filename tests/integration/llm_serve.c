// llm_serve — a local stand-in for an LLM API server (tests/unit/llm_test_server: the Anthropic
// Messages API and OpenAI chat completions over HTTP on 127.0.0.1) for the pipeline tests. It
// answers the interpreter's two prompts like a model would: an explanation sentence, and for a
// prediction prompt "i: v" lines whose values are a deterministic function of each protein's
// line (so a repeated prompt gets the same answer). Faults: --fail-first N (the first N requests
// get --fail-status, 500 by default), --garbage-first N (the first N answers are text without
// predictions or with an empty explanation), --delay-ms (every answer waits).
// Prints "port: N" on stdout, then serves until SIGTERM / SIGINT; at exit prints "requests: N".
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llm_test_server.h"

static volatile sig_atomic_t g_stop;
static void on_sig(int s) {
  (void)s;
  g_stop = 1;
}

typedef struct reply_ctx {
  int garbage_left;
} reply_ctx_t;

static uint64_t fnv(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

static char *reply(const char *prompt, void *ud) {
  reply_ctx_t *c = ud;
  if (c->garbage_left > 0) {  // called under the server's lock
    c->garbage_left--;
    return strdup("I am not sure what to say about these proteins.\n\n");
  }
  const char *ex = strstr(prompt, "Answer with exactly ");
  if (!ex) return strdup("Explanation: This feature detects proteins that share a GO annotation.");
  size_t m = strtoul(ex + 20, NULL, 10), cap = 32 * (m + 1), o = 0;
  char *out = malloc(cap);
  out[0] = 0;
  const char *p = strstr(prompt, "\n\n");  // the protein lines follow the first blank line
  for (size_t i = 1; i <= m; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "\n%zu. ", i);
    const char *l = p ? strstr(p, tag) : NULL;
    const char *e = l ? strchr(l + 1, '\n') : NULL;
    uint64_t h = l ? fnv(l, e ? (size_t)(e - l) : strlen(l)) : i;
    o += (size_t)snprintf(out + o, cap - o, "%zu: %.2f\n", i, (double)(h % 101) / 100.0);
  }
  return out;
}

int main(int argc, char **argv) {
  int fail_first = 0, fail_status = 500, delay = 0;
  reply_ctx_t ctx = {0};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--fail-first")) fail_first = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--fail-status")) fail_status = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--garbage-first")) ctx.garbage_left = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--delay-ms")) delay = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "llm_serve: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  signal(SIGTERM, on_sig);
  signal(SIGINT, on_sig);
  llm_test_server_t *s = llm_test_server_start(NULL);
  if (!s) {
    fprintf(stderr, "llm_serve: cannot start the server\n");
    return 1;
  }
  llm_test_server_set_reply(s, reply, &ctx);
  llm_test_server_set_fail_first(s, fail_first, fail_status);
  llm_test_server_set_delay_ms(s, delay);
  printf("port: %d\n", llm_test_server_port(s));
  fflush(stdout);
  while (!g_stop) usleep(50 * 1000);
  printf("requests: %zu\n", llm_test_server_n_requests(s));
  llm_test_server_stop(&s);
  return 0;
}
