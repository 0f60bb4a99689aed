// sink.c — the sink's staging: batches and ends of proteome streams into the store (deduplicated,
// checked), completion, and the requests for missing pieces. See sink.h.
#include "sink_priv.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "log.h"
#include "wire.h"

#define PROGRESS_LOG_MS 10000  // a staging progress line per proteome at most this often
#define CLOCK_UNSET INT64_MIN  // an entry loaded at open: no time of progress yet
#define NEVER (INT64_MIN / 4)  // nothing asked yet (now - NEVER cannot overflow)

int sink_key_name(const char *key, char *name, size_t cap) {
  size_t n = key ? strlen(key) : 0;
  if (n < 18 || n > 128 + 17 || key[0] == '.' || key[n - 17] != '.') return 0;
  for (size_t i = n - 16; i < n; i++)
    if (!((key[i] >= '0' && key[i] <= '9') || (key[i] >= 'a' && key[i] <= 'f'))) return 0;
  for (size_t i = 0; i < n - 17; i++) {
    char c = key[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
      return 0;
  }
  if (n - 17 >= cap) return 0;
  memcpy(name, key, n - 17);
  name[n - 17] = 0;
  return 1;
}

static entry_t *entry_find(sink_t *s, const char *key) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->e[i].key, key)) return &s->e[i];
  return NULL;
}

static entry_t *entry_add(sink_t *s, const char *key, const char *producer, double t_first, int64_t now) {
  if (s->n == s->cap) s->e = ps_xrealloc(s->e, (s->cap = s->cap ? 2 * s->cap : 16) * sizeof *s->e);
  entry_t *e = &s->e[s->n++];
  memset(e, 0, sizeof *e);
  snprintf(e->key, sizeof e->key, "%s", key);
  snprintf(e->producer, sizeof e->producer, "%s", producer);
  e->t_first = t_first;
  e->last_progress = now;
  e->last_log = now == CLOCK_UNSET ? now : now - PROGRESS_LOG_MS;
  e->last_resend = NEVER;
  return e;
}

// ---- open: the proteomes in flight from the store ----------------------------------------------------
struct load_ctx {
  sink_t *s;
  entry_t *e;
  ps_err_t *err;
};
static int load_seq(uint64_t seq, void *c) {
  entry_t *e = c;
  e->n_staged++;
  if (seq + 1 > e->seq_end) e->seq_end = seq + 1;
  return 0;
}
static int load_head(const char *key, double t_first, const char *producer, void *c) {
  struct load_ctx *x = c;
  entry_t *e = entry_add(x->s, key, producer, t_first, CLOCK_UNSET);  // the first sink_poll starts its clock
  int rc = stage_seqs_each(x->s->as, key, load_seq, e, x->err);
  if (rc >= 0 && (rc = stage_get_eos(x->s->as, key, &e->eos, x->err)) >= 0) e->eos_known = rc;
  return rc < 0 ? rc : 0;
}

int sink_open(sink_t **out, const sink_opts_t *o, sink_send_fn send, void *send_ctx, ps_err_t *err) {
  *out = NULL;
  sink_t *s = ps_xcalloc(1, sizeof *s);
  s->o = *o;
  if (s->o.resend_after_ms <= 0) s->o.resend_after_ms = 10000;
  s->send = send;
  s->send_ctx = send_ctx;
  s->wb = as_wb_new();
  s->seqs = ps_xmalloc(SINK_MAX_RESEND * sizeof *s->seqs);
  snprintf(s->out, sizeof s->out, "%s", o->out);  // the caller's strings are not kept
  snprintf(s->tmpdir, sizeof s->tmpdir, "%s/.tmp", s->out);
  s->o.out = s->out;
  int rc = as_open(&s->as, o->state, AS_OPEN_CREATE, err);
  if (rc < 0) goto fail;
  s->o.state = as_path(s->as);
  struct load_ctx lc = {s, NULL, err};
  if ((rc = stage_heads_each(s->as, load_head, &lc, err)) < 0) goto fail;
  for (size_t i = 0; i < s->n; i++)
    PS_INFO("proteome in flight key=%s batches_staged=%" PRIu64 " end=%s", s->e[i].key, s->e[i].n_staged,
            s->e[i].eos_known ? "known" : "unknown");
  *out = s;
  return 0;
fail:
  ps_err_prefix(err, "annotator: ");
  sink_close(&s);
  return rc;
}

