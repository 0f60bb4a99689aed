// llm_test_server.c — see llm_test_server.h.
#include "llm_test_server.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
  size_t idx;
  char *body;
  size_t len;
  int started;
} conn_t;

typedef struct prompt_count {
  char *prompt;
  int attempts;
} prompt_count_t;

struct llm_test_server {
  struct MHD_Daemon *d;
  pthread_mutex_t mu;
  char *key;
  char url[64];
  int port;
  llm_test_request_t *req;
  size_t n, cap;
  prompt_count_t *pc;
  size_t npc, pccap;
  char *(*reply)(const char *, void *);
  void *reply_ud;
  volatile int stopping;
  int delay_ms;
  int fail_first, fail_status, n_seen;
};

double llm_test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int attempts_of(llm_test_server_t *s, const char *prompt) {  // called locked; returns 1-based
  for (size_t i = 0; i < s->npc; i++)
    if (!strcmp(s->pc[i].prompt, prompt)) return ++s->pc[i].attempts;
  if (s->npc == s->pccap) {
    s->pccap = s->pccap ? s->pccap * 2 : 64;
    s->pc = realloc(s->pc, s->pccap * sizeof *s->pc);
  }
  s->pc[s->npc].prompt = strdup(prompt);
  s->pc[s->npc].attempts = 1;
  s->npc++;
  return 1;
}

static int tag_count(const char *prompt, const char *tag, int *extra) {  // "[500x" -> N, or -1
  const char *p = strstr(prompt, tag);
  if (!p) return -1;
  p += strlen(tag);
  int n = atoi(p);
  if (extra) {
    const char *c = strchr(p, ':');
    const char *e = strchr(p, ']');
    *extra = c && (!e || c < e) ? atoi(c + 1) : 0;
  }
  return n;
}

static enum MHD_Result queue(struct MHD_Connection *c, int status, const char *body, const char *hname,
                             const char *hval) {
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "content-type", "application/json");
  if (hname) MHD_add_response_header(r, hname, hval);
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

static ssize_t hang_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  llm_test_server_t *s = cls;
  if (s->stopping || pos > 4096) return MHD_CONTENT_READER_END_WITH_ERROR;
  usleep(50000);
  if (max < 1) return 0;
  buf[0] = pos == 0 ? '{' : ' ';
  return 1;
}

static ssize_t trunc_cb(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)cls;
  static const char part[] = "{\"content\":[{\"type\":\"text\",\"text\":\"partial";
  if (pos >= sizeof part - 1) return MHD_CONTENT_READER_END_WITH_ERROR;
  size_t n = sizeof part - 1 - (size_t)pos;
  if (n > max) n = max;
  memcpy(buf, part + pos, n);
  return (ssize_t)n;
}

static char *ok_body(int openai, const char *model, const char *text) {
  json_t *root;
  if (openai) {
    root = json_pack("{s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i}}", "object", "chat.completion", "choices",
                     "index", 0, "message", "role", "assistant", "content", text, "finish_reason", "stop", "usage",
                     "prompt_tokens", 11, "completion_tokens", 7);
  } else {
    root = json_pack("{s:s, s:s, s:s, s:[{s:s, s:s}], s:s, s:{s:i, s:i}}", "id", "msg_test", "type", "message",
                     "role", "assistant", "content", "type", "text", "text", text, "model", model ? model : "",
                     "usage", "input_tokens", 11, "output_tokens", 7);
  }
  char *s = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return s;
}

