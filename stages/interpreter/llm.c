// llm.c — see llm.h.
#include "llm.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hash.h"
#include "io.h"
#include "log.h"

#define LLM_MAX_BODY (16u << 20)  // responses larger than this are cut off (error)

struct llm_client {
  llm_opts_t o;
  char *base, *model, *key, *version, *url;
  llm_cache_t *cache;
  CURLM *multi;
  uint64_t rng;
  double next_req_s, next_tok_s, pause_until_s;  // rate limiter (monotonic seconds)
  llm_stats_t st;
};

typedef struct xfer {
  size_t idx;
  CURL *easy;
  struct curl_slist *hdrs;
  char *body;
  char *resp;
  size_t len, cap;
  int too_big;
  double retry_after_s;  // -1 = none
} xfer_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }


void llm_opts_default(llm_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->api = LLM_API_ANTHROPIC;
  o->temperature = 0;
  o->max_tokens = 512;
  o->parallel = 4;
  o->max_retries = 5;
  o->timeout_ms = 60000;
  o->connect_timeout_ms = 10000;
  o->backoff_base_ms = 1000;
  o->backoff_max_ms = 60000;
  o->seed = 1;
}

llm_api_t llm_api_parse(const char *s, int *ok) {
  *ok = 1;
  if (s && !strcmp(s, "anthropic")) return LLM_API_ANTHROPIC;
  if (s && (!strcmp(s, "openai") || !strcmp(s, "openai-compatible"))) return LLM_API_OPENAI;
  *ok = 0;
  return LLM_API_ANTHROPIC;
}

void llm_calls_free(llm_call_t *calls, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(calls[i].text);
    calls[i].text = NULL;
  }
}

// A copy of s with every occurrence of key replaced by "[redacted]" (caller frees).
static char *redact_dup(const char *s, const char *key) {
  size_t kl = key ? strlen(key) : 0;
  if (kl < 4) return ps_xstrdup(s);
  size_t n = 0;
  for (const char *p = s; (p = strstr(p, key)); p += kl) n++;
  char *out = ps_xmalloc(strlen(s) + n * 10 + 1), *o = out;
  const char *p = s, *q;
  while ((q = strstr(p, key))) {
    memcpy(o, p, (size_t)(q - p));
    o += q - p;
    memcpy(o, "[redacted]", 10);
    o += 10;
    p = q + kl;
  }
  strcpy(o, p);
  return out;
}

