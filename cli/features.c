// protsae features / feature N — read the scorer's feature store.
//   features      a sortable table: frequency, mean, max, dead / dense flags, and from the store's
//                 results (featstore.h) the significant GO terms and the explanation score
//   feature N     one feature: statistics, top proteins with gene and protein names (from the
//                 data directory's proteins.tsv.gz, streamed), a text histogram, its enriched GO
//                 terms and its explanation (read from the store, never from another command's files);
//                 at residue level the top proteins' top residues (report_residue.h), with --fasta
//                 along their sequences
// The store is opened read-only: these work while the scorer runs (as of its last commit).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "featstore.h"
#include "godata.h"
#include "proteins_tsv.h"
#include "report_residue.h"
#include "strmap.h"

// ---- features --------------------------------------------------------------------------------
typedef struct row {
  uint32_t id;
  uint64_t n;
  double freq, mean, max;
  uint32_t n_hits;       // significant GO terms (enrichment)
  char top_go[16];       // the best-p term ("" none)
  const char *top_name;  // borrowed from the names array (indexed by feature id)
  double r;              // explanation score (NaN: none)
} row_t;

static const ps_config_entry_t features_table[] = {
    {"db", "protsae-features.db", "feature store (protsae-scorer --db)"},
    {"sort", "frequency", "frequency | max | mean | id"},
    {"asc", "0", "ascending order (default: descending; id sorts ascending)"},
    {"limit", "50", "rows shown (0 = all)"},
    {"dense", "0.1", "a feature active on more than this fraction of proteins is flagged dense"},
    {"filter", "all", "all | dead | dense | alive"},
    {"dump", "0", "1: print the whole store as text instead (meta, features, codes; byte-identical for equal stores)"},
    {NULL, NULL, NULL},
};

static int sort_key;  // 0 freq, 1 max, 2 mean, 3 id
static int sort_asc;
static int cmp_rows(const void *a, const void *b) {
  const row_t *x = a, *y = b;
  double u = 0, v = 0;
  if (sort_key == 0) u = x->freq, v = y->freq;
  else if (sort_key == 1) u = x->max, v = y->max;
  else if (sort_key == 2) u = x->mean, v = y->mean;
  int c = sort_key == 3 ? 0 : (u < v ? -1 : u > v);
  if (!sort_asc) c = -c;
  if (c == 0) c = x->id < y->id ? -1 : x->id > y->id;  // ties (and --sort id): by id
  return c;
}

struct fill_ctx {
  row_t *rows;
  uint64_t proteins;
};
static int fill_row(uint32_t id, const fs_feat_t *f, void *ctx) {
  struct fill_ctx *c = ctx;
  row_t *r = &c->rows[id];
  r->n = f->n_active;
  r->freq = c->proteins ? (double)f->n_active / (double)c->proteins : 0;
  r->mean = fs_feat_mean(f);
  r->max = f->max;
  return 0;
}

struct res_ctx {
  row_t *rows;
  char **names;  // per feature id, owned
  uint32_t n_features;
  size_t n_enrich, n_interp;
};
static int res_enrich(uint32_t id, const fs_enrich_feat_t *e, void *ctx) {
  struct res_ctx *c = ctx;
  if (id >= c->n_features) return 0;
  row_t *r = &c->rows[id];
  r->n_hits = e->n_hits;
  if (e->n_hits) {
    snprintf(r->top_go, sizeof r->top_go, "%s", e->hits[0].go_id);
    r->top_name = c->names[id] = ps_xstrdup(e->hits[0].name ? e->hits[0].name : "");
  }
  c->n_enrich++;
  return 0;
}
static int res_interp(uint32_t id, const fs_interp_t *x, const char *json, void *ctx) {
  (void)json;
  struct res_ctx *c = ctx;
  if (id >= c->n_features) return 0;
  c->rows[id].r = x->scored ? x->r : NAN;
  c->n_interp++;
  return 0;
}

