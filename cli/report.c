// protsae report — one self-contained static HTML file (inline SVG and CSS, no network assets)
// from a run's work directory (the demo's layout): training curves (loss, validation MSE, L0, dead
// fraction), the feature-frequency distribution, features vs neurons (GO enrichment and
// interpretability), a feature table, and per-feature cards (top proteins with names, activation
// histogram, GO terms, explanation and its score; at residue level the top proteins' sequences with
// the feature's activations highlighted, report_residue.h). Results (GO enrichment, explanations and their
// summaries) are read from the feature stores WORKDIR/features.db and neurons.db through featstore.h;
// the training curves from the trainer's sae/metrics.jsonl; protein names from the data
// directory's proteins.tsv (godata.h). Every input but the feature store is optional; a missing
// part is said so in the page. Memory: the feature table (n_features rows), the
// interpreted units, the GO terms of the carded features, the protein names of their top proteins.
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "featstore.h"
#include "godata.h"
#include "proteins_tsv.h"
#include "report_residue.h"
#include "strmap.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const ps_config_entry_t table[] = {
    {"workdir", "protsae-demo", "run directory: features.db, neurons.db (with their results), sae/metrics.jsonl"},
    {"out", NULL, "HTML file (default WORKDIR/report.html)"},
    {"data", NULL, "data directory with proteins.tsv[.gz] for protein names (default: the shared human data)"},
    {"cards", "24", "feature cards (the best-explained features first)"},
    {"rows", "200", "rows of the feature table"},
    {"fasta", NULL, "residue level: the run's FASTA, for the cards' sequences (default WORKDIR/synth-residue/proteins.fasta)"},
    {NULL, NULL, NULL},
};

// ---- SVG line chart ------------------------------------------------------------------------------
typedef struct series {
  const char *name, *color;
  double *x, *y;
  size_t n;
} series_t;

static void chart(FILE *o, const char *title, const series_t *s, int ns, int logy) {
  const double W = 460, H = 220, L = 56, R = 12, T = 26, B = 30;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int k = 0; k < ns; k++)
    for (size_t i = 0; i < s[k].n; i++) {
      double y = logy ? log10(s[k].y[i] > 1e-12 ? s[k].y[i] : 1e-12) : s[k].y[i];
      if (!isfinite(y)) continue;
      x0 = fmin(x0, s[k].x[i]), x1 = fmax(x1, s[k].x[i]), y0 = fmin(y0, y), y1 = fmax(y1, y);
    }
  fprintf(o, "<svg class=chart width=%.0f height=%.0f viewBox='0 0 %.0f %.0f'><text x=%.0f y=16 class=t>", W, H, W, H, L);
  rr_html_esc(o, title);
  fputs("</text>", o);
  if (!isfinite(x0)) {
    fprintf(o, "<text x=%.0f y=%.0f>no data</text></svg>\n", L + 10, H / 2);
    return;
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + (fabs(y0) > 0 ? fabs(y0) * 0.1 : 1), y0 -= (y1 - y0) * 0.5;
  fprintf(o, "<rect x=%.0f y=%.0f width=%.0f height=%.0f class=frame />", L, T, W - L - R, H - T - B);
  for (int g = 0; g <= 4; g++) {
    double yv = y0 + (y1 - y0) * g / 4, py = H - B - (H - T - B) * g / 4;
    fprintf(o, "<text x=%.0f y=%.1f class=ax text-anchor=end>%.3g</text>", L - 4, py + 4, logy ? pow(10, yv) : yv);
    double xv = x0 + (x1 - x0) * g / 4, px = L + (W - L - R) * g / 4;
    fprintf(o, "<text x=%.1f y=%.0f class=ax text-anchor=middle>%.3g</text>", px, H - B + 14, xv);
  }
  for (int k = 0; k < ns; k++) {
    fprintf(o, "<polyline fill=none stroke='%s' stroke-width=1.6 points='", s[k].color);
    for (size_t i = 0; i < s[k].n; i++) {
      double y = logy ? log10(s[k].y[i] > 1e-12 ? s[k].y[i] : 1e-12) : s[k].y[i];
      if (!isfinite(y)) continue;
      fprintf(o, "%.1f,%.1f ", L + (W - L - R) * (s[k].x[i] - x0) / (x1 - x0), H - B - (H - T - B) * (y - y0) / (y1 - y0));
    }
    fputs("'/>", o);
    if (s[k].n <= 40)  // few points (a short run): mark each, a lone point draws no line
      for (size_t i = 0; i < s[k].n; i++) {
        double y = logy ? log10(s[k].y[i] > 1e-12 ? s[k].y[i] : 1e-12) : s[k].y[i];
        if (!isfinite(y)) continue;
        fprintf(o, "<circle r=2.5 fill='%s' cx=%.1f cy=%.1f/>", s[k].color,
                L + (W - L - R) * (s[k].x[i] - x0) / (x1 - x0), H - B - (H - T - B) * (y - y0) / (y1 - y0));
      }
    fprintf(o, "<text x=%.0f y=%d fill='%s' class=ax>", W - R - 150, 40 + 13 * k, s[k].color);
    rr_html_esc(o, s[k].name);
    fputs("</text>", o);
  }
  fputs("</svg>\n", o);
}