void sink_close(sink_t **sp) {
  sink_t *s = *sp;
  if (!s) return;
  as_wb_free(&s->wb);
  as_close(&s->as);
  free(s->e);
  free(s->seqs);
  free(s);
  *sp = NULL;
}

const sink_counts_t *sink_counts(const sink_t *s) { return &s->c; }
size_t sink_in_flight(const sink_t *s) { return s->n; }

void sink_ack(sink_t *s, const char *producer, const char *key) {
  s->c.acks++;
  if (s->send) s->send(s->send_ctx, producer, key, NULL, 0, 1);
}

static int complete(const entry_t *e) { return e->eos_known && e->n_staged == e->eos.batches; }

#define REJECT(...)                                  \
  do {                                               \
    s->c.rejected++;                                 \
    return ps_err_set(err, PS_EPROTO, __VA_ARGS__);  \
  } while (0)

// 1 when K has a result: the message is a duplicate (counted; acked again when ack).
static int committed(sink_t *s, const char *key, const char *producer, int ack, ps_err_t *err) {
  as_result_t r;
  int rc = as_result_get(s->as, key, &r, err);
  if (rc <= 0) return rc;
  as_result_free(&r);
  s->c.duplicates++;
  if (ack) sink_ack(s, producer, key);
  return 1;
}

static int check_values(const float *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i]) || v[i] < 0) return (int)i;
  return -1;
}

