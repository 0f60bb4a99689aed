// sink_write.c — a complete proteome's output: its staged proteins in FASTA order through the
// annotation engine into OUT/.tmp, fsync, rename into place; then its result and the removal of
// its staging in one synced commit; then the ack. Also a failed proteome's record. See sink.h.
#include "sink_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "log.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static void entry_remove(sink_t *s, entry_t *e) {
  size_t i = (size_t)(e - s->e);
  if (i < s->n) s->e[i] = s->e[--s->n];  // order does not matter
}

// Commit K's result with the removal of its staging, then ack.
static int commit_result(sink_t *s, as_result_t *r, ps_err_t *err) {
  r->t_done = ps_wall_s();
  as_wb_clear(s->wb);
  as_wb_put_result(s->as, s->wb, r);
  stage_drop(s->as, s->wb, r->key);
  int rc = as_commit(s->as, s->wb, 1, err);
  if (rc < 0) return rc;
  sink_ack(s, r->producer, r->key);
  return 0;
}

int sink_fail(sink_t *s, const char *key, const char *producer, entry_t *e, const stage_eos_t *eos, const char *msg,
              ps_err_t *err) {
  char name[160];
  sink_key_name(key, name, sizeof name);
  as_result_t r;
  memset(&r, 0, sizeof r);
  r.key = (char *)key, r.name = name, r.producer = (char *)producer, r.error = (char *)msg;
  r.status = AS_STATUS_FAILED;
  r.skipped = (int64_t)eos->skipped;
  r.t_first = e ? e->t_first : ps_wall_s();
  r.tsv = r.jsonl = r.eval_txt = (char *)"";
  int rc = commit_result(s, &r, err);
  if (rc < 0) return rc;
  s->c.failed++;
  PS_ERROR("proteome failed key=%s producer=%s error=\"%s\"", key, producer, msg);
  if (e) entry_remove(s, e);
  return 0;
}

// ---- the output files -----------------------------------------------------------------------------------
typedef struct out_ctx {
  sink_t *s;
  FILE *tsv, *jsonl;
  annot_fmax_t fm[ANNOT_N_FM];
  annot_stats_t st;
  ps_err_t perr;         // the proteome's own error (not the output's)
} out_ctx_t;

static int write_protein(uint64_t index, const char *id, uint32_t nnz, const uint32_t *idx, const float *val, void *c) {
  out_ctx_t *x = c;
  int rc = annot_protein(x->s->o.model, id, idx, val, nnz, x->tsv, x->jsonl, x->s->o.truth, x->s->o.truth ? x->fm : NULL,
                         &x->st, &x->perr);
  if (rc < 0) ps_err_prefix(&x->perr, "record %" PRIu64 ": ", index);
  return rc;
}

static int out_fault(ps_err_t *err, const char *path, int e, const char *what) {
  return ps_err_set(err, e ? -e : PS_EIO, "%s: cannot %s the output: %s (the proteome stays staged)", path, what,
                    strerror(e ? e : EIO));
}