static void call_error(llm_client_t *c, llm_call_t *call, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void call_error(llm_client_t *c, llm_call_t *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(call->error, sizeof call->error, fmt, ap);
  va_end(ap);
  for (char *p = call->error; *p; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
  char *r = redact_dup(call->error, c->key);
  snprintf(call->error, sizeof call->error, "%s", r);
  free(r);
}

static int bad_header_value(const char *s) {
  for (; *s; s++)
    if (*s == '\r' || *s == '\n') return 1;
  return 0;
}

int llm_read_key_file(const char *path, char **key, ps_err_t *err) {
  *key = NULL;
  FILE *f = fopen(path, "r");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open key file: %s", path, strerror(errno));
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *s = buf;
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
  size_t l = strcspn(s, "\r\n");
  while (l && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
  s[l] = 0;
  int rc = 0;
  if (!*s) rc = ps_err_set(err, PS_ECONFIG, "%s: key file is empty", path);
  else *key = ps_xstrdup(s);
  memset(buf, 0, sizeof buf);
  return rc;
}

int llm_url_is_insecure(const char *url) {
  if (!url) return 0;
  const char *h = strstr(url, "://");
  if (h) {
    if ((size_t)(h - url) != 4 || strncasecmp(url, "http", 4)) return 0;  // https and others: not plain http
    h += 3;
  } else {
    h = url;
  }
  size_t n = strcspn(h, "/?#");  // authority
  const char *at = memchr(h, '@', n);
  if (at) {  // user:password@host
    n -= (size_t)(at + 1 - h);
    h = at + 1;
  }
  char host[256];
  if (n && h[0] == '[') {
    const char *e = memchr(h, ']', n);
    n = e ? (size_t)(e - h - 1) : n - 1;
    h++;
  } else {
    const char *colon = memchr(h, ':', n);
    if (colon) n = (size_t)(colon - h);
  }
  if (n == 0 || n >= sizeof host) return 1;
  memcpy(host, h, n);
  host[n] = 0;
  if (!strcasecmp(host, "localhost") || !strcmp(host, "::1")) return 0;
  if (!strncmp(host, "127.", 4) && strspn(host, "0123456789.") == n) return 0;
  return 1;
}

int llm_client_new(llm_client_t **out, const llm_opts_t *o, llm_cache_t *cache, ps_err_t *err) {
  *out = NULL;
  if (!o->model || !*o->model) return ps_err_set(err, PS_ECONFIG, "llm: no model given");
  if (o->api == LLM_API_ANTHROPIC && (!o->api_key || !*o->api_key))
    return ps_err_set(err, PS_ECONFIG, "llm: the Anthropic API needs a key (ANTHROPIC_API_KEY or --key-file)");
  if (o->api_key && bad_header_value(o->api_key))
    return ps_err_set(err, PS_ECONFIG, "llm: the API key holds a line break");
  if (o->parallel < 1 || o->max_tokens < 1 || o->max_retries < 0 || o->timeout_ms < 1)
    return ps_err_set(err, PS_ECONFIG, "llm: parallel, max_tokens and timeout must be >= 1, retries >= 0");
  pthread_once(&curl_once, curl_init_once);
  llm_client_t *c = ps_xcalloc(1, sizeof *c);
  c->o = *o;
  const char *base = o->base_url && *o->base_url ? o->base_url
                     : o->api == LLM_API_ANTHROPIC ? LLM_ANTHROPIC_DEFAULT_URL : LLM_OPENAI_DEFAULT_URL;
  c->base = ps_xstrdup(base);
  size_t bl = strlen(c->base);
  while (bl && c->base[bl - 1] == '/') c->base[--bl] = 0;
  const char *path = o->api == LLM_API_ANTHROPIC ? "/v1/messages" : "/chat/completions";
  c->url = ps_xmalloc(bl + strlen(path) + 1);
  sprintf(c->url, "%s%s", c->base, path);
  c->model = ps_xstrdup(o->model);
  c->key = o->api_key && *o->api_key ? ps_xstrdup(o->api_key) : NULL;
  c->version = ps_xstrdup(o->anthropic_version ? o->anthropic_version : "2023-06-01");
  c->o.base_url = c->base;
  c->o.model = c->model;
  c->o.api_key = c->key;
  c->o.anthropic_version = c->version;
  if (c->key && llm_url_is_insecure(c->base))
    PS_WARN("llm: the API key goes unencrypted to %s (plain http to a non-loopback host): use https", c->base);
  c->cache = cache;
  c->rng = o->seed ^ 0x5eedull;
  c->multi = curl_multi_init();
  if (!c->multi) {
    llm_client_destroy(&c);
    return ps_err_set(err, PS_ENOMEM, "llm: curl_multi_init failed");
  }
  *out = c;
  return 0;
}

void llm_client_destroy(llm_client_t **cp) {
  if (!cp || !*cp) return;
  llm_client_t *c = *cp;
  if (c->multi) curl_multi_cleanup(c->multi);
  if (c->key) memset(c->key, 0, strlen(c->key));
  free(c->key);
  free(c->base);
  free(c->url);
  free(c->model);
  free(c->version);
  free(c);
  *cp = NULL;
}

int llm_forget(llm_client_t *c, const char *prompt, ps_err_t *err) {
  return c->cache ? llm_cache_del(c->cache, c->url, c->model, prompt, err) : 0;
}

const char *llm_endpoint(const llm_client_t *c) { return c->url; }
void llm_get_stats(const llm_client_t *c, llm_stats_t *s) { *s = c->st; }

// ---- response parsing ------------------------------------------------------------------------
int llm_parse_response(llm_api_t api, const char *body, size_t len, char **text, uint64_t *in_tok,
                       uint64_t *out_tok, char *why, size_t cap) {
  *text = NULL;
  json_error_t je;
  json_t *root = json_loadb(body, len, 0, &je);
  if (!root) {
    snprintf(why, cap, "malformed JSON at byte %d: %s", je.position, je.text);
    return PS_EFORMAT;
  }
  int rc = PS_EFORMAT;
  if (!json_is_object(root)) {
    snprintf(why, cap, "response is not a JSON object");
    goto done;
  }
  json_t *usage = json_object_get(root, "usage");
  if (json_is_object(usage)) {
    json_t *a = json_object_get(usage, api == LLM_API_ANTHROPIC ? "input_tokens" : "prompt_tokens");
    json_t *b = json_object_get(usage, api == LLM_API_ANTHROPIC ? "output_tokens" : "completion_tokens");
    if (in_tok && json_is_integer(a) && json_integer_value(a) > 0) *in_tok += (uint64_t)json_integer_value(a);
    if (out_tok && json_is_integer(b) && json_integer_value(b) > 0) *out_tok += (uint64_t)json_integer_value(b);
  }
  if (api == LLM_API_ANTHROPIC) {
    json_t *content = json_object_get(root, "content");
    if (!json_is_array(content)) {
      snprintf(why, cap, "no content array in the response");
      goto done;
    }
    size_t total = 0, i;
    json_t *item;
    json_array_foreach(content, i, item) {
      json_t *t = json_object_get(item, "text");
      if (json_is_string(t)) total += json_string_length(t);
    }
    char *s = ps_xmalloc(total + 1);
    size_t k = 0;
    int any = 0;
    json_array_foreach(content, i, item) {
      json_t *ty = json_object_get(item, "type"), *t = json_object_get(item, "text");
      if (json_is_string(t) && (!ty || (json_is_string(ty) && !strcmp(json_string_value(ty), "text")))) {
        memcpy(s + k, json_string_value(t), json_string_length(t));
        k += json_string_length(t);
        any = 1;
      }
    }
    s[k] = 0;
    if (!any) {
      free(s);
      snprintf(why, cap, "no text block in the response content");
      goto done;
    }
    *text = s;
  } else {
    json_t *choices = json_object_get(root, "choices");
    json_t *ch0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    json_t *msg = json_is_object(ch0) ? json_object_get(ch0, "message") : NULL;
    json_t *content = json_is_object(msg) ? json_object_get(msg, "content") : NULL;
    if (!json_is_string(content) && json_is_object(ch0)) content = json_object_get(ch0, "text");
    if (!json_is_string(content)) {
      snprintf(why, cap, "no choices[0].message.content string in the response");
      goto done;
    }
    size_t l = json_string_length(content);
    *text = ps_xmalloc(l + 1);
    memcpy(*text, json_string_value(content), l);
    (*text)[l] = 0;
  }
  if (strlen(*text) == 0 && len > 0) {
    // an empty answer is an answer (the caller's parser decides); keep it
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}

// ---- transfers -------------------------------------------------------------------------------
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nmemb;
  if (x->len + n > LLM_MAX_BODY) {
    x->too_big = 1;
    return 0;  // aborts the transfer
  }
  if (x->len + n + 1 > x->cap) {
    x->cap = (x->len + n + 1) * 2;
    x->resp = ps_xrealloc(x->resp, x->cap);
  }
  memcpy(x->resp + x->len, ptr, n);
  x->len += n;
  x->resp[x->len] = 0;
  return n;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud) {
  xfer_t *x = ud;
  size_t n = size * nitems;
  char line[256];
  size_t l = n < sizeof line - 1 ? n : sizeof line - 1;
  memcpy(line, buf, l);
  line[l] = 0;
  if (!strncasecmp(line, "HTTP/", 5)) x->retry_after_s = -1;  // a new response (after 100-continue)
  double v;
  char *e;
  if (!strncasecmp(line, "retry-after-ms:", 15)) {
    v = strtod(line + 15, &e);
    if (e != line + 15 && v >= 0 && isfinite(v)) x->retry_after_s = v / 1000.0;
  } else if (!strncasecmp(line, "retry-after:", 12)) {
    v = strtod(line + 12, &e);
    if (e != line + 12 && v >= 0 && isfinite(v)) {
      x->retry_after_s = v;
    } else {
      line[strcspn(line, "\r\n")] = 0;
      time_t t = curl_getdate(line + 12, NULL);
      if (t > 0) {
        double d = difftime(t, time(NULL));
        x->retry_after_s = d > 0 ? d : 0;
      }
    }
  }
  return n;
}

static char *request_body(const llm_client_t *c, const char *prompt) {
  json_t *root = json_object();
  json_object_set_new(root, "model", json_string(c->model));
  json_object_set_new(root, "max_tokens", json_integer(c->o.max_tokens));
  json_object_set_new(root, "temperature", json_real(c->o.temperature));
  json_t *msgs = json_array();
  json_t *m = json_object();
  json_object_set_new(m, "role", json_string("user"));
  json_object_set_new(m, "content", json_string(prompt));
  json_array_append_new(msgs, m);
  json_object_set_new(root, "messages", msgs);
  char *s = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return s;
}

static void xfer_free(xfer_t *x) {
  if (!x) return;
  if (x->easy) curl_easy_cleanup(x->easy);
  curl_slist_free_all(x->hdrs);
  free(x->body);
  free(x->resp);
  free(x);
}

static xfer_t *xfer_start(llm_client_t *c, size_t idx, const char *prompt) {
  xfer_t *x = ps_xcalloc(1, sizeof *x);
  x->idx = idx;
  x->retry_after_s = -1;
  x->body = request_body(c, prompt);
  PS_ASSERT(x->body);
  x->easy = curl_easy_init();
  PS_ASSERT(x->easy);
  char h[8192];
  x->hdrs = curl_slist_append(x->hdrs, "content-type: application/json");
  x->hdrs = curl_slist_append(x->hdrs, "accept: application/json");
  x->hdrs = curl_slist_append(x->hdrs, "expect:");
  if (c->o.api == LLM_API_ANTHROPIC) {
    snprintf(h, sizeof h, "anthropic-version: %s", c->version);
    x->hdrs = curl_slist_append(x->hdrs, h);
    if (c->key) {
      snprintf(h, sizeof h, "x-api-key: %s", c->key);
      x->hdrs = curl_slist_append(x->hdrs, h);
    }
  } else if (c->key) {
    snprintf(h, sizeof h, "authorization: Bearer %s", c->key);
    x->hdrs = curl_slist_append(x->hdrs, h);
  }
  memset(h, 0, sizeof h);
  CURL *e = x->easy;
  curl_easy_setopt(e, CURLOPT_URL, c->url);
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->o.timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms > 0 ? c->o.connect_timeout_ms : 10000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "protsae-interpreter/0.1");
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_multi_add_handle(c->multi, e);
  return x;
}

static int retryable_status(long s) { return s == 408 || s == 409 || s == 429 || s == 529 || (s >= 500 && s <= 599); }

static double backoff_s(llm_client_t *c, int attempt) {
  double base = (double)c->o.backoff_base_ms / 1000.0, cap = (double)c->o.backoff_max_ms / 1000.0;
  double d = base * pow(2.0, attempt > 30 ? 30 : attempt - 1);
  if (d > cap) d = cap;
  double u = (double)(ps_splitmix64(&c->rng) >> 11) * 0x1.0p-53;
  return d * (0.5 + 0.5 * u);  // "equal jitter"
}

enum { ST_PENDING = 0, ST_ACTIVE, ST_DONE };

int llm_run(llm_client_t *c, llm_call_t *calls, size_t n, ps_err_t *err) {
  int rc = 0;
  uint8_t *state = ps_xcalloc(n ? n : 1, 1);
  double *not_before = ps_xcalloc(n ? n : 1, sizeof *not_before);
  xfer_t **active = ps_xcalloc((size_t)c->o.parallel, sizeof *active);
  size_t n_done = 0, n_active = 0, cursor = 0;
  for (size_t i = 0; i < n; i++) {
    llm_call_t *k = &calls[i];
    free(k->text);
    k->text = NULL;
    k->rc = 0;
    k->error[0] = 0;
    k->attempts = 0;
    k->cached = 0;
    k->http_status = 0;
    if (c->cache) {
      char *t = NULL;
      int g = llm_cache_get(c->cache, c->url, c->model, k->prompt, &t, err);
      if (g < 0) {
        rc = g;
        goto out;
      }
      if (g == 1) {
        k->text = t;
        k->cached = 1;
        state[i] = ST_DONE;
        n_done++;
        c->st.cache_hits++;
        c->st.answered++;
        if (c->o.progress) c->o.progress(c->o.progress_ctx, &c->st);
      }
    }
  }
  double rpm_gap = c->o.requests_per_min > 0 ? 60.0 / c->o.requests_per_min : 0;
  double tok_gap = c->o.tokens_per_min > 0 ? 60.0 / c->o.tokens_per_min : 0;
  while (n_done < n) {
    if (c->o.stop && *c->o.stop) {
      rc = ps_err_set(err, PS_EINTR, "llm: stopped by a signal (%zu of %zu answered)", n_done, n);
      goto out;
    }
    double t = ps_mono_s();
    double wake = t + 0.2;
    // start what the slots, the pause and the rate limiter allow
    while (n_active < (size_t)c->o.parallel) {
      if (t < c->pause_until_s) {
        if (c->pause_until_s < wake) wake = c->pause_until_s;
        break;
      }
      double gate = c->next_req_s > c->next_tok_s ? c->next_req_s : c->next_tok_s;
      if (t < gate) {
        if (gate < wake) wake = gate;
        break;
      }
      size_t pick = n;
      for (size_t s = 0; s < n; s++) {
        size_t i = (cursor + s) % n;
        if (state[i] != ST_PENDING) continue;
        if (not_before[i] <= t) {
          pick = i;
          break;
        }
        if (not_before[i] < wake) wake = not_before[i];
      }
      if (pick == n) break;
      cursor = (pick + 1) % n;
      llm_call_t *k = &calls[pick];
      state[pick] = ST_ACTIVE;
      k->attempts++;
      c->st.requests++;
      if (k->attempts > 1) c->st.retries++;
      double tokens = (double)strlen(k->prompt) / 4.0 + c->o.max_tokens;
      c->next_req_s = (c->next_req_s > t ? c->next_req_s : t) + rpm_gap;
      c->next_tok_s = (c->next_tok_s > t ? c->next_tok_s : t) + tokens * tok_gap;
      xfer_t *x = xfer_start(c, pick, k->prompt);
      for (int s = 0; s < c->o.parallel; s++)
        if (!active[s]) {
          active[s] = x;
          break;
        }
      n_active++;
      PS_DEBUG("llm request call=%zu attempt=%d", pick, k->attempts);
    }
    int running = 0;
    curl_multi_perform(c->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
      if (msg->msg != CURLMSG_DONE) continue;
      xfer_t *x = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
      CURLcode res = msg->data.result;
      curl_multi_remove_handle(c->multi, msg->easy_handle);
      llm_call_t *k = &calls[x->idx];
      long status = 0;
      curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
      k->http_status = status;
      int retry = 0;
      double t2 = ps_mono_s();
      if (res != CURLE_OK) {
        retry = !x->too_big;
        call_error(c, k, "%s%s (%d attempts)", res == CURLE_OPERATION_TIMEDOUT ? "timeout: " : "transport: ",
                   x->too_big ? "response too large" : curl_easy_strerror(res), k->attempts);
      } else if (status == 200) {
        char why[200];
        char *text = NULL;
        if (llm_parse_response(c->o.api, x->resp ? x->resp : "", x->len, &text, &c->st.input_tokens,
                               &c->st.output_tokens, why, sizeof why) == 0) {
          if (c->cache) {
            int p = llm_cache_put(c->cache, c->url, c->model, k->prompt, text, err);
            if (p < 0) {
              free(text);
              rc = p;
              xfer_free(x);
              for (int s = 0; s < c->o.parallel; s++)
                if (active[s] == x) active[s] = NULL;
              n_active--;
              goto out;
            }
          }
          k->text = text;
          k->rc = 0;
          k->error[0] = 0;
        } else {
          retry = 1;
          call_error(c, k, "bad response: %s (%d attempts)", why, k->attempts);
        }
      } else {
        retry = retryable_status(status);
        char snip[160] = "";
        if (x->resp) {  // scrub the whole body first, so a cut never leaves part of the key
          char *r = redact_dup(x->resp, c->key);
          snprintf(snip, sizeof snip, "%s", r);
          free(r);
        }
        call_error(c, k, "http %ld: %s (%d attempts)", status, snip, k->attempts);
      }
      if (retry && k->attempts <= c->o.max_retries) {
        double d = backoff_s(c, k->attempts);
        if (x->retry_after_s >= 0) {
          d = x->retry_after_s;
          double cap = (double)c->o.backoff_max_ms / 1000.0;
          if (d > cap) d = cap;
          if (t2 + d > c->pause_until_s) c->pause_until_s = t2 + d;
        }
        not_before[x->idx] = t2 + d;
        state[x->idx] = ST_PENDING;
        PS_INFO("llm retry call=%zu attempt=%d delay_s=%.3f reason=\"%s\"", x->idx, k->attempts, d, k->error);
      } else {
        state[x->idx] = ST_DONE;
        n_done++;
        if (k->text) {
          c->st.answered++;
        } else {
          k->rc = PS_EPROTO;
          c->st.failed++;
          PS_WARN("llm failed call=%zu reason=\"%s\"", x->idx, k->error);
        }
        if (c->o.progress) c->o.progress(c->o.progress_ctx, &c->st);
      }
      for (int s = 0; s < c->o.parallel; s++)
        if (active[s] == x) active[s] = NULL;
      n_active--;
      xfer_free(x);
    }
    if (n_done >= n) break;
    double w = wake - ps_mono_s();
    int ms = w <= 0 ? 0 : (int)(w * 1000.0) + 1;
    if (ms > 200) ms = 200;
    if (n_active) curl_multi_poll(c->multi, NULL, 0, ms, NULL);
    else if (ms > 0) {
      struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
out:
  for (int s = 0; s < c->o.parallel; s++)
    if (active[s]) {
      curl_multi_remove_handle(c->multi, active[s]->easy);
      xfer_free(active[s]);
    }
  free(active);
  free(state);
  free(not_before);
  return rc;
}