// ---- a batch ----------------------------------------------------------------------------------------
int sink_batch(sink_t *s, const Protsae__FeatureBatch *fb, int64_t now, ps_err_t *err) {
  const char *prod = fb->source_producer, *key = fb->proteome;
  unsigned long long seq = (unsigned long long)fb->source_seq;
  char name[160];
  int rc;
  if (!prod || !prod[0] || strlen(prod) >= 256) REJECT("FeatureBatch seq=%llu without a source_producer", seq);
  if (!sink_key_name(key, name, sizeof name))
    REJECT("%s batch seq=%llu: proteome key '%.160s' is not NAME.HASH (NAME [A-Za-z0-9_.-]{1,128}, HASH 16 hex digits)",
           prod, seq, key ? key : "");
  if (fb->source_seq >= SINK_MAX_SEQ) REJECT("%s %s batch seq=%llu: over the bound of 2^32 batches", prod, key, seq);
  if ((rc = committed(s, key, prod, fb->source_seq == 0, err)) != 0) return rc < 0 ? rc : 0;
  // checked before anything changes
  int64_t nf = annot_model_n_features(s->o.model);
  if ((int64_t)fb->n_features != nf)
    REJECT("%s %s batch seq=%llu: %u features, the feature store's model has %lld", prod, key, seq, fb->n_features,
           (long long)nf);
  ps_err_t we = {0};
  if (wire_check_feature_batch(fb, &we) < 0) REJECT("%s %s batch seq=%llu: %s", prod, key, seq, we.msg);
  int residue = fb->level == PROTSAE__LEVEL__LEVEL_RESIDUE;
  if (residue && fb->n_pooled_indptr != fb->n_protein_ids + 1)
    REJECT("%s %s batch seq=%llu: residue-level batch without pooled codes", prod, key, seq);
  if (fb->n_source_index != fb->n_protein_ids)
    REJECT("%s %s batch seq=%llu: %zu source_index entries for %zu proteins", prod, key, seq, fb->n_source_index,
           fb->n_protein_ids);
  const uint32_t *pi = residue ? fb->pooled_indptr : fb->indptr, *px = residue ? fb->pooled_indices : fb->indices;
  const float *pv = residue ? fb->pooled_values : fb->values;
  size_t npv = residue ? fb->n_pooled_values : fb->n_values;
  int bad = check_values(pv, npv);
  if (bad >= 0) REJECT("%s %s batch seq=%llu: activation %g at entry %d (codes must be finite and >= 0)", prod, key,
                       seq, (double)pv[bad], bad);
  for (size_t p = 0; p < fb->n_protein_ids; p++)
    for (uint32_t j = pi[p]; j < pi[p + 1]; j++)
      if ((int64_t)px[j] >= nf) REJECT("%s %s batch seq=%llu: feature %u of protein %zu", prod, key, seq, px[j], p);
  entry_t *e = entry_find(s, key);
  if (e && e->eos_known && fb->source_seq >= e->eos.batches)
    REJECT("%s %s batch seq=%llu: past the proteome's end (%llu batches)", prod, key, seq,
           (unsigned long long)e->eos.batches);
  if ((rc = stage_has_seq(s->as, key, fb->source_seq, err)) != 0) {
    if (rc > 0) s->c.duplicates++;
    return rc < 0 ? rc : 0;
  }
  if (!e && s->n >= SINK_MAX_IN_FLIGHT)
    REJECT("%s %s batch seq=%llu: %d proteomes in flight already", prod, key, seq, SINK_MAX_IN_FLIGHT);
  // accepted: one commit stages the batch
  as_wb_clear(s->wb);
  if (!e) {
    e = entry_add(s, key, prod, ps_wall_s(), now);
    stage_put_head(s->as, s->wb, key, e->t_first, prod);
    PS_INFO("proteome staging key=%s producer=%s", key, prod);
  }
  for (size_t p = 0; p < fb->n_protein_ids; p++)
    stage_put_protein(s->as, s->wb, key, fb->source_index[p], fb->protein_ids[p], pi[p + 1] - pi[p], px + pi[p],
                      pv + pi[p]);
  stage_put_seq(s->as, s->wb, key, fb->source_seq);
  if ((rc = as_commit(s->as, s->wb, s->o.sync, err)) < 0) return rc;
  e->n_staged++;
  if (fb->source_seq + 1 > e->seq_end) e->seq_end = fb->source_seq + 1;
  e->proteins += fb->n_protein_ids;
  e->last_progress = now;
  s->c.staged++;
  if (e->last_log == CLOCK_UNSET || now - e->last_log >= PROGRESS_LOG_MS) {  // loaded at open: no log yet
    e->last_log = now;
    PS_INFO("proteome progress key=%s batches=%" PRIu64 "/%s proteins_staged=%" PRIu64, key, e->n_staged,
            e->eos_known ? "known" : "?", e->proteins);
  }
  if (complete(e) && (rc = sink_finish(s, e, err)) < 0) return rc;
  return 1;
}