static void bars(FILE *o, const char *title, const double *v, const char *const *labels, int n, int w, int h) {
  double mx = 0;
  for (int i = 0; i < n; i++) mx = fmax(mx, v[i]);
  fprintf(o, "<svg class=chart width=%d height=%d viewBox='0 0 %d %d'>", w, h, w, h);
  if (title) {
    fprintf(o, "<text x=4 y=14 class=t>");
    rr_html_esc(o, title);
    fputs("</text>", o);
  }
  double top = title ? 22 : 4, bw = (double)(w - 8) / (n ? n : 1);
  for (int i = 0; i < n; i++) {
    double bh = mx > 0 ? (h - top - 18) * v[i] / mx : 0;
    fprintf(o, "<rect x=%.1f y=%.1f width=%.1f height=%.1f class=bar><title>%s: %.0f</title></rect>", 4 + i * bw,
            h - 18 - bh, bw * 0.9, bh, labels ? labels[i] : "", v[i]);
    if (labels && (n <= 12 || i % (n / 8 + 1) == 0))
      fprintf(o, "<text x=%.1f y=%d class=ax text-anchor=middle>%s</text>", 4 + i * bw + bw / 2, h - 5, labels[i]);
  }
  fputs("</svg>\n", o);
}

// ---- inputs --------------------------------------------------------------------------------------
typedef struct unit {
  int64_t unit;
  double r, p;
  char *explanation;
  int offline, failed;
} unit_t;

struct unit_ctx {
  unit_t *u;
  size_t n, cap;
};
static int unit_fn(uint32_t id, const fs_interp_t *x, const char *json, void *ctx) {
  (void)json;
  struct unit_ctx *c = ctx;
  if (c->n == c->cap) c->u = ps_xrealloc(c->u, (c->cap = c->cap ? 2 * c->cap : 64) * sizeof *c->u);
  unit_t *v = &c->u[c->n++];
  v->unit = id;
  v->r = x->scored ? x->r : NAN;
  v->p = x->scored ? x->p : NAN;
  v->explanation = ps_xstrdup(x->explanation ? x->explanation : "");
  v->offline = x->mode && !strncmp(x->mode, "offline", 7);
  v->failed = !x->explanation || (x->failure && x->failure[0]);
  return 0;
}

// The store's explanations (family "interp"), unit order. NULL when none.
static int load_interp(fs_t *fs, unit_t **out, size_t *n, ps_err_t *err) {
  struct unit_ctx c = {NULL, 0, 0};
  *out = NULL;
  *n = 0;
  int rc = fs ? fs_interp_each(fs, unit_fn, &c, err) : 0;
  if (rc < 0) {
    for (size_t i = 0; i < c.n; i++) free(c.u[i].explanation);
    free(c.u);
    return rc;
  }
  *out = c.u;
  *n = c.n;
  return 0;
}

// A string key of the store as a JSON object (NULL when absent or not JSON).
static json_t *kv_json(fs_t *fs, const char *key) {
  char *v = NULL;
  size_t n = 0;
  ps_err_t e = {0};
  if (!fs || fs_kv_get(fs, key, &v, &n, &e) <= 0) return NULL;
  json_t *j = json_loadb(v, n, 0, NULL);
  free(v);
  return j;
}

static int cmp_unit_r(const void *a, const void *b) {
  double x = ((const unit_t *)a)->r, y = ((const unit_t *)b)->r;
  if (isnan(x)) x = -2;
  if (isnan(y)) y = -2;
  return x < y ? 1 : x > y ? -1 : 0;
}

typedef struct metrics {
  double *step, *loss, *val, *l0, *dead, *vstep;
  size_t n, nv, cap, capv;
} metrics_t;

