#include "strmap.h"

#include "hash.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

typedef struct slot {
  char *key;
  uint64_t hash, value;
} slot_t;

struct strmap {
  slot_t *slots;
  size_t cap, n;
};

uint64_t strmap_hash(const char *s) {
  uint64_t h = ps_fnv1a64(s);
  return h ? h : 1;
}

strmap_t *strmap_new(size_t expected) {
  strmap_t *m = ps_xcalloc(1, sizeof *m);
  m->cap = 16;
  while (m->cap < expected * 2) m->cap <<= 1;
  m->slots = ps_xcalloc(m->cap, sizeof(slot_t));
  return m;
}

void strmap_destroy(strmap_t **mp) {
  if (!mp || !*mp) return;
  strmap_t *m = *mp;
  for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
  free(m->slots);
  free(m);
  *mp = NULL;
}

static slot_t *find(const strmap_t *m, const char *key, uint64_t h) {
  size_t i = h & (m->cap - 1);
  for (;;) {
    slot_t *s = &m->slots[i];
    if (!s->key || (s->hash == h && !strcmp(s->key, key))) return s;
    i = (i + 1) & (m->cap - 1);
  }
}

static void grow(strmap_t *m) {
  slot_t *old = m->slots;
  size_t oc = m->cap;
  m->cap *= 2;
  m->slots = ps_xcalloc(m->cap, sizeof(slot_t));
  for (size_t i = 0; i < oc; i++)
    if (old[i].key) *find(m, old[i].key, old[i].hash) = old[i];
  free(old);
}

int strmap_put(strmap_t *m, const char *key, uint64_t value) {
  if ((m->n + 1) * 2 > m->cap) grow(m);
  uint64_t h = strmap_hash(key);
  slot_t *s = find(m, key, h);
  if (s->key) {
    s->value = value;
    return 0;
  }
  s->key = ps_xstrdup(key);
  s->hash = h;
  s->value = value;
  m->n++;
  return 1;
}

int strmap_get(const strmap_t *m, const char *key, uint64_t *value) {
  const slot_t *s = find(m, key, strmap_hash(key));
  if (!s->key) return 0;
  if (value) *value = s->value;
  return 1;
}

size_t strmap_size(const strmap_t *m) { return m->n; }