// ---- an end ------------------------------------------------------------------------------------------
int sink_eos(sink_t *s, const Protsae__EndOfStream *m, const char *env_producer, int64_t now, ps_err_t *err) {
  int relayed = m->source_producer && m->source_producer[0];
  const char *prod = relayed ? m->source_producer : env_producer, *key = m->proteome;
  uint64_t n = relayed ? m->source_next_seq : m->batches_sent;
  const char *reason = m->reason ? m->reason : "";
  char name[160];
  int rc;
  if (!prod || !prod[0] || strlen(prod) >= 256) REJECT("EndOfStream without a producer");
  if (!sink_key_name(key, name, sizeof name))
    REJECT("%s EndOfStream: proteome key '%.160s' is not NAME.HASH", prod, key ? key : "");
  if ((rc = committed(s, key, prod, 1, err)) != 0) return rc < 0 ? rc : 0;
  entry_t *e = entry_find(s, key);
  stage_eos_t eos;
  memset(&eos, 0, sizeof eos);
  eos.batches = n, eos.proteins = m->proteins_sent, eos.skipped = m->proteins_skipped, eos.residues = m->residues_sent;
  snprintf(eos.reason, sizeof eos.reason, "%s", reason);
  if (!strncmp(reason, "error", 5)) {  // the proteome failed at the reader
    const char *msg = reason + 5;
    while (*msg == ':' || *msg == ' ') msg++;
    return (rc = sink_fail(s, key, prod, e, &eos, msg[0] ? msg : reason, err)) < 0 ? rc : 1;
  }
  if (strcmp(reason, "done") != 0)
    REJECT("%s %s EndOfStream with reason '%.200s': not the end of a proteome (\"done\" or \"error: ...\")", prod, key,
           reason);
  if (n > SINK_MAX_SEQ) REJECT("%s %s EndOfStream at %llu batches: over the bound of 2^32", prod, key, (unsigned long long)n);
  if (e && n < e->seq_end)
    REJECT("%s %s EndOfStream at %llu batches, but seq %llu is staged", prod, key, (unsigned long long)n,
           (unsigned long long)(e->seq_end - 1));
  if (e && e->eos_known && e->eos.batches == n) {  // the same end again (several encoders relay it)
    s->c.duplicates++;
    return 0;
  }
  if (!e && s->n >= SINK_MAX_IN_FLIGHT) REJECT("%s %s EndOfStream: %d proteomes in flight already", prod, key,
                                               SINK_MAX_IN_FLIGHT);
  as_wb_clear(s->wb);
  if (!e) {
    e = entry_add(s, key, prod, ps_wall_s(), now);
    stage_put_head(s->as, s->wb, key, e->t_first, prod);
  }
  stage_put_eos(s->as, s->wb, key, &eos);
  if ((rc = as_commit(s->as, s->wb, s->o.sync, err)) < 0) return rc;
  e->eos = eos;
  e->eos_known = 1;
  e->last_progress = now;
  PS_INFO("proteome end key=%s batches=%" PRIu64 " staged=%" PRIu64 " proteins_sent=%" PRIu64, key, n, e->n_staged,
          eos.proteins);
  if (complete(e) && (rc = sink_finish(s, e, err)) < 0) return rc;
  return 1;
}

// ---- completion after a restart, and the requests for missing pieces ----------------------------------
struct miss_ctx {
  uint64_t next, end, n;
  uint64_t *out;
};
static int miss_fn(uint64_t seq, void *c) {
  struct miss_ctx *x = c;
  for (; x->next < seq && x->next < x->end && x->n < SINK_MAX_RESEND; x->next++) x->out[x->n++] = x->next;
  if (x->next == seq) x->next++;
  return x->n >= SINK_MAX_RESEND || x->next >= x->end ? 1 : 0;
}

int sink_poll(sink_t *s, int64_t now, ps_err_t *err) {
  int rc;
  for (size_t i = 0; i < s->n;) {
    entry_t *e = &s->e[i];
    if (complete(e)) {  // staged before a kill: finish it now (removes s->e[i])
      if ((rc = sink_finish(s, e, err)) < 0) return rc;
      continue;
    }
    i++;
    if (e->last_progress == CLOCK_UNSET) e->last_progress = e->last_log = now;
    if (now - e->last_progress < s->o.resend_after_ms || now - e->last_resend < s->o.resend_after_ms) continue;
    e->last_resend = now;
    s->c.resends++;
    if (!e->eos_known) {
      PS_WARN("proteome %s: no end after %lld ms without progress (%" PRIu64 " batches staged): asking %s for it again",
              e->key, (long long)s->o.resend_after_ms, e->n_staged, e->producer);
      if (s->send) s->send(s->send_ctx, e->producer, e->key, NULL, 0, 0);
      continue;
    }
    struct miss_ctx mc = {0, e->eos.batches, 0, s->seqs};
    if ((rc = stage_seqs_each(s->as, e->key, miss_fn, &mc, err)) < 0) return rc;
    for (; mc.next < mc.end && mc.n < SINK_MAX_RESEND; mc.next++) s->seqs[mc.n++] = mc.next;
    PS_WARN("proteome %s: %" PRIu64 " of %" PRIu64 " batches missing after %lld ms without progress: asking %s for "
            "them again (first seq %" PRIu64 ")", e->key, e->eos.batches - e->n_staged, e->eos.batches,
            (long long)s->o.resend_after_ms, e->producer, mc.n ? s->seqs[0] : 0);
    if (s->send) s->send(s->send_ctx, e->producer, e->key, s->seqs, (size_t)mc.n, 0);
  }
  return 0;
}