int cli_features(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, features_table, "protsae features", argc, argv);
  if (crc >= 0) return crc;
  fs_t *fs = NULL;
  fs_meta_t m;
  row_t *rows = NULL;
  char **names = NULL;
  int status = 1;
  int64_t limit = 50;
  double dense = 0.1;
  const ps_config_bind_t opts[] = {PS_CFG_I64("limit", &limit), PS_CFG_F64("dense", &dense), PS_CFG_BOOL("asc", &sort_asc),
                                   {0}};
  if (ps_config_read(cfg, opts, &err) < 0) goto out;
  const char *s = ps_config_str(cfg, "sort"), *flt = ps_config_str(cfg, "filter");
  if (!strcmp(s, "frequency")) sort_key = 0;
  else if (!strcmp(s, "max")) sort_key = 1;
  else if (!strcmp(s, "mean")) sort_key = 2;
  else if (!strcmp(s, "id")) sort_key = 3, sort_asc = 1;
  else {
    ps_err_set(&err, PS_ECONFIG, "--sort must be frequency, max, mean or id, not '%s'", s);
    goto out;
  }
  int fk = !strcmp(flt, "all") ? 0 : !strcmp(flt, "dead") ? 1 : !strcmp(flt, "dense") ? 2 : !strcmp(flt, "alive") ? 3 : -1;
  if (fk < 0) {
    ps_err_set(&err, PS_ECONFIG, "--filter must be all, dead, dense or alive, not '%s'", flt);
    goto out;
  }
  if (cli_store_open(ps_config_str(cfg, "db"), &fs, &m, &err) < 0) goto out;
  int dump = 0;
  ps_config_bool(cfg, "dump", &dump, NULL);
  if (dump) {
    if (fs_dump(fs, stdout, &err) < 0) goto out;
    status = 0;
    goto out;
  }
  rows = ps_xcalloc(m.n_features ? m.n_features : 1, sizeof *rows);
  for (uint32_t i = 0; i < m.n_features; i++) rows[i].id = i, rows[i].r = NAN;
  struct fill_ctx fc = {rows, m.proteins};
  if (fs_feat_each(fs, m.top_n, fill_row, &fc, &err) < 0) goto out;
  names = ps_xcalloc(m.n_features ? m.n_features : 1, sizeof *names);
  struct res_ctx rc = {rows, names, m.n_features, 0, 0};
  if (fs_enrich_each(fs, res_enrich, &rc, &err) < 0 || fs_interp_each(fs, res_interp, &rc, &err) < 0) goto out;
  int done = fs_enrich_done(fs, &err);
  if (done < 0) goto out;
  size_t n_dead = 0, n_dense = 0, n = 0;
  for (uint32_t i = 0; i < m.n_features; i++) {
    int dead = rows[i].n == 0, dn = rows[i].freq > dense;
    n_dead += dead;
    n_dense += dn;
    if (fk == 0 || (fk == 1 && dead) || (fk == 2 && dn) || (fk == 3 && !dead)) rows[n++] = rows[i];
  }
  qsort(rows, n, sizeof *rows, cmp_rows);
  printf("# %s: %u %s, %llu proteins%s; dead %zu (%.1f%%), dense (> %.0f%% of proteins) %zu\n",
         ps_config_str(cfg, "db"), m.n_features, m.neurons ? "neurons" : "features", (unsigned long long)m.proteins,
         m.level ? " (residue level, pooled)" : "", n_dead, m.n_features ? 100.0 * (double)n_dead / m.n_features : 0.0,
         dense * 100, n_dense);
  int res = rc.n_enrich || rc.n_interp;
  if (res)
    printf("# results: GO enrichment of %zu features%s, %zu explanations\n", rc.n_enrich,
           done ? "" : " (enrichment not complete)", rc.n_interp);
  printf("%8s %10s %9s %11s %11s  %-5s", "feature", "active", "freq", "mean", "max", "flags");
  if (res) printf(" %5s %7s  %s", "terms", "expl_r", "top GO term");
  fputc('\n', stdout);
  for (size_t i = 0; i < n && (limit <= 0 || (int64_t)i < limit); i++) {
    const row_t *r = &rows[i];
    printf("%8u %10llu %8.4f%% %11.4g %11.4g  %-5s", r->id, (unsigned long long)r->n, 100 * r->freq, r->mean, r->max,
           r->n == 0 ? "dead" : r->freq > dense ? "dense" : "");
    if (res) {
      char rs[16] = "-";
      if (!isnan(r->r)) snprintf(rs, sizeof rs, "%.3f", r->r);
      printf(" %5u %7s  %s%s%s", r->n_hits, rs, r->top_go, r->top_go[0] ? " " : "", r->top_name ? r->top_name : "");
    }
    fputc('\n', stdout);
  }
  status = 0;
