// annot_write.c — one protein's annotation from its sparse code: its TSV rows and JSONL line
// (features strongest first, GO terms best first) and its share of the evaluation. See annot.h.
#include "annot_priv.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void annot_stats_free(annot_stats_t *st) {
  for (size_t i = 0; i < st->n_eval; i++) free(st->eval_ids[i]);
  free(st->eval_ids);
  st->eval_ids = NULL;
  st->n_eval = st->cap_eval = 0;
}

static int cmp_scored(const void *a, const void *b) {  // value descending, then id ascending
  const scored_t *x = a, *y = b;
  if (x->v != y->v) return x->v > y->v ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

static const char *ns_short(go_namespace_t ns) { return ns == GO_NS_BP ? "BP" : ns == GO_NS_MF ? "MF" : ns == GO_NS_CC ? "CC" : "?"; }

// A label for a TSV cell: tabs and newlines become spaces.
static void tsv_cell(FILE *f, const char *s) {
  for (; s && *s; s++) fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, f);
}

void annot_write_header(FILE *tsv) { fprintf(tsv, "protein\tkind\tid\tvalue\tscaled_or_namespace\tlabel\n"); }

int annot_protein(annot_model_t *m, const char *id, const uint32_t *idx, const float *val, size_t na, FILE *tsv,
                  FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, annot_stats_t *st, ps_err_t *err) {
  const go_ontology_t *o = m->onto;
  for (size_t j = 0; j < na; j++)
    if ((int64_t)idx[j] >= m->n_features)
      return ps_err_set(err, PS_EDIM, "protein %s: feature %u, but the model has %lld features", id, idx[j],
                        (long long)m->n_features);
  // features, strongest first
  if (na > m->scap) {
    m->scap = na + go_n_terms(o);
    m->sbuf = ps_xrealloc(m->sbuf, m->scap * sizeof *m->sbuf);
    m->cbuf = ps_xrealloc(m->cbuf, m->scap);
  }
  scored_t *fs = m->sbuf;
  for (size_t j = 0; j < na; j++) fs[j] = (scored_t){(int32_t)idx[j], val[j]};
  qsort(fs, na, sizeof *fs, cmp_scored);
  json_t *jo = json_object();
  json_object_set_new(jo, "protein", json_string(id));
  json_t *jf = json_array();
  m->n_touched = 0;
  for (size_t j = 0; j < na; j++) {
    int32_t f = fs[j].id;
    float a = fs[j].v, mx = m->max_act[f];
    float s = mx > 0 ? (m->o.no_scaling || a / mx >= 1 ? 1 : a / mx) : 0;
    const char *ex = m->expl ? m->expl[f] : NULL;
    fprintf(tsv, "%s\tfeature\t%d\t%.6g\t%.4f\t", id, f, (double)a, (double)s);
    tsv_cell(tsv, ex ? ex : "");
    fputc('\n', tsv);
    json_t *e = json_object();
    json_object_set_new(e, "id", json_integer(f));
    json_object_set_new(e, "activation", json_real(a));
    json_object_set_new(e, "scaled", json_real(s));
    json_object_set_new(e, "explanation", ex ? json_string(ex) : json_null());
    if (ex && isfinite(m->expl_r[f])) json_object_set_new(e, "explanation_r", json_real(m->expl_r[f]));
    json_array_append_new(jf, e);
    for (int64_t t = m->t_ptr[f]; t < m->t_ptr[f + 1]; t++) {
      int32_t g = m->t_go[t];
      float v = s * m->t_conf[t];
      if (m->score[g] == 0 && v > 0) m->touched[m->n_touched++] = g;
      if (v > m->score[g]) m->score[g] = v;
    }
  }
  json_object_set_new(jo, "features", jf);
  // GO terms, best first
  size_t ng = 0;
  scored_t *gs = fs;  // the features are written: reuse the buffer
  if (m->n_touched > m->scap) {
    m->scap = m->n_touched;
    m->sbuf = gs = fs = ps_xrealloc(m->sbuf, m->scap * sizeof *m->sbuf);
    m->cbuf = ps_xrealloc(m->cbuf, m->scap);
  }
  for (size_t j = 0; j < m->n_touched; j++) {
    int32_t g = m->touched[j];
    float v = floorf(m->score[g] * 1e4f + 0.5f) / 1e4f;  // the 4 decimals written are the scores evaluated
    m->score[g] = 0;
    if (v >= m->o.min_score && v > 0) gs[ng++] = (scored_t){g, v};
  }
  m->n_touched = 0;
  qsort(gs, ng, sizeof *gs, cmp_scored);
  if (m->o.max_terms > 0 && ng > (size_t)m->o.max_terms) ng = (size_t)m->o.max_terms;
  json_t *jg = json_array();
  for (size_t j = 0; j < ng; j++) {
    const go_term_t *t = go_term(o, gs[j].id);
    fprintf(tsv, "%s\tgo\t%s\t%.4f\t%s\t", id, t->id, (double)gs[j].v, ns_short(t->ns));
    tsv_cell(tsv, t->name);
    fputc('\n', tsv);
    json_t *e = json_object();
    json_object_set_new(e, "id", json_string(t->id));
    json_object_set_new(e, "score", json_real(gs[j].v));
    json_object_set_new(e, "namespace", json_string(ns_short(t->ns)));
    json_object_set_new(e, "name", json_string(t->name));
    json_array_append_new(jg, e);
  }
  json_object_set_new(jo, "go", jg);
  char *line = json_dumps(jo, JSON_COMPACT | JSON_REAL_PRECISION(6));
  json_decref(jo);
  if (!line) return ps_err_set(err, PS_EFORMAT, "protein %s: cannot encode its JSON line (invalid UTF-8?)", id);
  fputs(line, jsonl);
  fputc('\n', jsonl);
  free(line);
  st->n_proteins++;
  st->n_active_sum += (int64_t)na;
  st->n_with_go += ng > 0;
  if (truth && fm) {
    int64_t pi = go_annotations_find(truth, id);
    if (pi >= 0) {
      const int32_t *tt = truth->terms[pi];
      uint32_t ntt = truth->n_terms[pi];
      size_t n_true = 0;
      for (uint32_t j = 0; j < ntt; j++) n_true += !annot_is_root(m->roots, tt[j]);
      float *sc = ps_xmalloc((ng ? ng : 1) * sizeof *sc);
      annot_fmax_add_ns(fm, o, m->roots, gs, ng, tt, ntt, sc, m->cbuf);
      free(sc);
      if (n_true) {
        if (st->n_eval == st->cap_eval)
          st->eval_ids = ps_xrealloc(st->eval_ids, (st->cap_eval = st->cap_eval ? 2 * st->cap_eval : 256) * sizeof(char *));
        st->eval_ids[st->n_eval++] = ps_xstrdup(id);
      }
    }
  }
  if (ferror(tsv) || ferror(jsonl))  // the output, not the input: callers tell by ferror on their FILEs
    return ps_err_set(err, errno ? -errno : PS_EIO, "output write failed: %s", strerror(errno ? errno : EIO));
  return 0;
}
