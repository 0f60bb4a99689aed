// cache.h — the interpreter's LLM response cache (RocksDB): key = (endpoint, model, prompt),
// value = the response text. Each put is one synced write, so after kill -9 every response that
// was stored before the kill is found again and no request is paid twice.
#ifndef PS_INTERP_CACHE_H
#define PS_INTERP_CACHE_H

#include <stddef.h>

#include "err.h"

typedef struct llm_cache llm_cache_t;

// Open (create if missing) the cache directory. Caller destroys.
int llm_cache_open(llm_cache_t **out, const char *path, ps_err_t *err);
void llm_cache_destroy(llm_cache_t **c);

// 1 and *text (malloc'ed, caller frees) on a hit, 0 on a miss, <0 on a store error.
int llm_cache_get(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, char **text,
                  ps_err_t *err);
// Store a response (synced write). 0 or <0.
int llm_cache_put(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, const char *text,
                  ps_err_t *err);
// Remove a response (an answer that could not be used: the next request asks the model again).
int llm_cache_del(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, ps_err_t *err);
// Entries in the cache (an estimate from RocksDB is not used: this iterates; for tests and logs).
size_t llm_cache_count(llm_cache_t *c);

#endif