out:
  if (status) fprintf(stderr, "protsae features: %s\n", err.msg);
  if (names)
    for (uint32_t i = 0; i < m.n_features; i++) free(names[i]);
  free(names);
  free(rows);
  fs_close(&fs);
  ps_config_destroy(&cfg);
  return status;
}

// ---- feature N -------------------------------------------------------------------------------
static const ps_config_entry_t feature_table[] = {
    {"db", "protsae-features.db", "feature store (protsae-scorer --db)"},
    {"data", NULL, "data directory with proteins.tsv[.gz] (accession, gene, name, pfam) for names (default: the shared data)"},
    {"terms", "10", "enriched GO terms shown (best p first)"},
    {"fasta", NULL, "residue level: the run's FASTA: the top proteins' sequences with the feature's residues marked"},
    {NULL, NULL, NULL},
};

static const char *ns_short(int ns) { return ns == 0 ? "BP" : ns == 1 ? "MF" : ns == 2 ? "CC" : "?"; }

// The feature's significant GO terms from the store's enrichment (best p first). 0 or <0.
static int print_terms(fs_t *fs, uint32_t id, int64_t max_terms, ps_err_t *err) {
  fs_enrich_feat_t e;
  int got = fs_enrich_get(fs, id, &e, err);
  if (got < 0) return got;
  int done = fs_enrich_done(fs, err);
  if (done < 0) return done;
  if (!got) {
    printf("\n  GO enrichment: %s\n", done ? "no record for this feature (not active on an annotated protein)"
                                            : "not in the store (the scorer runs it with --data when its stream is complete)");
    return 0;
  }
  if (!e.n_hits) {
    printf("\n  no significantly enriched GO term (%lld active proteins, %lld annotated, %u terms touched)%s\n",
           (long long)e.n_active, (long long)e.n_study, e.n_touched, done ? "" : " (enrichment not complete)");
    fs_enrich_feat_free(&e);
    return 0;
  }
  printf("\n  enriched GO terms (%u significant; %lld annotated of %lld active proteins)%s\n", e.n_hits,
         (long long)e.n_study, (long long)e.n_active, done ? "" : " (enrichment not complete)");
  printf("  %-11s %-2s %9s %8s %10s %10s %6s  %s\n", "term", "ns", "k/n", "fold", "p", "q (BH)", "F1", "name");
  for (uint32_t i = 0; i < e.n_hits && (int64_t)i < max_terms; i++) {
    const fs_term_hit_t *h = &e.hits[i];
    char kn[32];
    snprintf(kn, sizeof kn, "%u/%u", h->k, h->n);
    printf("  %-11s %-2s %9s %8.4g %10.3g %10.3g %6.3f  %s\n", h->go_id, ns_short(h->ns), kn, h->fold, h->p, h->q_bh,
           (double)h->f1, h->name ? h->name : "");
  }
  if ((int64_t)e.n_hits > max_terms) printf("  ... %lld more\n", (long long)e.n_hits - (long long)max_terms);
  if (e.best_f1_go[0]) printf("  best F1 %.3f (%s, activation >= %.2f of max)\n", (double)e.best_f1, e.best_f1_go,
                              (double)e.best_f1_threshold);
  fs_enrich_feat_free(&e);
  return 0;
}