static void load_metrics(const char *path, metrics_t *m) {
  memset(m, 0, sizeof *m);
  FILE *f = fopen(path, "r");
  if (!f) return;
  char *line = NULL;
  size_t lc = 0;
  while (getline(&line, &lc, f) > 0) {
    json_t *j = json_loads(line, 0, NULL);  // strict JSON: the trainer writes null, never nan
    if (!j) continue;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    double step = json_number_value(json_object_get(j, "step"));
    if (kind && strcmp(kind, "final")) {
      if (m->n == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 256;
        m->step = ps_xrealloc(m->step, m->cap * sizeof(double));
        m->loss = ps_xrealloc(m->loss, m->cap * sizeof(double));
        m->l0 = ps_xrealloc(m->l0, m->cap * sizeof(double));
        m->dead = ps_xrealloc(m->dead, m->cap * sizeof(double));
      }
      m->step[m->n] = step;
      m->loss[m->n] = json_number_value(json_object_get(j, "mse"));
      m->l0[m->n] = json_number_value(json_object_get(j, "l0"));
      m->dead[m->n] = json_number_value(json_object_get(j, "dead_fraction"));
      m->n++;
      json_t *v = json_object_get(j, "val_mse");
      if (json_is_number(v)) {
        if (m->nv == m->capv) {
          m->capv = m->capv ? 2 * m->capv : 64;
          m->vstep = ps_xrealloc(m->vstep, m->capv * sizeof(double));
          m->val = ps_xrealloc(m->val, m->capv * sizeof(double));
        }
        m->vstep[m->nv] = step;
        m->val[m->nv++] = json_number_value(v);
      }
    }
    json_decref(j);
  }
  free(line);
  fclose(f);
}

// The first `keep` significant terms (ascending p) of a feature's enrichment record, as HTML rows;
// NULL when the feature has none (caller frees).
static char *card_terms(fs_t *fs, uint32_t id, int keep, ps_err_t *err) {
  fs_enrich_feat_t e;
  int got = fs_enrich_get(fs, id, &e, err);
  if (got <= 0) return NULL;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  for (uint32_t i = 0; i < e.n_hits && (int)i < keep; i++) {
    const fs_term_hit_t *h = &e.hits[i];
    fprintf(m, "<tr><td>%s</td><td>%s</td><td class=n>%u/%u</td><td class=n>%.3g</td><td class=n>%.1f</td>"
               "<td class=n>%.4f</td><td>",
            h->go_id, h->ns == 0 ? "BP" : h->ns == 1 ? "MF" : "CC", h->k, h->n, h->p, h->fold, (double)h->f1);
    rr_html_esc(m, h->name);
    fputs("</td></tr>", m);
  }
  fclose(m);
  uint32_t nh = e.n_hits;
  fs_enrich_feat_free(&e);
  if (!nh) {
    free(buf);
    return NULL;
  }
  return buf;
}

typedef struct names {
  strmap_t *idx;
  char **gene, **name;
  size_t n, cap;
} names_t;

static int take_name(void *ctx, const ps_protein_row_t *row, ps_err_t *err) {
  (void)err;
  names_t *nm = ctx;
  if (strmap_get(nm->idx, row->accession, NULL)) return 0;
  if (nm->n == nm->cap) {
    nm->cap = nm->cap ? 2 * nm->cap : 1024;
    nm->gene = ps_xrealloc(nm->gene, nm->cap * sizeof(char *));
    nm->name = ps_xrealloc(nm->name, nm->cap * sizeof(char *));
  }
  nm->gene[nm->n] = ps_xstrdup(row->gene);
  nm->name[nm->n] = ps_xstrdup(row->name);
  strmap_put(nm->idx, row->accession, nm->n++);
  return 0;
}

// Gene and protein names from the data directory's proteins.tsv(.gz); none when it has none.
static void load_names(const char *dir, names_t *nm) {
  memset(nm, 0, sizeof *nm);
  if (!dir) return;
  ps_godata_t gd;
  ps_err_t e = {0};
  if (ps_godata_find(dir, PS_GODATA_NEED_PROTEINS, &gd, &e) < 0) {
    fprintf(stderr, "protsae report: %s (no protein names)\n", e.msg);
    return;
  }
  nm->idx = strmap_new(20000);
  if (ps_proteins_tsv_each(gd.proteins, take_name, nm, &e) < 0)
    fprintf(stderr, "protsae report: %s (protein names incomplete)\n", e.msg);
}

