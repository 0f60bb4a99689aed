// replay.c — see replay.h.
#include "replay.h"

#include <string.h>

struct replay {
  const reader_opts_t *opts;
  reader_t *rd;
  uint64_t first;
  reader_pos_t *pos;
  size_t n, cap;
};

replay_t *replay_new(const reader_opts_t *opts, uint64_t first_seq) {
  replay_t *r = ps_xcalloc(1, sizeof *r);
  r->opts = opts;
  r->first = first_seq;
  return r;
}

void replay_destroy(replay_t **rp) {
  replay_t *r = *rp;
  if (!r) return;
  reader_destroy(&r->rd);
  free(r->pos);
  free(r);
  *rp = NULL;
}

void replay_note(replay_t *r, uint64_t seq, const reader_pos_t *pos) {
  if (seq < r->first) return;
  size_t i = (size_t)(seq - r->first);
  if (i >= r->cap) {
    r->cap = r->cap ? 2 * r->cap : 1024;
    while (r->cap <= i) r->cap *= 2;
    r->pos = ps_xrealloc(r->pos, r->cap * sizeof *r->pos);
  }
  for (; r->n < i; r->n++) memset(&r->pos[r->n], 0xff, sizeof *r->pos);  // gaps: unknown
  r->pos[i] = *pos;
  if (i >= r->n) r->n = i + 1;
}

int replay_batch(replay_t *r, uint64_t seq, reader_batch_t *b, ps_err_t *err) {
  if (seq < r->first || seq - r->first >= r->n) return 0;
  const reader_pos_t *p = &r->pos[seq - r->first];
  if (p->seq != seq) return 0;
  int rc;
  if (!r->rd && (rc = reader_new(&r->rd, r->opts, err)) < 0) return rc;
  if ((rc = reader_seek(r->rd, p, err)) < 0) return rc;
  if ((rc = reader_next_batch(r->rd, b, err)) < 0) return rc;
  if (rc == 0 || b->seq != seq)
    return ps_err_set(err, PS_ESTATE, "replay of batch seq=%llu: the source gave %s", (unsigned long long)seq,
                      rc == 0 ? "no batch" : "another batch (did the input files change?)");
  return 1;
}