// The unit's explanation and score from the store, when it was interpreted. 0 or <0.
static int print_explanation(fs_t *fs, uint32_t id, ps_err_t *err) {
  fs_interp_t x;
  int got = fs_interp_get(fs, id, &x, NULL, err);
  if (got <= 0) return got;
  int off = x.mode && !strncmp(x.mode, "offline", 7);
  printf("\n  explanation%s: %s\n", off ? " (OFFLINE)" : "",
         x.explanation ? x.explanation : "(none: the interpreter failed on this unit)");
  if (x.scored && !isnan(x.r))
    printf("  score: Pearson r %.3f (p %.3g) on held-out proteins%s\n", x.r, x.p,
           x.constant_pred ? " (constant predictions)" : "");
  if (x.failure && x.failure[0]) printf("  failure: %s\n", x.failure);
  if (x.mode && x.mode[0] && !off) printf("  interpreter: %s\n", x.mode);
  fs_interp_free(&x);
  return 0;
}

typedef struct pinfo {
  char *gene, *name, *pfam;
} pinfo_t;

// Stream proteins.tsv(.gz) and keep the rows of the wanted ids. Memory: the wanted rows only.
typedef struct {
  const fs_feat_t *f;
  pinfo_t *out;
  strmap_t *want;  // accession -> first index in f->top
} names_t;

static int take_names(void *ctx, const ps_protein_row_t *row, ps_err_t *err) {
  (void)err;
  names_t *nm = ctx;
  uint64_t first;
  if (!strmap_get(nm->want, row->accession, &first)) return 0;
  // every top entry with this id (several positions of one protein at residue level)
  for (uint32_t i = (uint32_t)first; i < nm->f->n_top; i++)
    if (!strcmp(nm->f->top[i].id, row->accession) && !nm->out[i].gene) {
      nm->out[i].gene = ps_xstrdup(row->gene);
      nm->out[i].name = ps_xstrdup(row->name);
      nm->out[i].pfam = ps_xstrdup(row->pfam);
    }
  return 0;
}

// Gene, protein name and Pfam of the feature's top proteins, from the data directory's
// proteins.tsv(.gz) (godata.h), streamed.
static int load_names(const char *dir, const fs_feat_t *f, pinfo_t *out, ps_err_t *err) {
  ps_godata_t gd;
  int rc = ps_godata_find(dir, PS_GODATA_NEED_PROTEINS, &gd, err);
  if (rc < 0) return rc;
  names_t nm = {f, out, strmap_new(f->n_top * 2 + 1)};
  for (uint32_t i = f->n_top; i-- > 0;) strmap_put(nm.want, f->top[i].id, i);  // the lowest index wins
  rc = ps_proteins_tsv_each(gd.proteins, take_names, &nm, err);
  strmap_destroy(&nm.want);
  return rc;
}

// Residue level: the top proteins' residues of the feature, with their sequences when fasta is given.
static int residue_card(fs_t *fs, uint32_t id, const fs_feat_t *f, const char *fasta, ps_err_t *err) {
  rr_seqs_t seqs = {0};
  const char **ids = ps_xmalloc(f->n_top * sizeof *ids);
  for (uint32_t i = 0; i < f->n_top; i++) ids[i] = f->top[i].id;
  int rc = fasta ? rr_seqs_load(&seqs, fasta, ids, f->n_top, err) : 0;
  free(ids);
  if (rc >= 0) rc = rr_card(stdout, 0, fs, id, f, &seqs, 5, err);
  rr_seqs_free(&seqs);
  return rc;
}

