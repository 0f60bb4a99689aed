// bench_rcode — what the residue codes cost the scorer, and what the concept analysis costs over
// them, each against a reference measured in the same command:
//  - scorer ingest at residue level (scorer_apply + commits every 16 batches into a fresh RocksDB
//    store) with --residue-top R (8) against the same batches with residue-top 0 (no entries
//    kept), interleaved, the best of five each: rcode_ingest_rows_per_s, rcode_off_ingest_rows_per_s, rcode_ingest_ratio (R / 0; 1 =
//    free), rcode_store_mb / rcode_off_store_mb (the stores' sizes on disk) and their ratio;
//  - the concept F1 over the stored residue codes (concept_f1_add for every protein, every
//    protein annotated with --concepts-per-protein spans) against reading the same residue codes
//    alone (fs_rcode_each): concept_f1_seconds, rcode_read_seconds, concept_f1_vs_read.
// Synthetic codes of the reference study's residue-level shape: --features 4096 latents, k --k 16
// active per residue, --proteins 2000 of 100-500 residues, --batch-proteins 16 a batch; each
// protein's activity concentrated on k x 4 features (as real residue codes are), values from a
// seeded generator. Prints key: value lines.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "concept.h"
#include "config.h"
#include "fsutil.h"
#include "io.h"
#include "scorer.h"

static const ps_config_entry_t table[] = {
    {"features", "4096", "latents"},
    {"k", "16", "active latents per residue"},
    {"proteins", "2000", "proteins"},
    {"batch-proteins", "16", "proteins per batch"},
    {"residue-top", "8", "R of the measured run (the reference keeps 0)"},
    {"concepts-per-protein", "4", "annotated spans per protein for the concept F1"},
    {"tmpdir", "/tmp", "where the stores go"},
    {NULL, NULL, NULL},
};

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(uint32_t n) {
  rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
  return (uint32_t)(rs % n);
}

typedef struct bb {
  Protsae__FeatureBatch fb;
  char **ids;
  uint32_t *offsets, *indptr, *indices, *pindptr, *pindices;
  float *values, *pvalues;
} bb_t;

static int u32cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

// One batch of np proteins starting at protein p0.
static void make(bb_t *b, uint32_t p0, uint32_t np, uint32_t nf, uint32_t k, uint32_t *lens, uint64_t seq,
                 uint64_t n_batches) {
  uint32_t rows = 0;
  for (uint32_t p = 0; p < np; p++) rows += lens[p0 + p];
  b->ids = calloc(np, sizeof *b->ids);
  b->offsets = malloc((np + 1) * sizeof *b->offsets);
  b->indptr = malloc((rows + 1) * sizeof *b->indptr);
  b->indices = malloc((size_t)rows * k * sizeof *b->indices);
  b->values = malloc((size_t)rows * k * sizeof *b->values);
  b->pindptr = malloc((np + 1) * sizeof *b->pindptr);
  b->pindices = malloc((size_t)np * nf * sizeof *b->pindices);
  b->pvalues = malloc((size_t)np * nf * sizeof *b->pvalues);
  float *pmax = calloc(nf, sizeof *pmax);
  uint32_t *pool = malloc(4 * k * sizeof *pool), r = 0, nnz = 0, pn = 0;
  b->offsets[0] = b->indptr[0] = b->pindptr[0] = 0;
  for (uint32_t p = 0; p < np; p++) {
    char id[32];
    snprintf(id, sizeof id, "P%06u", p0 + p);
    b->ids[p] = strdup(id);
    for (uint32_t i = 0; i < 4 * k; i++) pool[i] = rnd(nf);
    memset(pmax, 0, nf * sizeof *pmax);
    for (uint32_t q = 0; q < lens[p0 + p]; q++, r++) {
      uint32_t *row = b->indices + nnz, m = 0;
      for (uint32_t j = 0; j < k; j++) {  // k distinct latents from the protein's pool
        uint32_t f = pool[rnd(4 * k)], dup = 0;
        for (uint32_t t = 0; t < m; t++) dup |= row[t] == f;
        if (!dup) row[m++] = f;
      }
      qsort(row, m, sizeof *row, u32cmp);
      for (uint32_t t = 0; t < m; t++) {
        float v = 0.05f + (float)rnd(1000) / 100.0f;
        b->values[nnz + t] = v;
        if (v > pmax[row[t]]) pmax[row[t]] = v;
      }
      nnz += m;
      b->indptr[r + 1] = nnz;
    }
    b->offsets[p + 1] = r;
    for (uint32_t f = 0; f < nf; f++)
      if (pmax[f] > 0) b->pindices[pn] = f, b->pvalues[pn++] = pmax[f];
    b->pindptr[p + 1] = pn;
  }
  free(pmax);
  free(pool);
  Protsae__FeatureBatch init = PROTSAE__FEATURE_BATCH__INIT, *f = &b->fb;
  *f = init;
  f->level = PROTSAE__LEVEL__LEVEL_RESIDUE, f->pooling = PROTSAE__POOLING__POOLING_MAX;
  f->n_residue_offsets = np + 1, f->residue_offsets = b->offsets;
  f->n_pooled_indptr = np + 1, f->pooled_indptr = b->pindptr;
  f->n_pooled_indices = f->n_pooled_values = pn, f->pooled_indices = b->pindices, f->pooled_values = b->pvalues;
  f->n_protein_ids = np, f->protein_ids = b->ids, f->n_rows = rows, f->n_features = nf;
  f->n_indptr = rows + 1, f->indptr = b->indptr, f->n_indices = f->n_values = nnz;
  f->indices = b->indices, f->values = b->values;
  f->source_producer = "reader-0", f->source_seq = seq, f->stream_batches = n_batches;
}

