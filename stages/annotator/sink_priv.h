// sink_priv.h — what the sink's two files share (sink.c: staging, completion, resends;
// sink_write.c: a complete proteome's output, result and ack). Not an API: callers use sink.h.
#ifndef PS_ANNOTATOR_SINK_PRIV_H
#define PS_ANNOTATOR_SINK_PRIV_H

#include <limits.h>

#include "annstore.h"
#include "sink.h"
#include "stage.h"

typedef struct entry {   // one proteome in flight: counters only, its data is in the store
  char key[160];
  char producer[256];
  double t_first;        // wall clock
  uint64_t n_staged;     // distinct seqs staged
  uint64_t seq_end;      // highest staged seq + 1
  uint64_t proteins;     // proteins staged since open (progress lines)
  int eos_known;
  stage_eos_t eos;
  int64_t last_progress, last_resend, last_log;
} entry_t;

struct sink {
  sink_opts_t o;
  as_t *as;
  as_wb_t *wb;
  sink_send_fn send;
  void *send_ctx;
  entry_t *e;
  size_t n, cap;
  sink_counts_t c;
  uint64_t *seqs;        // SINK_MAX_RESEND scratch
  char out[PATH_MAX], tmpdir[PATH_MAX + 8];  // o.out and o.state point here and into as
};

// K's output, result and ack (e is removed from s->e on success: the pointer is dead after).
int sink_finish(sink_t *s, entry_t *e, ps_err_t *err);
// Record K as failed with msg (its staging dropped), ack it; e (may be NULL) removed.
int sink_fail(sink_t *s, const char *key, const char *producer, entry_t *e, const stage_eos_t *eos, const char *msg,
              ps_err_t *err);
void sink_ack(sink_t *s, const char *producer, const char *key);

#endif
