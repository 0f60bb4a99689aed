// InterPLM's concept F1 (common/concept/concept.h) against a brute-force loop over dense
// activations: per (feature, concept, threshold) the on residues (normalised value > t) inside
// the concept, all on residues, the instances with an on residue, over the annotated proteins
// only; per-residue recall for MOD_RES / DISULFID, per-instance recall otherwise; concepts under
// min_instances untested; each feature's best with the ties broken by name then threshold.
// The engine fed whole residue codes must equal it exactly; the scorer's analysis
// (stages/scorer/concepts.c) on a residue-level store with residue_top 3, from a flat file and a
// TSV, must equal the brute force over the dense activations cut to each feature's top 3
// residues per protein, through one store and through a 2-shard store, and a second run with
// the same settings is kept.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "concept.h"
#include "concepts.h"
#include "featstore.h"
#include "fixture.h"
#include "rbatch_fixture.h"
#include "scorer.h"
#include "split.h"

#define NP 40
#define MAXL 36
#define NF 12
#define NC 6

static const char *const cnames[NC] = {"BINDING", "DISULFID", "DOMAIN:Alpha", "DOMAIN:Beta", "MOD_RES", "REGION:Rare"};

typedef struct ann { uint32_t c, a, b, pair; } ann_t;  // 0-based; b may be past the length (dropped)

typedef struct data {
  char ids[NP][16];
  uint32_t len[NP];
  float act[NP][MAXL][NF];
  ann_t ann[NP][6];
  uint32_t n_ann[NP];
  float fmax[NF];
} data_t;

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return (uint32_t)(rs % n);
}

static void gen(data_t *d) {
  memset(d, 0, sizeof *d);
  int rare = 0;
  for (uint32_t p = 0; p < NP; p++) {
    snprintf(d->ids[p], sizeof d->ids[p], "P%05u", p);
    uint32_t L = d->len[p] = 6 + rnd(MAXL - 6);
    for (uint32_t r = 0; r < L; r++)
      for (uint32_t f = 0; f < NF; f++)
        if (rnd(100) < 30) d->act[p][r][f] = 0.5f * (float)(1 + rnd(8));
    if (p % 9 == 8) continue;  // unannotated: not evaluated
    uint32_t n = 1 + rnd(5);
    for (uint32_t i = 0; i < n; i++) {
      ann_t *a = &d->ann[p][d->n_ann[p]++];
      a->c = rnd(NC - 1);
      if (a->c == 5 - 1 && rare < 2) a->c = 5, rare++;  // REGION:Rare: 2 instances (untested)
      a->a = rnd(L);
      if (a->c == 1) a->b = rnd(L), a->pair = a->a != a->b;  // DISULFID
      else if (a->c == 0 || a->c == 4) a->b = a->a;          // one residue
      else {
        uint32_t w = rnd(8);
        a->b = a->a + w < L ? a->a + w : L - 1;
      }
      if (a->pair && a->b < a->a) {
        uint32_t t = a->a;
        a->a = a->b, a->b = t;
      }
      if (a->c == 2 && rnd(4) == 0 && i + 1 < n) {  // an overlapping second instance of the same concept
        ann_t *o = &d->ann[p][d->n_ann[p]++];
        *o = *a;
        o->a = a->a + (a->b - a->a) / 2;
        i++;
      }
    }
    if (p == 3) d->ann[p][0].b = L + 4, d->ann[p][0].c = 2, d->ann[p][0].pair = 0;  // past the end: dropped
  }
}

typedef struct res { int has; uint32_t c, t; double p, r, f1; uint64_t tp, np; } res_t;

static const double TH[5] = {0, 0.15, 0.5, 0.6, 0.8};