static void copy_hdr(struct MHD_Connection *c, const char *name, char *out, size_t cap) {
  const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
  snprintf(out, cap, "%s", v ? v : "");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls) {
  (void)version;
  llm_test_server_t *s = cls;
  conn_t *cn = *con_cls;
  if (!cn) {
    cn = calloc(1, sizeof *cn);
    *con_cls = cn;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
      s->cap = s->cap ? s->cap * 2 : 64;
      s->req = realloc(s->req, s->cap * sizeof *s->req);
    }
    cn->idx = s->n++;
    llm_test_request_t *r = &s->req[cn->idx];
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "%s", url);
    copy_hdr(c, "x-api-key", r->x_api_key, sizeof r->x_api_key);
    copy_hdr(c, "authorization", r->authorization, sizeof r->authorization);
    copy_hdr(c, "anthropic-version", r->anthropic_version, sizeof r->anthropic_version);
    copy_hdr(c, "content-type", r->content_type, sizeof r->content_type);
    r->t_arrive = llm_test_now();
    r->max_tokens = r->temperature = -1;
    pthread_mutex_unlock(&s->mu);
    return MHD_YES;
  }
  if (*upload_size) {
    cn->body = realloc(cn->body, cn->len + *upload_size + 1);
    memcpy(cn->body + cn->len, upload, *upload_size);
    cn->len += *upload_size;
    cn->body[cn->len] = 0;
    *upload_size = 0;
    return MHD_YES;
  }
  // whole request in: record it and decide
  int openai = strstr(url, "/chat/completions") != NULL;
  pthread_mutex_lock(&s->mu);
  llm_test_request_t *r = &s->req[cn->idx];
  r->body = strdup(cn->body ? cn->body : "");
  json_t *j = json_loads(r->body, 0, NULL);
  if (j) {
    json_t *m = json_object_get(j, "model");
    if (json_is_string(m)) r->model = strdup(json_string_value(m));
    json_t *mt = json_object_get(j, "max_tokens"), *t = json_object_get(j, "temperature");
    if (json_is_number(mt)) r->max_tokens = json_number_value(mt);
    if (json_is_number(t)) r->temperature = json_number_value(t);
    json_t *msg = json_array_get(json_object_get(j, "messages"), 0);
    json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) r->prompt = strdup(json_string_value(content));
    json_decref(j);
  }
  const char *prompt = r->prompt ? r->prompt : "";
  int attempt = attempts_of(s, prompt);
  int fail_now = s->n_seen++ < s->fail_first;
  const char *got_key = openai ? r->authorization : r->x_api_key;
  char want[600] = "";
  if (s->key) snprintf(want, sizeof want, openai ? "Bearer %s" : "%s", s->key);
  int key_bad = s->key && strcmp(got_key, want) != 0;
  char *model = r->model ? strdup(r->model) : NULL;
  char *reply = NULL;
  if (s->reply) reply = s->reply(prompt, s->reply_ud);
  size_t idx = cn->idx;
  pthread_mutex_unlock(&s->mu);
  if (!reply) {
    reply = malloc(strlen(prompt) + 3);
    sprintf(reply, "A:%s", prompt);
  }
  int n, extra, status = 200;
  enum MHD_Result ret;
  char buf[1200];
  if (fail_now) {
    status = s->fail_status;
    ret = queue(c, status, "{\"error\":\"injected failure\"}", NULL, NULL);
  } else if (strcmp(method, "POST") != 0) {
    status = 405;
    ret = queue(c, status, "{\"error\":\"POST only\"}", NULL, NULL);
  } else if (key_bad || strstr(prompt, "[401]")) {
    status = 401;
    snprintf(buf, sizeof buf, "{\"type\":\"error\",\"error\":{\"message\":\"invalid key: %s\"}}", got_key);
    ret = queue(c, status, buf, NULL, NULL);
  } else if ((n = tag_count(prompt, "[429x", &extra)) >= 0 && attempt <= n) {
    status = 429;
    char ra[32];
    snprintf(ra, sizeof ra, "%d", extra);
    ret = queue(c, status, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\"}}", extra > 0 ? "retry-after" : NULL, ra);
  } else if ((n = tag_count(prompt, "[500x", NULL)) >= 0 && attempt <= n) {
    status = 500;
    ret = queue(c, status, "{\"error\":\"internal\"}", NULL, NULL);
  } else if ((n = tag_count(prompt, "[badjsonx", NULL)) >= 0 && attempt <= n) {
    ret = queue(c, status, "{\"content\": [ {\"type\": \"text\", \"text\": \"x\" ,,, }", NULL, NULL);
  } else if ((n = tag_count(prompt, "[truncx", NULL)) >= 0 && attempt <= n) {
    struct MHD_Response *rs = MHD_create_response_from_callback(400, 64, trunc_cb, s, NULL);
    ret = MHD_queue_response(c, 200, rs);
    MHD_destroy_response(rs);
  } else if (strstr(prompt, "[hang]")) {
    struct MHD_Response *rs = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16, hang_cb, s, NULL);
    ret = MHD_queue_response(c, 200, rs);
    MHD_destroy_response(rs);
  } else {
    if ((n = tag_count(prompt, "[slow", NULL)) > 0) usleep((useconds_t)n * 1000);
    if (s->delay_ms > 0) usleep((useconds_t)s->delay_ms * 1000);
    char *b = ok_body(openai, model, reply);
    ret = queue(c, status, b, NULL, NULL);
    free(b);
  }
  pthread_mutex_lock(&s->mu);
  s->req[idx].status = status;
  pthread_mutex_unlock(&s->mu);
  free(reply);
  free(model);
  return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
  (void)c;
  llm_test_server_t *s = cls;
  conn_t *cn = *con_cls;
  if (!cn) return;
  pthread_mutex_lock(&s->mu);
  if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) s->req[cn->idx].completed = 1;
  pthread_mutex_unlock(&s->mu);
  free(cn->body);
  free(cn);
  *con_cls = NULL;
}