int cli_feature(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, feature_table, "protsae feature N", argc, argv);
  if (crc >= 0) return crc;
  if (ps_config_n_positional(cfg) != 1) return ps_config_cli_bad(&cfg, feature_table, "protsae feature N", NULL);
  fs_t *fs = NULL;
  fs_meta_t m;
  fs_feat_t f = {0};
  pinfo_t *info = NULL;
  int status = 1;
  char *end;
  const char *arg = ps_config_positional(cfg, 0);
  unsigned long id = strtoul(arg, &end, 10);
  if (!*arg || *end) {
    ps_err_set(&err, PS_ECONFIG, "feature id must be a number, not '%s'", arg);
    goto out;
  }
  if (cli_store_open(ps_config_str(cfg, "db"), &fs, &m, &err) < 0) goto out;
  if (id >= m.n_features) {
    ps_err_set(&err, PS_ENOTFOUND, "feature %lu: the store has features 0..%u", id, m.n_features - 1);
    goto out;
  }
  fs_feat_init(&f, m.top_n);
  int got = fs_feat_get(fs, (uint32_t)id, m.top_n, &f, &err);
  if (got < 0) goto out;
  printf("%s %lu  (%s)\n", m.neurons ? "neuron" : "feature", id, ps_config_str(cfg, "db"));
  printf("  active on   %llu of %llu proteins (%.4f%%)%s\n", (unsigned long long)f.n_active,
         (unsigned long long)m.proteins, m.proteins ? 100.0 * (double)f.n_active / (double)m.proteins : 0.0,
         f.n_active ? "" : "  -- dead");
  if (m.level)
    printf("  residues    %llu of %llu active, max %.4g\n", (unsigned long long)f.res_active,
           (unsigned long long)m.residues, (double)f.res_max);
  printf("  activation  mean %.4g  sd %.4g  max %.4g%s\n", fs_feat_mean(&f), fs_feat_std(&f), (double)f.max,
         m.level ? (m.pooling ? "  (max-pooled per protein)" : "  (mean-pooled per protein)") : "");
  if (f.n_top) {
    info = ps_xcalloc(f.n_top, sizeof *info);
    char dd[4096];
    const char *data = ps_config_str(cfg, "data");
    if (!data) data = ps_godata_default_dir(dd, sizeof dd);
    if (data && load_names(data, &f, info, &err) < 0) {
      fprintf(stderr, "protsae feature: %s (names not shown)\n", err.msg);
      ps_err_clear(&err);
    }
    printf("\n  top proteins%s\n", m.level ? " (max residue activation, 1-based position)" : "");
    for (uint32_t i = 0; i < f.n_top; i++) {
      const fs_top_t *t = &f.top[i];
      char pos[24] = "";
      if (t->pos != FS_POS_NONE) snprintf(pos, sizeof pos, "@%u", t->pos + 1);
      printf("  %3u. %9.4g  %-12s%-7s %-10s %s%s%s%s\n", i + 1, (double)t->value, t->id, pos,
             info[i].gene ? info[i].gene : "", info[i].name ? info[i].name : "",
             info[i].pfam && info[i].pfam[0] ? "  [" : "", info[i].pfam ? info[i].pfam : "",
             info[i].pfam && info[i].pfam[0] ? "]" : "");
    }
  }
  if (m.level && f.n_top && residue_card(fs, (uint32_t)id, &f, ps_config_str(cfg, "fasta"), &err) < 0) goto out;
  {
    int64_t nterms = 10;
    ps_config_i64(cfg, "terms", &nterms, NULL);
    if (print_terms(fs, (uint32_t)id, nterms, &err) < 0 || print_explanation(fs, (uint32_t)id, &err) < 0) goto out;
  }
  // histogram over the non-empty bins
  int lo = FS_HIST_BINS, hi = -1;
  uint64_t mx = 0;
  for (int b = 0; b < FS_HIST_BINS; b++)
    if (f.hist[b]) {
      if (b < lo) lo = b;
      hi = b;
      if (f.hist[b] > mx) mx = f.hist[b];
    }
  if (hi >= 0) {
    printf("\n  activation histogram (bins of x sqrt 2)\n");
    for (int b = lo; b <= hi; b++) {
      int w = (int)((double)f.hist[b] * 50.0 / (double)mx + 0.5);
      printf("  %9.3g .. %-9.3g %8llu  ", fs_hist_lower(b), fs_hist_lower(b + 1), (unsigned long long)f.hist[b]);
      for (int k = 0; k < w; k++) fputs("#", stdout);
      fputc('\n', stdout);
    }
  }
  status = 0;
out:
  if (status) fprintf(stderr, "protsae feature: %s\n", err.msg);
  if (info) {
    for (uint32_t i = 0; i < f.n_top; i++) {
      free(info[i].gene);
      free(info[i].name);
      free(info[i].pfam);
    }
    free(info);
  }
  fs_feat_clear(&f);
  fs_close(&fs);
  ps_config_destroy(&cfg);
  return status;
}