// The brute force over dense activations act (optionally cut to top R per (protein, feature)).
static void brute(const data_t *d, float (*act)[MAXL][NF], uint32_t min_inst, res_t *out) {
  uint64_t inst[NC] = {0}, resc[NC] = {0};
  uint8_t in[NP][MAXL][NC];
  memset(in, 0, sizeof in);
  for (uint32_t p = 0; p < NP; p++)
    for (uint32_t i = 0; i < d->n_ann[p]; i++) {
      const ann_t *a = &d->ann[p][i];
      if (a->a >= d->len[p] || a->b >= d->len[p]) continue;
      inst[a->c]++;
      for (uint32_t r = a->a; r <= a->b; r++)
        if (!a->pair || r == a->a || r == a->b) in[p][r][a->c] = 1;
    }
  for (uint32_t p = 0; p < NP; p++)
    for (uint32_t r = 0; r < d->len[p]; r++)
      for (int c = 0; c < NC; c++) resc[c] += in[p][r][c];
  for (uint32_t f = 0; f < NF; f++) {
    static res_t all[NC][5];
    memset(all, 0, sizeof all);
    for (uint32_t t = 0; t < 5; t++) {
      uint64_t np = 0, tp[NC] = {0}, found[NC] = {0};
      for (uint32_t p = 0; p < NP; p++) {
        if (!d->n_ann[p]) continue;
        for (uint32_t r = 0; r < d->len[p]; r++)
          if ((double)act[p][r][f] / (double)d->fmax[f] > TH[t]) {
            np++;
            for (int c = 0; c < NC; c++) tp[c] += in[p][r][c];
          }
        for (uint32_t i = 0; i < d->n_ann[p]; i++) {
          const ann_t *a = &d->ann[p][i];
          if (a->a >= d->len[p] || a->b >= d->len[p]) continue;
          int on = 0;
          for (uint32_t r = a->a; r <= a->b; r++)
            if ((!a->pair || r == a->a || r == a->b) && (double)act[p][r][f] / (double)d->fmax[f] > TH[t]) on = 1;
          found[a->c] += on;
        }
      }
      for (uint32_t c = 0; c < NC; c++) {
        if (!tp[c] || inst[c] < min_inst) continue;
        double P = (double)tp[c] / (double)np;
        double R = (c == 1 || c == 4) ? (double)tp[c] / (double)resc[c] : (double)found[c] / (double)inst[c];
        all[c][t] = (res_t){1, c, t, P, R, 2 * P * R / (P + R), tp[c], np};
      }
    }
    // cnames are in name order: concept outer, threshold inner, a strict > keeps the first of equals
    out[f].has = 0;
    for (uint32_t c = 0; c < NC; c++)
      for (uint32_t t = 0; t < 5; t++)
        if (all[c][t].has && (!out[f].has || all[c][t].f1 > out[f].f1)) out[f] = all[c][t];
  }
}

static void compare(const data_t *d, const res_t *want, uint32_t f, const char *name, uint32_t t, double p, double r,
                    double f1, uint64_t tp, uint64_t np) {
  (void)d;
  assert_true(want[f].has);
  if (strcmp(name, cnames[want[f].c]) || t != want[f].t || tp != want[f].tp || np != want[f].np ||
      fabs(f1 - want[f].f1) > 1e-12 || fabs(p - want[f].p) > 1e-12 || fabs(r - want[f].r) > 1e-12)
    fail_msg("feature %u: got %s t%u P %.6f R %.6f F1 %.6f tp %llu/%llu, brute force %s t%u P %.6f R %.6f F1 %.6f "
             "tp %llu/%llu", f, name, t, p, r, f1, (unsigned long long)tp, (unsigned long long)np,
             cnames[want[f].c], want[f].t, want[f].p, want[f].r, want[f].f1, (unsigned long long)want[f].tp,
             (unsigned long long)want[f].np);
}

static void fill_max(data_t *d) {
  for (uint32_t f = 0; f < NF; f++) {
    d->fmax[f] = 0;
    for (uint32_t p = 0; p < NP; p++)
      for (uint32_t r = 0; r < d->len[p]; r++)
        if (d->act[p][r][f] > d->fmax[f]) d->fmax[f] = d->act[p][r][f];
  }
}