// Ingest every batch into a fresh store at path with residue-top R: rows per second.
static double ingest(const char *path, bb_t *b, uint32_t nb, uint32_t R, uint64_t rows) {
  ps_rm_rf(path);
  scorer_t *s = NULL;
  ps_err_t err = {0};
  scorer_opts_t o = {path, 20, 0, 0, 0, 0, R};
  if (scorer_open(&s, &o, &err) < 0) {
    fprintf(stderr, "bench_rcode: %s\n", err.msg);
    exit(1);
  }
  double t0 = ps_mono_s();
  for (uint32_t i = 0; i < nb; i++) {
    if (scorer_apply(s, &b[i].fb, &err) != 1) {
      fprintf(stderr, "bench_rcode: batch %u: %s\n", i, err.msg);
      exit(1);
    }
    if ((i + 1) % 16 == 0 || i + 1 == nb) scorer_commit(s, &err);
  }
  double dt = ps_mono_s() - t0;
  scorer_close(&s);
  return (double)rows / dt;
}

static double dir_mb(const char *path) {
  char cmd[4300];
  snprintf(cmd, sizeof cmd, "du -sk '%s'", path);
  FILE *p = popen(cmd, "r");
  long kb = 0;
  if (!p || fscanf(p, "%ld", &kb) != 1) kb = 0;
  if (p) pclose(p);
  return (double)kb / 1024.0;
}

static int count_fn(const char *id, const fs_rcode_t *rc, void *ctx) {
  *(uint64_t *)ctx += rc->n + (id[0] == 0);
  return 0;
}
static int f1_fn(const char *id, const fs_rcode_t *rc, void *ctx) {
  ps_err_t err = {0};
  return concept_f1_add(ctx, id, rc, &err) < 0 ? -1 : 0;
}
static int max_fn(uint32_t f, const fs_feat_t *ft, void *ctx) {
  ((float *)ctx)[f] = ft->res_max;
  return 0;
}

