// llm_test_server.h — a local HTTP server (libmicrohttpd, a thread per connection) that speaks the
// Anthropic Messages API (POST /v1/messages) and OpenAI chat completions (POST
// .../chat/completions), for the interpreter's client tests. It records every request (path,
// headers, body, prompt, arrival time, whether the response was sent completely).
//
// Behaviour is chosen per prompt by tags inside the prompt text (attempts counted per prompt):
//   [429xN:R]  the first N attempts get 429 (with "retry-after: R" seconds when R > 0)
//   [500xN]    the first N attempts get 500
//   [badjsonxN] the first N attempts get 200 with malformed JSON
//   [truncxN]  the first N attempts get 200 with a body cut short (Content-Length promises more)
//   [slowMS]   every attempt waits MS milliseconds before answering
//   [hang]     every attempt gets 200 headers and a body that never ends
//   [401]      401 with a body that echoes the x-api-key / Authorization it received
// A request whose key header differs from the expected key (when one is set) gets 401 (echoing it).
// Otherwise: 200 with the reply (default "A:" + prompt; see llm_test_server_set_reply).
#ifndef LLM_TEST_SERVER_H
#define LLM_TEST_SERVER_H

#include <stddef.h>

typedef struct llm_test_request {
  char path[256];
  char x_api_key[512], authorization[512], anthropic_version[128], content_type[128];
  char *body;     // raw request body (owned by the server)
  char *prompt;   // messages[0].content or NULL
  char *model;    // body "model" or NULL
  double max_tokens, temperature;  // -1 when absent
  double t_arrive;  // monotonic seconds when the request (headers) arrived
  int completed;    // response sent completely
  int status;       // status answered
} llm_test_request_t;

typedef struct llm_test_server llm_test_server_t;

// expected_key: NULL = accept any key. Returns NULL on failure (port 0: the OS picks one).
llm_test_server_t *llm_test_server_start(const char *expected_key);
void llm_test_server_stop(llm_test_server_t **s);
int llm_test_server_port(const llm_test_server_t *s);
// "http://127.0.0.1:PORT"
const char *llm_test_server_url(const llm_test_server_t *s);
void llm_test_server_set_reply(llm_test_server_t *s, char *(*fn)(const char *prompt, void *ud), void *ud);
// The first n requests of the server (whatever their prompt) get status (e.g. 500).
void llm_test_server_set_fail_first(llm_test_server_t *s, int n, int status);
// Delay every successful answer by ms milliseconds (besides any [slowMS] tag).
void llm_test_server_set_delay_ms(llm_test_server_t *s, int ms);
size_t llm_test_server_n_requests(llm_test_server_t *s);
// Copy of request i (pointers borrowed until stop). 0 or -1.
int llm_test_server_get(llm_test_server_t *s, size_t i, llm_test_request_t *out);
// Requests with this prompt (completed_only: only those answered in full).
size_t llm_test_server_count(llm_test_server_t *s, const char *prompt, int completed_only);
double llm_test_now(void);

#endif