typedef struct frow {
  uint32_t id;
  uint64_t n;
  double max, mean;
} frow_t;
struct fr_ctx {
  frow_t *rows;
};
static int fr_fn(uint32_t id, const fs_feat_t *f, void *ctx) {
  frow_t *r = &((struct fr_ctx *)ctx)->rows[id];
  r->n = f->n_active;
  r->max = f->max;
  r->mean = fs_feat_mean(f);
  return 0;
}

static double jnum(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

// One cell of the features-vs-neurons table: a number of the summary, "-" when absent. share:
// also as a share of `of` (a count of the same summary).
static void sum_cell(FILE *o, json_t *s, const char *key, const char *of) {
  double v = jnum(s, key), d = of ? jnum(s, of) : NAN;
  if (isnan(v)) fputs("<td class=n>-</td>", o);
  else if (of && d > 0) fprintf(o, "<td class=n>%.0f (%.1f%%)</td>", v, 100 * v / d);
  else fprintf(o, "<td class=n>%.3g</td>", v);
}

static int cmpn(const void *a, const void *b) {
  const frow_t *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  return x->id < y->id ? -1 : x->id > y->id;
}

// Residue level: the sequences of the carded features' top proteins, from fasta (default
// WORKDIR/synth-residue/proteins.fasta, the residue demo's; none when absent: the cards say so).
static int card_seqs(fs_t *fs, const fs_meta_t *m, const unit_t *fu, size_t nfu, const uint8_t *want, const char *fasta,
                     const char *w, rr_seqs_t *seqs, ps_err_t *err) {
  char def[PATH_MAX];
  if (!fasta) {
    snprintf(def, sizeof def, "%s/synth-residue/proteins.fasta", w);
    if (access(def, R_OK) != 0) return 0;
    fasta = def;
  }
  size_t n = 0, cap = 64;
  char **ids = ps_xmalloc(cap * sizeof *ids);
  fs_feat_t f;
  fs_feat_init(&f, m->top_n);
  int rc = 0;
  for (size_t i = 0; i < nfu && rc >= 0; i++) {
    if (fu[i].unit < 0 || (uint64_t)fu[i].unit >= m->n_features || !want[fu[i].unit]) continue;
    if ((rc = fs_feat_get(fs, (uint32_t)fu[i].unit, m->top_n, &f, err)) < 0) break;
    for (uint32_t t = 0; t < f.n_top; t++) {
      if (n == cap) ids = ps_xrealloc(ids, (cap *= 2) * sizeof *ids);
      ids[n++] = ps_xstrdup(f.top[t].id);
    }
  }
  fs_feat_clear(&f);
  if (rc >= 0) rc = rr_seqs_load(seqs, fasta, (const char *const *)ids, n, err);
  for (size_t i = 0; i < n; i++) free(ids[i]);
  free(ids);
  return rc < 0 ? rc : 0;
}

// Residue level: the carded units, the features with a residue concept at F1 > 0.5 first (best F1
// first; with their explanations when they have one), then the best-explained. *out borrows fu's
// explanations: free only the array. Its length, or <0 with err.
typedef struct cf1 {
  uint32_t feature;
  double f1;
} cf1_t;
static int cf1_fn(const fs_concept_t *c, void *ctx) {
  struct { cf1_t *v; size_t n, cap; } *a = ctx;
  if (!(c->f1 > 0.5)) return 0;
  if (a->n == a->cap) a->v = ps_xrealloc(a->v, (a->cap = a->cap ? 2 * a->cap : 64) * sizeof *a->v);
  a->v[a->n++] = (cf1_t){c->feature, c->f1};
  return 0;
}
static int cmp_cf1(const void *a, const void *b) {
  const cf1_t *x = a, *y = b;
  return x->f1 > y->f1 ? -1 : x->f1 < y->f1 ? 1 : (x->feature > y->feature) - (x->feature < y->feature);
}
static long card_units(fs_t *fs, const unit_t *fu, size_t nfu, size_t n_cards, unit_t **out, ps_err_t *err) {
  struct { cf1_t *v; size_t n, cap; } a = {NULL, 0, 0};
  if (fs_concept_each(fs, cf1_fn, &a, err) < 0) {
    free(a.v);
    return -1;
  }
  if (a.v) qsort(a.v, a.n, sizeof *a.v, cmp_cf1);
  unit_t *u = ps_xcalloc(n_cards + 1, sizeof *u);
  size_t n = 0;
  for (size_t i = 0; i < a.n && n < n_cards; i++) {
    u[n] = (unit_t){.unit = a.v[i].feature, .r = NAN, .p = NAN};
    for (size_t j = 0; j < nfu; j++)
      if (fu[j].unit == (int64_t)a.v[i].feature) u[n] = fu[j];
    n++;
  }
  for (size_t j = 0; j < nfu && n < n_cards; j++) {
    int dup = 0;
    for (size_t i = 0; i < n && !dup; i++) dup = u[i].unit == fu[j].unit;
    if (!dup) u[n++] = fu[j];
  }
  free(a.v);
  *out = u;
  return (long)n;
}

int cli_report(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae report", argc, argv);
  if (crc >= 0) return crc;
  const char *w = ps_config_str(cfg, "workdir");
  char out[PATH_MAX], p[PATH_MAX], tmp[PATH_MAX + 8], dd[PATH_MAX];
  snprintf(out, sizeof out, "%s", ps_config_str(cfg, "out") ? ps_config_str(cfg, "out") : "");
  if (!out[0]) snprintf(out, sizeof out, "%s/report.html", w);
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = ps_godata_default_dir(dd, sizeof dd);
  int64_t n_cards = 24, n_rows = 200;
  ps_config_i64(cfg, "cards", &n_cards, NULL);
  ps_config_i64(cfg, "rows", &n_rows, NULL);
  int status = 1;
  fs_t *fs = NULL, *nfs = NULL;
  fs_meta_t m = {0}, nmeta;
  frow_t *fr = NULL;
  unit_t *fu = NULL, *nu = NULL, *cu_owned = NULL;
  size_t nfu = 0, nnu = 0;
  uint8_t *want = NULL;
  json_t *esum = NULL, *nesum = NULL, *nisum = NULL;
  names_t names = {0};
  metrics_t mt = {0};
  json_t *isum = NULL;
  FILE *o = NULL;
  int have_neurons = 0;
  rr_seqs_t seqs = {0};

  snprintf(p, sizeof p, "%s/features.db", w);
  if (fs_open(&fs, p, FS_OPEN_READONLY, &err) < 0) goto out;
  int rc = fs_meta_get(fs, &m, &err);
  if (rc <= 0) {
    if (rc == 0) ps_err_set(&err, PS_ENOTFOUND, "%s: empty feature store", p);
    goto out;
  }
  fr = ps_xcalloc(m.n_features ? m.n_features : 1, sizeof *fr);
  for (uint32_t i = 0; i < m.n_features; i++) fr[i].id = i;
  struct fr_ctx frc = {fr};
  if (fs_feat_each(fs, m.top_n, fr_fn, &frc, &err) < 0) goto out;
  {
    snprintf(p, sizeof p, "%s/neurons.db", w);
    ps_err_t e2 = {0};
    if (fs_open(&nfs, p, FS_OPEN_READONLY, &e2) == 0 && fs_meta_get(nfs, &nmeta, &e2) == 1) have_neurons = 1;
    else fs_close(&nfs);
  }
  if (load_interp(fs, &fu, &nfu, &err) < 0 || load_interp(nfs, &nu, &nnu, &err) < 0) goto out;
  if (fu) qsort(fu, nfu, sizeof *fu, cmp_unit_r);
  isum = kv_json(fs, "interp/summary");
  nisum = kv_json(nfs, "interp/summary");
  esum = kv_json(fs, "enrich/summary");
  nesum = kv_json(nfs, "enrich/summary");
  int enrich_done = fs_enrich_done(fs, &err);
  if (enrich_done < 0) goto out;
  snprintf(p, sizeof p, "%s/sae/metrics.jsonl", w);
  load_metrics(p, &mt);
  want = ps_xcalloc(m.n_features ? m.n_features : 1, 1);
  size_t n_card = 0;
  unit_t *cu = fu;  // the carded units: the best-explained; at residue level the best concepts first
  size_t ncu = nfu;
  if (m.level) {
    long nc = card_units(fs, fu, nfu, n_cards > 0 ? (size_t)n_cards : 0, &cu_owned, &err);
    if (nc < 0) goto out;
    cu = cu_owned, ncu = (size_t)nc;
  }
  for (size_t i = 0; i < ncu && (int64_t)n_card < n_cards; i++)
    if (cu[i].unit >= 0 && (uint64_t)cu[i].unit < m.n_features) want[cu[i].unit] = 1, n_card++;
  load_names(data, &names);
  if (m.level && card_seqs(fs, &m, cu, ncu, want, ps_config_str(cfg, "fasta"), w, &seqs, &err) < 0) goto out;

  snprintf(tmp, sizeof tmp, "%s.tmp", out);
  o = fopen(tmp, "w");
  if (!o) {
    ps_err_set(&err, PS_EIO, "%s: cannot write", tmp);
    goto out;
  }
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&now));
  const char *imode = json_string_value(json_object_get(isum, "mode"));
  int offline = imode && !strncmp(imode, "offline", 7);
  fputs("<!doctype html><html><head><meta charset=utf-8><title>protsae report</title><style>"
        "body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}"
        "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}"
        "table{border-collapse:collapse;margin:8px 0}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}"
        "td.n,th.n{text-align:right}.chart{border:1px solid #eee;margin:4px}.t{font-weight:600;font-size:12px}"
        ".ax{font-size:10px;fill:#555}.frame{fill:none;stroke:#bbb}.bar{fill:#4a7ab5}"
        ".card{border:1px solid #ddd;border-radius:6px;padding:10px;margin:12px 0}.off{color:#a33;font-weight:600}"
        ".muted{color:#777}.scroll{max-height:420px;overflow-y:auto;border:1px solid #eee;display:inline-block}</style></head><body>\n", o);
  fprintf(o, "<h1>protsae report</h1><p class=muted>%s &middot; work directory <code>", when);
  rr_html_esc(o, w);
  fprintf(o, "</code></p>\n");
  if (offline)
    fputs("<p class=off>Explanations are OFFLINE (no LLM): from the annotations of the proteins a model would be shown; "
          "their scores are a baseline, not Claude's.</p>\n", o);

  // summary
  uint64_t dead = 0;
  for (uint32_t i = 0; i < m.n_features; i++) dead += fr[i].n == 0;
  fprintf(o, "<h2>Summary</h2><table><tr><td>%s</td><td class=n>%u</td></tr><tr><td>proteins encoded</td><td class=n>%llu</td></tr>"
             "<tr><td>dead features</td><td class=n>%llu (%.1f%%)</td></tr><tr><td>mean active features per protein</td><td class=n>%.2f</td></tr></table>\n",
          m.neurons ? "neurons" : "features", m.n_features, (unsigned long long)m.proteins, (unsigned long long)dead,
          m.n_features ? 100.0 * (double)dead / m.n_features : 0.0, m.proteins ? (double)m.nnz / (double)m.proteins : 0.0);
  fputs("<h2>Features vs neurons</h2><table><tr><th></th><th class=n>SAE features</th><th class=n>ESM2 neurons</th></tr>\n", o);
  // enrich/summary of each store (counts: shares of the units, or of the alive units)
  static const char *const ekeys[][3] = {{"frac_alive_with_term", "with >= 1 significant GO term (share of alive units)", NULL},
                                         {"with_bp", "... biological process (all units)", "n_features"},
                                         {"with_mf", "... molecular function (all units)", "n_features"},
                                         {"with_cc", "... cellular component (all units)", "n_features"},
                                         {"median_best_f1", "median best F1 to a GO term", NULL},
                                         {"f1_over_05", "with a GO term at F1 >= 0.5 (alive units)", "n_alive"},
                                         {"n_sig_pairs", "significant (unit, term) pairs", NULL},
                                         {"mean_depth", "mean GO depth of significant terms", NULL},
                                         {"mono_dist", "DAG distance between a unit's terms", NULL},
                                         {"mono_rand_dist", "... between random terms", NULL},
                                         {"mono_lca_depth", "depth of their deepest common ancestor", NULL},
                                         {"mono_rand_lca_depth", "... for random terms", NULL},
                                         {"mono_same_branch", "share of a unit's term pairs on one branch", NULL},
                                         {"mono_rand_same_branch", "... for random terms", NULL}};
  for (size_t k = 0; k < sizeof ekeys / sizeof *ekeys; k++) {
    fprintf(o, "<tr><td>%s</td>", ekeys[k][1]);
    sum_cell(o, esum, ekeys[k][0], ekeys[k][2]);
    sum_cell(o, nesum, ekeys[k][0], ekeys[k][2]);
    fputs("</tr>\n", o);
  }
  static const char *const ikeys[][2] = {{"mean_r", "explanation score: mean Pearson r"},
                                         {"median_r", "... median r"},
                                         {"frac_p_lt_0.05", "... share with p < 0.05"},
                                         {"scored", "units scored"},
                                         {"failed", "units failed"}};
  for (size_t k = 0; k < sizeof ikeys / sizeof *ikeys; k++) {
    fprintf(o, "<tr><td>%s%s</td>", ikeys[k][1], offline && k == 0 ? " <span class=off>(offline)</span>" : "");
    sum_cell(o, isum, ikeys[k][0], NULL);
    sum_cell(o, nisum, ikeys[k][0], NULL);
    fputs("</tr>\n", o);
  }
  fputs("</table>\n", o);
  if (!have_neurons) fputs("<p class=muted>No neuron store (neurons.db): the baseline column is empty.</p>\n", o);
  if (!esum) fputs("<p class=muted>No GO enrichment in features.db (the scorer runs it with --data).</p>\n", o);
  else if (!enrich_done) fputs("<p class=off>The GO enrichment in features.db is not complete.</p>\n", o);

  // training
  fputs("<h2>Training</h2>\n", o);
  if (mt.n) {
    series_t s1[2] = {{"train MSE", "#4a7ab5", mt.step, mt.loss, mt.n}, {"validation MSE", "#d0582a", mt.vstep, mt.val, mt.nv}};
    chart(o, "reconstruction MSE by step", s1, 2, 1);
    series_t s2[1] = {{"L0", "#2a8a4a", mt.step, mt.l0, mt.n}};
    chart(o, "L0 (active latents per row)", s2, 1, 0);
    series_t s3[1] = {{"dead fraction", "#8a2a8a", mt.step, mt.dead, mt.n}};
    chart(o, "dead latents (fraction)", s3, 1, 0);
  } else {
    fputs("<p class=muted>No sae/metrics.jsonl.</p>\n", o);
  }
  // frequency distribution (log10 of the share of proteins)
  {
    double hb[14] = {0};
    const char *lab[14] = {"dead", "1e-5", "3e-5", "1e-4", "3e-4", "1e-3", "3e-3", "1e-2", "3e-2", "0.1", "0.3", "1", "", ""};
    for (uint32_t i = 0; i < m.n_features; i++) {
      if (!fr[i].n) {
        hb[0]++;
        continue;
      }
      double l = log10((double)fr[i].n / (double)(m.proteins ? m.proteins : 1));
      int b = 1 + (int)floor((l + 5.0) * 2);
      hb[b < 1 ? 1 : b > 11 ? 11 : b]++;
    }
    bars(o, "features by activation frequency (share of proteins)", hb, lab, 12, 460, 200);
  }

  // feature table: most frequent first
  fprintf(o, "<h2>Features</h2><p class=muted>The %lld most frequent features (linked: those with a card below).</p>"
             "<div class=scroll><table><tr><th class=n>feature</th><th class=n>active</th><th class=n>freq</th><th class=n>mean</th>"
        "<th class=n>max</th><th class=n>explanation r</th></tr>\n", (long long)n_rows);
  {
    frow_t *sorted = ps_xmalloc((m.n_features ? m.n_features : 1) * sizeof *sorted);
    memcpy(sorted, fr, m.n_features * sizeof *sorted);
    qsort(sorted, m.n_features, sizeof *sorted, cmpn);
    double *rv = ps_xmalloc((m.n_features ? m.n_features : 1) * sizeof *rv);
    for (uint32_t i = 0; i < m.n_features; i++) rv[i] = NAN;
    for (size_t i = 0; i < nfu; i++)
      if (fu[i].unit >= 0 && (uint64_t)fu[i].unit < m.n_features) rv[fu[i].unit] = fu[i].r;
    for (uint32_t i = 0; i < m.n_features && (int64_t)i < n_rows; i++) {
      const frow_t *r = &sorted[i];
      char rs[32] = "";
      if (!isnan(rv[r->id])) snprintf(rs, sizeof rs, "%.2f", rv[r->id]);
      char idc[64];
      if (want[r->id]) snprintf(idc, sizeof idc, "<a href='#f%u'>%u</a>", r->id, r->id);
      else snprintf(idc, sizeof idc, "%u", r->id);
      fprintf(o, "<tr><td class=n>%s</td><td class=n>%llu</td><td class=n>%.3f%%</td><td class=n>%.3g</td><td class=n>%.3g</td><td class=n>%s</td></tr>\n",
              idc, (unsigned long long)r->n,
              m.proteins ? 100.0 * (double)r->n / (double)m.proteins : 0.0, r->mean, r->max, rs);
    }
    free(rv);
    free(sorted);
  }
  fputs("</table></div>\n", o);

  // cards
  fprintf(o, "<h2>Feature cards</h2><p class=muted>The %zu best-explained features (explanation score first)%s.</p>\n",
          n_card, m.level ? "; at residue level the features with a residue concept at F1 &gt; 0.5 before them" : "");
  fs_feat_t f;
  fs_feat_init(&f, m.top_n);
  size_t shown = 0;
  for (size_t i = 0; i < ncu && shown < n_card; i++) {
    if (cu[i].unit < 0 || (uint64_t)cu[i].unit >= m.n_features) continue;
    uint32_t id = (uint32_t)cu[i].unit;
    if (fs_feat_get(fs, id, m.top_n, &f, &err) < 0) goto out;
    shown++;
    fprintf(o, "<div class=card id=f%u><b>feature %u</b> &middot; active on %llu proteins &middot; max %.3g &middot; ", id,
            id, (unsigned long long)f.n_active, (double)f.max);
    if (cu[i].explanation)
      fprintf(o, "explanation r = %.2f (p = %.2g)%s<p>", cu[i].r, cu[i].p, cu[i].offline ? " <span class=off>offline</span>" : "");
    else
      fputs("not explained<p>", o);
    rr_html_esc(o, cu[i].explanation);
    fputs("</p><table><tr><th class=n>#</th><th>protein</th><th>gene</th><th>name</th><th class=n>activation</th></tr>", o);
    for (uint32_t t = 0; t < f.n_top && t < 10; t++) {
      uint64_t ix;
      int known = names.idx && strmap_get(names.idx, f.top[t].id, &ix);
      fprintf(o, "<tr><td class=n>%u</td><td>", t + 1);
      rr_html_esc(o, f.top[t].id);
      fputs("</td><td>", o);
      if (known) rr_html_esc(o, names.gene[ix]);
      fputs("</td><td>", o);
      if (known) rr_html_esc(o, names.name[ix]);
      fprintf(o, "</td><td class=n>%.3g</td></tr>", (double)f.top[t].value);
    }
    fputs("</table>", o);
    if (m.level && rr_card(o, 1, fs, id, &f, &seqs, 5, &err) < 0) goto out;
    int lo = FS_HIST_BINS, hi = -1;
    for (int b = 0; b < FS_HIST_BINS; b++)
      if (f.hist[b]) lo = b < lo ? b : lo, hi = b;
    if (hi >= 0) {
      double hv[FS_HIST_BINS];
      char lb[FS_HIST_BINS][16];
      const char *lp[FS_HIST_BINS];
      int nb = 0;
      for (int b = lo; b <= hi; b++, nb++) {
        hv[nb] = (double)f.hist[b];
        snprintf(lb[nb], sizeof lb[nb], "%.2g", fs_hist_lower(b));
        lp[nb] = lb[nb];
      }
      bars(o, "activation histogram (proteins per x1.41 bin)", hv, lp, nb, 420, 140);
    }
    char *terms = card_terms(fs, id, 6, &err);
    if (!terms && err.code < 0) goto out;
    if (terms)
      fprintf(o, "<table><tr><th>GO term</th><th></th><th class=n>k/n</th><th class=n>p</th><th class=n>fold</th><th class=n>F1</th><th>name</th></tr>%s</table>",
              terms);
    else
      fputs("<p class=muted>No significant GO term.</p>", o);
    free(terms);
    fputs("</div>\n", o);
  }
  fs_feat_clear(&f);
  if (!nfu) fputs("<p class=muted>No explanations in features.db: run the interpreters for explanations.</p>\n", o);
  fprintf(o, "<p class=muted>neurons interpreted: %zu</p></body></html>\n", nnu);
  if (fclose(o) != 0) {
    o = NULL;
    ps_err_set(&err, PS_EIO, "%s: write failed", tmp);
    goto out;
  }
  o = NULL;
  if (rename(tmp, out) != 0) {
    ps_err_set(&err, PS_EIO, "%s: cannot rename to %s", tmp, out);
    goto out;
  }
  printf("report: %s\n", out);
  status = 0;
out:
  if (status) fprintf(stderr, "protsae report: %s\n", err.msg);
  if (o) fclose(o);
  fs_close(&fs);
  free(fr);
  free(cu_owned);
  for (size_t i = 0; i < nfu; i++) free(fu[i].explanation);
  for (size_t i = 0; i < nnu; i++) free(nu[i].explanation);
  free(fu);
  free(nu);
  free(want);
  for (size_t i = 0; i < names.n; i++) free(names.gene[i]), free(names.name[i]);
  free(names.gene);
  free(names.name);
  strmap_destroy(&names.idx);
  rr_seqs_free(&seqs);
  free(mt.step), free(mt.loss), free(mt.val), free(mt.l0), free(mt.dead), free(mt.vstep);
  json_decref(isum), json_decref(nisum), json_decref(esum), json_decref(nesum);
  fs_close(&nfs);
  ps_config_destroy(&cfg);
  return status;
}

