// cache.c — see cache.h. Keys are "v1\0" endpoint "\0" model "\0" prompt (bytes, no hashing, so
// two prompts never collide).
#include "cache.h"

#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

struct llm_cache {
  rocksdb_t *db;
  rocksdb_options_t *opts;
  rocksdb_readoptions_t *ro;
  rocksdb_writeoptions_t *wo;
  char *path;
};

// The one place a RocksDB error string becomes a return code.
static int cache_check(char *rerr, const char *path, const char *what, ps_err_t *err) {
  if (!rerr) return 0;
  int rc = ps_err_set(err, PS_ESTORE, "%s: %s: %s", path, what, rerr);
  rocksdb_free(rerr);
  return rc;
}

static char *make_key(const char *endpoint, const char *model, const char *prompt, size_t *len) {
  size_t a = strlen(endpoint), b = strlen(model), c = strlen(prompt);
  *len = 3 + a + 1 + b + 1 + c;
  char *k = ps_xmalloc(*len);
  memcpy(k, "v1", 3);
  memcpy(k + 3, endpoint, a + 1);
  memcpy(k + 4 + a, model, b + 1);
  memcpy(k + 5 + a + b, prompt, c);
  return k;
}

int llm_cache_open(llm_cache_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  llm_cache_t *c = ps_xcalloc(1, sizeof *c);
  c->path = ps_xstrdup(path);
  c->opts = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(c->opts, 1);
  rocksdb_options_set_max_open_files(c->opts, 64);
  c->ro = rocksdb_readoptions_create();
  c->wo = rocksdb_writeoptions_create();
  rocksdb_writeoptions_set_sync(c->wo, 1);
  char *rerr = NULL;
  c->db = rocksdb_open(c->opts, path, &rerr);
  int rc = cache_check(rerr, path, "open", err);
  if (rc < 0) {
    llm_cache_destroy(&c);
    return rc;
  }
  *out = c;
  return 0;
}

void llm_cache_destroy(llm_cache_t **cp) {
  if (!cp || !*cp) return;
  llm_cache_t *c = *cp;
  if (c->db) rocksdb_close(c->db);
  rocksdb_readoptions_destroy(c->ro);
  rocksdb_writeoptions_destroy(c->wo);
  rocksdb_options_destroy(c->opts);
  free(c->path);
  free(c);
  *cp = NULL;
}

int llm_cache_get(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, char **text,
                  ps_err_t *err) {
  *text = NULL;
  size_t klen, vlen = 0;
  char *key = make_key(endpoint, model, prompt, &klen);
  char *rerr = NULL;
  char *v = rocksdb_get(c->db, c->ro, key, klen, &vlen, &rerr);
  free(key);
  int rc = cache_check(rerr, c->path, "get", err);
  if (rc < 0) return rc;
  if (!v) return 0;
  *text = ps_xmalloc(vlen + 1);
  memcpy(*text, v, vlen);
  (*text)[vlen] = 0;
  rocksdb_free(v);
  return 1;
}

int llm_cache_put(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, const char *text,
                  ps_err_t *err) {
  size_t klen;
  char *key = make_key(endpoint, model, prompt, &klen);
  char *rerr = NULL;
  rocksdb_put(c->db, c->wo, key, klen, text, strlen(text), &rerr);
  free(key);
  return cache_check(rerr, c->path, "put", err);
}

int llm_cache_del(llm_cache_t *c, const char *endpoint, const char *model, const char *prompt, ps_err_t *err) {
  size_t klen;
  char *key = make_key(endpoint, model, prompt, &klen);
  char *rerr = NULL;
  rocksdb_delete(c->db, c->wo, key, klen, &rerr);
  free(key);
  return cache_check(rerr, c->path, "delete", err);
}

size_t llm_cache_count(llm_cache_t *c) {
  rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ro);
  size_t n = 0;
  for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) n++;
  rocksdb_iter_destroy(it);
  return n;
}