void llm_test_server_set_fail_first(llm_test_server_t *s, int n, int status) {
  pthread_mutex_lock(&s->mu);
  s->fail_first = n;
  s->fail_status = status;
  pthread_mutex_unlock(&s->mu);
}

llm_test_server_t *llm_test_server_start(const char *expected_key) {
  llm_test_server_t *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  s->key = expected_key ? strdup(expected_key) : NULL;
  s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL,
                          NULL, handler, s, MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)30, MHD_OPTION_END);
  if (!s->d) {
    free(s->key);
    free(s);
    return NULL;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
  s->port = di ? di->port : 0;
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
  return s;
}

void llm_test_server_stop(llm_test_server_t **sp) {
  if (!sp || !*sp) return;
  llm_test_server_t *s = *sp;
  s->stopping = 1;
  MHD_stop_daemon(s->d);
  for (size_t i = 0; i < s->n; i++) {
    free(s->req[i].body);
    free(s->req[i].prompt);
    free(s->req[i].model);
  }
  free(s->req);
  for (size_t i = 0; i < s->npc; i++) free(s->pc[i].prompt);
  free(s->pc);
  free(s->key);
  pthread_mutex_destroy(&s->mu);
  free(s);
  *sp = NULL;
}

int llm_test_server_port(const llm_test_server_t *s) { return s->port; }
const char *llm_test_server_url(const llm_test_server_t *s) { return s->url; }

void llm_test_server_set_reply(llm_test_server_t *s, char *(*fn)(const char *, void *), void *ud) {
  pthread_mutex_lock(&s->mu);
  s->reply = fn;
  s->reply_ud = ud;
  pthread_mutex_unlock(&s->mu);
}

void llm_test_server_set_delay_ms(llm_test_server_t *s, int ms) {
  pthread_mutex_lock(&s->mu);
  s->delay_ms = ms;
  pthread_mutex_unlock(&s->mu);
}

size_t llm_test_server_n_requests(llm_test_server_t *s) {
  pthread_mutex_lock(&s->mu);
  size_t n = s->n;
  pthread_mutex_unlock(&s->mu);
  return n;
}

int llm_test_server_get(llm_test_server_t *s, size_t i, llm_test_request_t *out) {
  pthread_mutex_lock(&s->mu);
  int rc = -1;
  if (i < s->n) {
    *out = s->req[i];
    rc = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

size_t llm_test_server_count(llm_test_server_t *s, const char *prompt, int completed_only) {
  pthread_mutex_lock(&s->mu);
  size_t k = 0;
  for (size_t i = 0; i < s->n; i++)
    if (s->req[i].prompt && !strcmp(s->req[i].prompt, prompt) && (!completed_only || s->req[i].completed)) k++;
  pthread_mutex_unlock(&s->mu);
  return k;
}
