// llm.h — LLM clients over libcurl: the Anthropic Messages API and OpenAI-compatible chat
// completions (llama.cpp, vLLM, Ollama, ...).
//
// llm_run() takes a batch of prompts and answers each one: first from the cache (cache.h), then
// over HTTP with up to `parallel` transfers in flight (curl multi), a rate limit (requests and
// estimated tokens per minute, spaced evenly: GCRA with a burst of one), per-request timeouts
// and retries with exponential backoff and jitter on 429 / 408 / 5xx / 529, timeouts, transport
// errors, truncated bodies and malformed JSON. A retry-after (or retry-after-ms) header sets the
// delay instead, and pauses every new request for that long. Other statuses (400, 401, 403, 404)
// fail at once. Each response is stored in the cache as soon as it arrives.
//
// The key: sent only in its header (Anthropic x-api-key, OpenAI Authorization: Bearer); never in
// a log line, an error message (server texts are scrubbed of it) or the cache (keys are endpoint,
// model and prompt).
//
// Requests: Anthropic POST BASE/v1/messages {model, max_tokens, temperature, messages:[{role:
// user, content}]} with x-api-key, anthropic-version, content-type; OpenAI POST
// BASE/chat/completions {model, max_tokens, temperature, messages} (BASE usually ends in /v1).
#ifndef PS_INTERP_LLM_H
#define PS_INTERP_LLM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "err.h"

typedef enum { LLM_API_ANTHROPIC = 0, LLM_API_OPENAI = 1 } llm_api_t;

#define LLM_ANTHROPIC_DEFAULT_URL "https://api.anthropic.com"
#define LLM_OPENAI_DEFAULT_URL "http://127.0.0.1:8080/v1"

typedef struct llm_stats llm_stats_t;

typedef struct llm_opts {
  llm_api_t api;
  const char *base_url;          // NULL = LLM_*_DEFAULT_URL
  const char *model;             // required
  const char *api_key;           // NULL / "" = none (required for Anthropic); copied
  const char *anthropic_version; // NULL = "2023-06-01"
  double temperature;            // 0
  int max_tokens;                // 512
  int parallel;                  // transfers in flight (4)
  double requests_per_min;       // 0 = unlimited
  double tokens_per_min;         // 0 = unlimited; a request counts strlen(prompt)/4 + max_tokens
  int max_retries;               // retries after the first attempt (5)
  long timeout_ms;               // whole request (60000)
  long connect_timeout_ms;       // (10000)
  long backoff_base_ms;          // first retry delay before jitter (1000); doubles each retry
  long backoff_max_ms;           // cap of the backoff and of retry-after (60000)
  uint64_t seed;                 // jitter
  const volatile sig_atomic_t *stop;  // when set and nonzero, llm_run stops (PS_EINTR)
  // Called (on llm_run's thread) each time a call is done, answered or failed: for monitoring.
  void (*progress)(void *ctx, const llm_stats_t *st);
  void *progress_ctx;
} llm_opts_t;

void llm_opts_default(llm_opts_t *o);
llm_api_t llm_api_parse(const char *s, int *ok);   // "anthropic" | "openai"

typedef struct llm_call {
  const char *prompt;   // in: borrowed for the duration of llm_run
  char *text;           // out: response text (malloc'ed; llm_calls_free frees) or NULL on failure
  int rc;               // out: 0 = answered, <0 = failed (error says why)
  char error[256];      // out: "http 401: ...", "timeout (3 attempts)", ...; never holds the key
  int attempts;         // out: HTTP attempts made (0 when cached)
  int cached;           // out: answered from the cache
  long http_status;     // out: status of the last attempt (0 = none)
} llm_call_t;

void llm_calls_free(llm_call_t *calls, size_t n);  // frees text fields (not the array)

struct llm_stats {
  uint64_t requests, retries, cache_hits, answered, failed;
  uint64_t input_tokens, output_tokens;  // as reported by the server's usage
};

typedef struct llm_client llm_client_t;

// cache may be NULL (no caching); it is borrowed and must outlive the client.
int llm_client_new(llm_client_t **out, const llm_opts_t *o, llm_cache_t *cache, ps_err_t *err);
void llm_client_destroy(llm_client_t **c);

// Answer calls[0..n). Returns 0 when the batch ran (per-call failures are in calls[i].rc), PS_EINTR
// when *opts.stop became nonzero, or <0 on a cache (RocksDB) error.
int llm_run(llm_client_t *c, llm_call_t *calls, size_t n, ps_err_t *err);

// Forget the cached answer to prompt (it was unusable: unparseable); 0 or <0 (cache error).
int llm_forget(llm_client_t *c, const char *prompt, ps_err_t *err);
const char *llm_endpoint(const llm_client_t *c);   // full request URL (borrowed)
void llm_get_stats(const llm_client_t *c, llm_stats_t *s);

// Response body -> text (exposed for tests and fuzzing). 0 and *text (caller frees), or <0 with
// a reason in why (cap bytes).
int llm_parse_response(llm_api_t api, const char *body, size_t len, char **text, uint64_t *in_tok,
                       uint64_t *out_tok, char *why, size_t cap);

// 1 when a key sent to url would cross the network unencrypted: plain http (or no scheme, which
// curl takes as http) to a host other than localhost, 127.0.0.0/8 or [::1]. llm_client_new logs
// a warning naming the base URL (never the key) when a key is set and this holds.
int llm_url_is_insecure(const char *url);

// Read an API key from a file (first line, trimmed). *key malloc'ed. Errors name the file, never
// the contents.
int llm_read_key_file(const char *path, char **key, ps_err_t *err);

#endif
