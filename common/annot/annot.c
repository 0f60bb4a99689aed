// annot.c — the in-process path: one proteome's FASTA + embeddings encoded with the model's SAE and
// written through annot_protein (annot_write.c), and the one-call entry point. See annot.h.
#include "annot_priv.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "emb.h"
#include "fasta.h"
#include "godata.h"
#include "io.h"
#include "strmap.h"

// ---- one proteome ------------------------------------------------------------------------------
typedef struct fa_ids {
  char **ids;
  size_t n, cap;
  strmap_t *idx;
} fa_ids_t;

static void fa_ids_free(fa_ids_t *f) {
  for (size_t i = 0; i < f->n; i++) free(f->ids[i]);
  free(f->ids);
  strmap_destroy(&f->idx);
}

static int read_fasta_ids(const char *path, fa_ids_t *out, ps_err_t *err) {
  fasta_reader_t *r = NULL;
  int rc = fasta_open(&r, path, err);
  if (rc < 0) return rc;
  out->idx = strmap_new(1024);
  fasta_record_t rec;
  while ((rc = fasta_next(r, &rec, err)) > 0) {
    if (strmap_get(out->idx, rec.id, NULL)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: duplicate id '%s'", path, (unsigned long long)rec.line, rec.id);
      break;
    }
    if (out->n == out->cap) {
      out->cap = out->cap ? 2 * out->cap : 1024;
      out->ids = ps_xrealloc(out->ids, out->cap * sizeof *out->ids);
    }
    strmap_put(out->idx, rec.id, out->n);
    out->ids[out->n++] = ps_xstrdup(rec.id);
  }
  fasta_close(&r);
  if (rc == 0 && out->n == 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no FASTA record", path);
  return rc;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Encode the rows of one batch and write them.
static int write_batch(annot_model_t *m, const float *x, char **ids, int64_t n, sae_codes_t *codes, FILE *tsv,
                       FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, annot_stats_t *st, ps_err_t *err) {
  int rc = sae_enc_run(m->enc, x, n, codes, err);
  if (rc < 0) return rc;
  for (int64_t r = 0; r < n; r++) {
    int64_t a0 = codes->indptr[r], a1 = codes->indptr[r + 1];
    const uint32_t *idx = (const uint32_t *)(codes->indices + a0);  // ids in [0, d_sae): the same bits
    if ((rc = annot_protein(m, ids[r], idx, codes->values + a0, (size_t)(a1 - a0), tsv, jsonl, truth, fm, st, err)) < 0)
      return rc;
  }
  return 0;
}

int annot_proteome(annot_model_t *m, const char *fasta, const char *emb, const char *ids_path, FILE *tsv,
                   FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, int pace_ms, int (*stop)(void),
                   annot_stats_t *st, ps_err_t *err) {
  annot_stats_free(st);
  memset(st, 0, sizeof *st);
  fa_ids_t fa = {0};
  emb_source_t *src = NULL;
  sae_codes_t codes = {0};
  if (!m->sae) return ps_err_set(err, PS_ESTATE, "annot_proteome: the model was loaded without an SAE");
  int64_t d = m->sae->cfg.d_in, bn = m->o.batch_rows, n = 0;
  float *x = ps_xmalloc((size_t)(bn * d) * sizeof *x);
  char **bids = ps_xcalloc((size_t)bn, sizeof *bids);
  int rc = read_fasta_ids(fasta, &fa, err);
  if (rc < 0) goto out;
  st->n_fasta = (int64_t)fa.n;
  emb_source_opts_t eo = {.path = emb, .level = EMB_LEVEL_PROTEIN, .layer = -1, .ids_path = ids_path,
                          .fallback_ids = (const char *const *)fa.ids, .n_fallback_ids = fa.n};
  if ((rc = emb_source_open(&src, &eo, err)) < 0) goto out;
  annot_write_header(tsv);
  emb_record_t rec;
  for (;;) {
    rc = emb_source_next(src, &rec, err);
    if (rc < 0) goto out;
    if (rc > 0) {
      if ((int64_t)rec.dim != d) {
        rc = ps_err_set(err, PS_EDIM, "%s: record %llu (%s): dimension %u but the SAE expects %lld", emb,
                        (unsigned long long)rec.index, rec.id, rec.dim, (long long)d);
        goto out;
      }
      if (!strmap_get(fa.idx, rec.id, NULL)) {
        rc = ps_err_set(err, PS_EMISMATCH, "%s: record %llu: id '%s' is not in %s", emb, (unsigned long long)rec.index,
                        rec.id, fasta);
        goto out;
      }
      for (int64_t c = 0; c < d; c++)
        if (!isfinite(rec.rows[c])) {
          rc = ps_err_set(err, PS_ENAN, "%s: record %llu (%s): %s at column %lld", emb, (unsigned long long)rec.index,
                          rec.id, isnan(rec.rows[c]) ? "NaN" : "Inf", (long long)c);
          goto out;
        }
      memcpy(x + n * d, rec.rows, (size_t)d * sizeof *x);
      free(bids[n]);
      bids[n++] = ps_xstrdup(rec.id);
    }
    int got = rc;
    if (n == bn || (got == 0 && n > 0)) {
      if ((rc = write_batch(m, x, bids, n, &codes, tsv, jsonl, truth, fm, st, err)) < 0) {
        ps_err_prefix(err, "%s: ", emb);
        goto out;
      }
      n = 0;
      if (pace_ms > 0) sleep_ms(pace_ms);
      if (stop && stop()) {
        rc = ps_err_set(err, PS_EINTR, "stopped by a signal");
        goto out;
      }
    }
    if (got == 0) break;
  }
  if (st->n_proteins == 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no embeddings", emb);
out:
  emb_source_destroy(&src);
  sae_codes_free(&codes);
  for (int64_t i = 0; i < bn; i++) free(bids[i]);
  free(bids);
  free(x);
  fa_ids_free(&fa);
  return rc;
}

// ---- the one-call entry point ------------------------------------------------------------------

int annot_run_proteome(const char *db, const char *sae_dir, const char *data_dir, const char *fasta, const char *emb,
                       const char *ids_path, const char *out_dir, const char *name, annot_eval_t *ev, ps_err_t *err) {
  char dd[PATH_MAX], t_tsv[PATH_MAX] = "", t_js[PATH_MAX] = "", o_tsv[PATH_MAX], o_js[PATH_MAX];
  annot_model_t *m = NULL;
  go_annotations_t *truth = NULL;
  annot_stats_t st = {0};
  FILE *ft = NULL, *fj = NULL;
  ps_godata_t gd;
  int rc;
  if (!data_dir && !(data_dir = ps_godata_default_dir(dd, sizeof dd)))
    return ps_err_set(err, PS_ENOTFOUND, "no data directory with a GO ontology (PROTSAE_DATA or ../shared/data)");
  if ((rc = ps_godata_find(data_dir, PS_GODATA_NEED_ONTOLOGY | (ev ? PS_GODATA_NEED_ANNOTATIONS : 0), &gd, err)) < 0)
    return rc;
  annot_opts_t o = {.sae_dir = sae_dir, .db = db, .obo = gd.obo, .conf = ANNOT_CONF_PRECISION, .min_score = 0.01,
                    .max_terms = 100, .batch_rows = 256};
  if ((rc = annot_model_load(&m, &o, err)) < 0) goto out;
  if (ev && (rc = annot_truth_load(&truth, m->onto, gd.annotations, gd.annotations_gaf, err)) < 0) goto out;
  if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", out_dir, strerror(errno));
    goto out;
  }
  snprintf(t_tsv, sizeof t_tsv, "%s/.%s.tsv.tmp", out_dir, name);
  snprintf(t_js, sizeof t_js, "%s/.%s.jsonl.tmp", out_dir, name);
  snprintf(o_tsv, sizeof o_tsv, "%s/%s.tsv", out_dir, name);
  snprintf(o_js, sizeof o_js, "%s/%s.jsonl", out_dir, name);
  if (!(ft = fopen(t_tsv, "w")) || !(fj = fopen(t_js, "w"))) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", ft ? t_js : t_tsv, strerror(errno));
    goto out;
  }
  annot_fmax_t fm[ANNOT_N_FM];
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_init(&fm[k]);
  if ((rc = annot_proteome(m, fasta, emb, ids_path, ft, fj, truth, fm, 0, NULL, &st, err)) < 0) goto out;
  int rt = ps_fclose_synced(ft), rj = ps_fclose_synced(fj);
  ft = fj = NULL;
  if (rt < 0 || rj < 0) {
    rc = ps_err_set(err, PS_EIO, "%s: write failed: %s", rt < 0 ? t_tsv : t_js, strerror(-(rt < 0 ? rt : rj)));
    goto out;
  }
  if (rename(t_tsv, o_tsv) != 0 || rename(t_js, o_js) != 0) {
    rc = ps_err_set(err, -errno, "%s: cannot rename into place: %s", out_dir, strerror(errno));
    goto out;
  }
  ps_fsync_dir(out_dir);  // best effort, as before
  if (ev) annot_eval_finish(m, truth, fm, &st, ev);
out:
  if (ft) fclose(ft);
  if (fj) fclose(fj);
  if (rc < 0 && t_tsv[0]) unlink(t_tsv), unlink(t_js);
  annot_stats_free(&st);
  go_annotations_destroy(&truth);
  annot_model_free(&m);
  return rc;
}