static void test_engine_vs_brute(void **state) {
  (void)state;
  static data_t d;
  static res_t want[NF];
  for (int round = 0; round < 6; round++) {
    gen(&d);
    fill_max(&d);
    uint32_t min_inst = round % 2 ? 3 : 8;
    brute(&d, d.act, min_inst, want);
    concept_set_t *s = concept_set_new();
    for (uint32_t p = 0; p < NP; p++)
      for (uint32_t i = 0; i < d.n_ann[p]; i++) {
        const ann_t *a = &d.ann[p][i];
        concept_set_add(s, d.ids[p], NULL, cnames[a->c], a->a + 1, a->b + 1, (int)a->pair);
      }
    concept_f1_opts_t o;
    concept_f1_opts_default(&o);
    o.min_instances = min_inst;
    concept_f1_t *acc = concept_f1_new(s, NF, d.fmax, &o);
    static uint32_t feat[MAXL * NF], pos[MAXL * NF];
    static float val[MAXL * NF];
    ps_err_t err = {0};
    for (uint32_t p = 0; p < NP; p++) {
      uint32_t n = 0;
      for (uint32_t f = 0; f < NF; f++)
        for (uint32_t r = 0; r < d.len[p]; r++)
          if (d.act[p][r][f] > 0) feat[n] = f, pos[n] = r, val[n++] = d.act[p][r][f];
      fs_rcode_t rc = {d.len[p], n, feat, pos, val};
      assert_int_equal(concept_f1_add(acc, d.ids[p], &rc, &err), d.n_ann[p] ? 1 : 0);
    }
    concept_f1_best_t *best = NULL;
    size_t nb = 0;
    concept_f1_summary_t sum;
    concept_f1_finish(acc, &best, &nb, &sum);
    size_t nwant = 0;
    for (uint32_t f = 0; f < NF; f++) nwant += want[f].has;
    assert_int_equal(nb, nwant);
    assert_true(nb > 0);
    for (size_t i = 0; i < nb; i++)
      compare(&d, want, best[i].feature, concept_set_name(s, best[i].concept), best[i].t, best[i].precision,
              best[i].recall, best[i].f1, best[i].tp, best[i].n_pred);
    assert_int_equal(sum.ann_out_of_range, 1);
    assert_int_equal(sum.n_proteins, NP - NP / 9);
    uint64_t inst, res;
    uint32_t rare = 0;
    for (uint32_t c = 0; c < concept_set_n_concepts(s); c++)
      if (!strcmp(concept_set_name(s, c), "REGION:Rare")) rare = c;
    concept_f1_concept_counts(acc, rare, &inst, &res);
    assert_true(inst <= 2);
    free(best);
    concept_f1_destroy(&acc);
    concept_set_destroy(&s);
  }
}

// ---- through the scorer and the store -------------------------------------------------------------------
typedef struct fbuf {
  Protsae__FeatureBatch fb;
  char *ids[NP];
  uint32_t offsets[NP + 1], indptr[NP * MAXL + 1], indices[NP * MAXL * NF], pindptr[NP + 1], pindices[NP * NF];
  float values[NP * MAXL * NF], pvalues[NP * NF];
} fbuf_t;

static void make_batch(data_t *d, fbuf_t *b) {
  uint32_t rows = 0, nnz = 0, pn = 0;
  b->offsets[0] = b->indptr[0] = b->pindptr[0] = 0;
  for (uint32_t p = 0; p < NP; p++) {
    b->ids[p] = d->ids[p];
    for (uint32_t r = 0; r < d->len[p]; r++, rows++) {
      for (uint32_t f = 0; f < NF; f++)
        if (d->act[p][r][f] > 0) b->indices[nnz] = f, b->values[nnz++] = d->act[p][r][f];
      b->indptr[rows + 1] = nnz;
    }
    b->offsets[p + 1] = rows;
    for (uint32_t f = 0; f < NF; f++) {
      float m = 0;
      for (uint32_t r = 0; r < d->len[p]; r++) m = d->act[p][r][f] > m ? d->act[p][r][f] : m;
      if (m > 0) b->pindices[pn] = f, b->pvalues[pn++] = m;
    }
    b->pindptr[p + 1] = pn;
  }
  rb_arrays_t a = {NP, NF, b->ids, b->offsets, b->indptr, b->indices, b->values, b->pindptr, b->pindices, b->pvalues};
  rb_batch(&b->fb, &a, 0, 1);
}