int main(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_main(&cfg, table, "bench_rcode", argc, argv);
  if (crc >= 0) return crc;
  int64_t nf, k, np, bp, R, cpp;
  ps_err_t err = {0};
  const ps_config_bind_t b[] = {PS_CFG_I64("features", &nf), PS_CFG_I64("k", &k), PS_CFG_I64("proteins", &np),
                                PS_CFG_I64("batch-proteins", &bp), PS_CFG_I64("residue-top", &R),
                                PS_CFG_I64("concepts-per-protein", &cpp), {0}};
  if (ps_config_read(cfg, b, &err) < 0 || nf < 1 || k < 1 || k > nf || np < 1 || bp < 1 || R < 1 || cpp < 0) {
    fprintf(stderr, "bench_rcode: %s\n", err.msg[0] ? err.msg : "bad options");
    return 2;
  }
  uint32_t *lens = malloc((size_t)np * sizeof *lens);
  uint64_t rows = 0;
  for (int64_t p = 0; p < np; p++) rows += lens[p] = 100 + rnd(401);
  uint32_t nb = (uint32_t)((np + bp - 1) / bp);
  bb_t *bs = calloc(nb, sizeof *bs);
  for (uint32_t i = 0; i < nb; i++) {
    uint32_t p0 = i * (uint32_t)bp, n = (uint32_t)(p0 + bp <= np ? bp : np - p0);
    make(&bs[i], p0, n, (uint32_t)nf, (uint32_t)k, lens, i, nb);
  }
  char on[4096], off[4096];
  snprintf(on, sizeof on, "%s/bench-rcode-on.%ld", ps_config_str(cfg, "tmpdir"), (long)getpid());
  snprintf(off, sizeof off, "%s/bench-rcode-off.%ld", ps_config_str(cfg, "tmpdir"), (long)getpid());
  double r_off = 0, r_on = 0;
  for (int rep = 0; rep < 5; rep++) {  // interleaved, the best of five each
    double a = ingest(off, bs, nb, 0, rows), c = ingest(on, bs, nb, (uint32_t)R, rows);
    r_off = a > r_off ? a : r_off;
    r_on = c > r_on ? c : r_on;
  }
  printf("rows: %llu\nproteins: %lld\nfeatures: %lld\nk: %lld\nresidue_top: %lld\n", (unsigned long long)rows,
         (long long)np, (long long)nf, (long long)k, (long long)R);
  printf("rcode_ingest_rows_per_s: %.0f\nrcode_off_ingest_rows_per_s: %.0f\nrcode_ingest_ratio: %.3f\n", r_on, r_off,
         r_on / r_off);
  double mb_on = dir_mb(on), mb_off = dir_mb(off);
  printf("rcode_store_mb: %.1f\nrcode_off_store_mb: %.1f\nrcode_store_ratio: %.2f\n", mb_on, mb_off,
         mb_off > 0 ? mb_on / mb_off : 0);
  // the concept F1 over the stored codes vs reading them
  fs_t *fs = NULL;
  if (fs_open(&fs, on, FS_OPEN_READONLY, &err) < 0) {
    fprintf(stderr, "bench_rcode: %s\n", err.msg);
    return 1;
  }
  concept_set_t *cs = concept_set_new();
  const char *names[] = {"DOMAIN:A", "DOMAIN:B", "MOTIF:C", "MOD_RES", "BINDING", "REGION:D", "DISULFID", "TRANSMEM"};
  for (int64_t p = 0; p < np; p++) {
    char id[32];
    snprintf(id, sizeof id, "P%06lld", (long long)p);
    for (int64_t i = 0; i < cpp; i++) {
      uint32_t a = 1 + rnd(lens[p]), c = rnd(8), w = c == 3 || c == 4 ? 0 : rnd(60);
      uint32_t e = a + w <= lens[p] ? a + w : lens[p];
      concept_set_add(cs, id, NULL, names[c], a, c == 6 ? 1 + rnd(lens[p]) : e, c == 6);
    }
  }
  uint64_t entries = 0;
  double t0 = ps_mono_s();
  fs_rcode_each(fs, count_fn, &entries, &err);
  double t_read = ps_mono_s() - t0;
  float *fmax = calloc((size_t)nf, sizeof *fmax);
  fs_feat_each(fs, 20, max_fn, fmax, &err);
  concept_f1_opts_t o;
  concept_f1_opts_default(&o);
  concept_f1_t *acc = concept_f1_new(cs, (uint32_t)nf, fmax, &o);
  t0 = ps_mono_s();
  fs_rcode_each(fs, f1_fn, acc, &err);
  concept_f1_best_t *best = NULL;
  size_t n_best = 0;
  concept_f1_summary_t sum;
  concept_f1_finish(acc, &best, &n_best, &sum);
  double t_f1 = ps_mono_s() - t0;
  entries = 0;
  t0 = ps_mono_s();
  fs_rcode_each(fs, count_fn, &entries, &err);  // again, as warm as the F1's pass: the faster of the two
  if (ps_mono_s() - t0 < t_read) t_read = ps_mono_s() - t0;
  printf("rcode_entries: %llu\nrcode_entries_per_protein: %.0f\n", (unsigned long long)entries, (double)entries / np);
  printf("concept_f1_seconds: %.3f\nrcode_read_seconds: %.3f\nconcept_f1_vs_read: %.2f\nconcept_features_scored: %zu\n",
         t_f1, t_read, t_f1 / t_read, n_best);
  free(best);
  concept_f1_destroy(&acc);
  concept_set_destroy(&cs);
  fs_close(&fs);
  ps_rm_rf(on);
  ps_rm_rf(off);
  return 0;
}