int sink_finish(sink_t *s, entry_t *e, ps_err_t *err) {
  char name[160], t_tsv[PATH_MAX], t_js[PATH_MAX], t_ev[PATH_MAX], o_tsv[PATH_MAX], o_js[PATH_MAX], o_ev[PATH_MAX];
  sink_key_name(e->key, name, sizeof name);
  if ((mkdir(s->o.out, 0755) != 0 && errno != EEXIST) || (mkdir(s->tmpdir, 0755) != 0 && errno != EEXIST))
    return out_fault(err, s->tmpdir, errno, "create");
  snprintf(t_tsv, sizeof t_tsv, "%s/%s.tsv", s->tmpdir, e->key);
  snprintf(t_js, sizeof t_js, "%s/%s.jsonl", s->tmpdir, e->key);
  snprintf(t_ev, sizeof t_ev, "%s/%s.eval.txt", s->tmpdir, e->key);
  snprintf(o_tsv, sizeof o_tsv, "%s/%s.tsv", s->o.out, name);
  snprintf(o_js, sizeof o_js, "%s/%s.jsonl", s->o.out, name);
  snprintf(o_ev, sizeof o_ev, "%s/%s.eval.txt", s->o.out, name);
  out_ctx_t x;
  memset(&x, 0, sizeof x);
  x.s = s;
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_init(&x.fm[k]);
  if (!(x.tsv = fopen(t_tsv, "w")) || !(x.jsonl = fopen(t_js, "w"))) {
    int en = errno;
    if (x.tsv) fclose(x.tsv);
    return out_fault(err, x.tsv ? t_js : t_tsv, en, "create");
  }
  annot_write_header(x.tsv);
  int rc = stage_proteins_each(s->as, e->key, write_protein, &x, err);
  int rt = ps_fclose_synced(x.tsv), rj = ps_fclose_synced(x.jsonl);  // an earlier ferror counts as a failure
  if (rt < 0 || rj < 0) {
    annot_stats_free(&x.st);
    unlink(t_tsv), unlink(t_js);
    return out_fault(err, rt < 0 ? t_tsv : t_js, rt < 0 ? -rt : -rj, "write");
  }
  if (rc < 0 && x.perr.msg[0]) {  // the proteome's own fault (an id the JSON cannot hold, ...): failed
    annot_stats_free(&x.st);
    unlink(t_tsv), unlink(t_js);
    char msg[1200];
    snprintf(msg, sizeof msg, "%s: %s", e->key, x.perr.msg);
    return sink_fail(s, e->key, e->producer, e, &e->eos, msg, err);
  }
  if (rc < 0) {  // the store: fatal
    annot_stats_free(&x.st);
    unlink(t_tsv), unlink(t_js);
    return rc;
  }
  annot_eval_t ev;
  memset(&ev, 0, sizeof ev);
  if (s->o.truth) {
    annot_eval_finish(s->o.model, s->o.truth, x.fm, &x.st, &ev);
    char text[2048];
    int n = annot_eval_text(&ev, text, sizeof text);
    FILE *f = fopen(t_ev, "w");
    if (!f) {
      int en = errno;
      annot_stats_free(&x.st);
      unlink(t_tsv), unlink(t_js);
      return out_fault(err, t_ev, en, "create");
    }
    fwrite(text, 1, (size_t)n, f);
    if ((rc = ps_fclose_synced(f)) < 0 || rename(t_ev, o_ev) != 0) {
      annot_stats_free(&x.st);
      unlink(t_tsv), unlink(t_js), unlink(t_ev);
      return out_fault(err, o_ev, rc < 0 ? -rc : errno, "write");
    }
  }
  if (rename(t_tsv, o_tsv) != 0 || rename(t_js, o_js) != 0 || ps_fsync_dir(s->o.out) < 0) {
    annot_stats_free(&x.st);
    return out_fault(err, o_tsv, errno, "rename into place");
  }
  if (e->eos.proteins && (uint64_t)x.st.n_proteins != e->eos.proteins)
    PS_WARN("proteome %s: %lld proteins written, the reader sent %" PRIu64 " (a source_index given twice?)", e->key,
            (long long)x.st.n_proteins, e->eos.proteins);
  as_result_t r;
  memset(&r, 0, sizeof r);
  r.key = e->key, r.name = name, r.producer = e->producer, r.status = AS_STATUS_DONE, r.error = (char *)"";
  r.proteins = x.st.n_proteins, r.skipped = (int64_t)e->eos.skipped, r.with_go = x.st.n_with_go;
  r.residues = (int64_t)e->eos.residues;
  r.mean_active = x.st.n_proteins ? (double)x.st.n_active_sum / (double)x.st.n_proteins : 0;
  r.tsv = o_tsv, r.jsonl = o_js, r.eval_txt = s->o.truth ? o_ev : (char *)"";
  if ((r.evaluated = s->o.truth != NULL)) {
    r.n_evaluated = ev.n_evaluated;
    for (int k = 0; k < AS_N_FM; k++) r.fmax[k] = ev.fm[k].fmax, r.threshold[k] = ev.fm[k].tau, r.naive[k] = ev.naive[k].fmax;
  }
  r.t_first = e->t_first;
  annot_stats_free(&x.st);
  if ((rc = commit_result(s, &r, err)) < 0) return rc;
  s->c.done++;
  s->c.proteins += (uint64_t)r.proteins;
  s->c.residues += (uint64_t)r.residues;
  if (r.evaluated)
    PS_INFO("proteome done key=%s proteins=%lld with_go=%lld mean_active=%.2f fmax=%.4f naive_fmax=%.4f tsv=%s", r.key,
            (long long)r.proteins, (long long)r.with_go, r.mean_active, r.fmax[0], r.naive[0], o_tsv);
  else
    PS_INFO("proteome done key=%s proteins=%lld with_go=%lld mean_active=%.2f tsv=%s", r.key, (long long)r.proteins,
            (long long)r.with_go, r.mean_active, o_tsv);
  entry_remove(s, e);
  return 0;
}