// The annotations as a flat file (current layout: DOMAIN, DISULFID, MOD_RES, REGION) and a TSV (BINDING).
static void write_files(const data_t *d, const char *flat, const char *tsv) {
  FILE *a = fopen(flat, "w"), *b = fopen(tsv, "w");
  assert_non_null(a);
  assert_non_null(b);
  fprintf(b, "accession\tstart\tend\tconcept\n");
  for (uint32_t p = 0; p < NP; p++) {
    if (!d->n_ann[p]) continue;
    fprintf(a, "ID   E%u_TEST   Reviewed;   %u AA.\nAC   %s;\n", p, d->len[p], d->ids[p]);
    for (uint32_t i = 0; i < d->n_ann[p]; i++) {
      const ann_t *x = &d->ann[p][i];
      if (x->c == 0) {
        fprintf(b, "%s\t%u\t%u\tBINDING\n", d->ids[p], x->a + 1, x->b + 1);
        continue;
      }
      const char *type = x->c == 1 ? "DISULFID" : x->c == 4 ? "MOD_RES" : x->c == 5 ? "REGION" : "DOMAIN";
      if (x->a == x->b) fprintf(a, "FT   %-15s %u\n", type, x->a + 1);
      else fprintf(a, "FT   %-15s %u..%u\n", type, x->a + 1, x->b + 1);
      if (x->c == 2 || x->c == 3) fprintf(a, "FT                   /note=\"%s %u\"\n", x->c == 2 ? "Alpha" : "Beta", i + 1);
      if (x->c == 4) fprintf(a, "FT                   /note=\"Phosphoserine\"\n");
      if (x->c == 5) fprintf(a, "FT                   /note=\"Rare; by similarity\"\n");
    }
    fprintf(a, "//\n");
  }
  fclose(a);
  fclose(b);
}

// act cut to the top R residues of each (protein, feature): the largest values, ties to the lower position
static void cut_top(const data_t *d, float (*out)[MAXL][NF], uint32_t R) {
  memset(out, 0, sizeof(float) * NP * MAXL * NF);
  for (uint32_t p = 0; p < NP; p++)
    for (uint32_t f = 0; f < NF; f++) {
      uint8_t taken[MAXL] = {0};
      for (uint32_t k = 0; k < R; k++) {
        int bi = -1;
        for (uint32_t r = 0; r < d->len[p]; r++)
          if (!taken[r] && d->act[p][r][f] > 0 && (bi < 0 || d->act[p][r][f] > d->act[p][bi][f])) bi = (int)r;
        if (bi < 0) break;
        taken[bi] = 1;
        out[p][bi][f] = d->act[p][bi][f];
      }
    }
}

struct each_ctx { const data_t *d; const res_t *want; uint32_t n; };
static int each_fn(const fs_concept_t *c, void *ctx) {
  struct each_ctx *x = ctx;
  uint32_t t = 0;
  while (t < 5 && TH[t] != c->threshold) t++;
  compare(x->d, x->want, c->feature, c->concept, t, c->precision, c->recall, c->f1, c->tp, c->n_pred);
  x->n++;
  return 0;
}

static void check_store(fs_t *fs, scorer_concepts_t *sc, const data_t *d, const res_t *want) {
  ps_err_t err = {0};
  int ran = 0;
  if (scorer_concepts_run(sc, fs, 0, &ran, &err) < 0) fail_msg("%s", err.msg);
  assert_int_equal(ran, 1);
  struct each_ctx x = {d, want, 0};
  assert_int_equal(fs_concept_each(fs, each_fn, &x, &err), 0);
  uint32_t nwant = 0, over = 0;
  for (uint32_t f = 0; f < NF; f++) nwant += want[f].has, over += want[f].has && want[f].f1 > 0.5;
  assert_int_equal(x.n, nwant);
  for (uint32_t f = 0; f < NF; f++) {
    fs_concept_t c;
    int rc = fs_concept_get(fs, f, &c, &err);
    assert_int_equal(rc, want[f].has);
    if (rc) assert_string_equal(c.concept, cnames[want[f].c]);
    fs_concept_free(&c);
  }
  char *sum = NULL;
  assert_int_equal(fs_kv_get(fs, "concept/summary", &sum, NULL, &err), 1);
  char key[64];
  snprintf(key, sizeof key, "\"features_f1_over_05\":%u", over);
  if (!strstr(sum, key)) fail_msg("summary %s: want %s", sum, key);
  snprintf(key, sizeof key, "\"n_proteins\":%u", NP - NP / 9);
  assert_non_null(strstr(sum, key));
  assert_non_null(strstr(sum, "\"thresholds\":[0.0,0.14999999999999999,0.5,0.59999999999999998,0.80000000000000004]"));
  free(sum);
  assert_int_equal(scorer_concepts_run(sc, fs, 0, &ran, &err), 0);  // same settings: kept
  assert_int_equal(ran, 0);
}

static void test_scorer_concepts(void **state) {
  (void)state;
  static data_t d;
  static fbuf_t b;
  static res_t want[NF];
  static float cut[NP][MAXL][NF];
  gen(&d);
  fill_max(&d);
  cut_top(&d, cut, 3);
  brute(&d, cut, 3, want);
  char one[4096], dir[4096], sp[4200], flat[4096], tsv[4096], files[8300];
  fx_path(one, sizeof one, "one");
  fx_path(dir, sizeof dir, "sharded");
  fx_path(flat, sizeof flat, "ann.dat");
  fx_path(tsv, sizeof tsv, "ann.tsv");
  write_files(&d, flat, tsv);
  snprintf(files, sizeof files, "%s,%s", flat, tsv);
  make_batch(&d, &b);
  ps_err_t err = {0};
  scorer_t *s1 = NULL;
  scorer_opts_t o = {one, 4, 0, 0, 0, 0, 3};
  assert_int_equal(scorer_open(&s1, &o, &err), 0);
  assert_int_equal(scorer_apply(s1, &b.fb, &err), 1);
  assert_int_equal(scorer_commit(s1, &err), 0);
  scorer_concepts_cfg_t cc = {files, {0}};
  concept_f1_opts_default(&cc.opts);
  cc.opts.min_instances = 3;
  scorer_concepts_t *sc = NULL;
  if (scorer_concepts_new(&sc, &cc, &err) < 0) fail_msg("%s", err.msg);
  check_store(scorer_store(s1), sc, &d, want);
  scorer_close(&s1);
  // two shards, the analysis on the merged store (as the front runs it)
  assert_int_equal(fs_shards_init(dir, 2, &err), 0);
  fb_split_t *cutb = fb_split_new(2);
  Protsae__FeatureBatch *parts[2];
  assert_int_equal(fb_split_run(cutb, &b.fb, parts, &err), 0);
  for (uint32_t k = 0; k < 2; k++) {
    scorer_t *sh = NULL;
    fs_shard_path(dir, k, sp, sizeof sp);
    scorer_opts_t so = {sp, 4, 0, 0, k, 2, 3};
    assert_int_equal(scorer_open(&sh, &so, &err), 0);
    assert_int_equal(scorer_apply(sh, parts[k], &err), 1);
    assert_int_equal(scorer_commit(sh, &err), 0);
    scorer_close(&sh);
  }
  fb_split_destroy(&cutb);
  fs_t *merged = NULL;
  assert_int_equal(fs_open_sharded(&merged, dir, FS_OPEN_CREATE, &err), 0);
  check_store(merged, sc, &d, want);
  fs_close(&merged);
  scorer_concepts_destroy(&sc);
  // a missing file fails at load, naming it
  cc.files = "/nonexistent/ann.dat";
  assert_true(scorer_concepts_new(&sc, &cc, &err) < 0);
  assert_non_null(strstr(err.msg, "/nonexistent/ann.dat"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_engine_vs_brute),
      cmocka_unit_test(test_scorer_concepts),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
