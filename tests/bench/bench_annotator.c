// bench_annotator — the annotation sink's cost over the engine's: the same proteins' sparse codes
// written by annot_protein straight from memory (the reference: what the engine alone costs),
// then through the sink (sink_batch: checks + staging in RocksDB, batches in reverse order; the
// EndOfStream: read back in FASTA order, written, result committed), measured in the same process
// on a synthetic model over the real GO ontology (random enriched terms a feature).
// The engine runs before and after the sink (the faster counts: caches and a busy machine).
// Prints key: value lines: engine_proteins_per_s, sink_proteins_per_s, sink_fraction_of_engine
// (engine seconds / sink seconds), sink_staging_fraction (of the sink's seconds, the batches'),
// sink_output_identical (1 when the sink wrote the reference's bytes).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "config.h"
#include "featstore.h"
#include "fsutil.h"
#include "godata.h"
#include "io.h"
#include "sink.h"

static const ps_config_entry_t table[] = {
    {"proteins", "20000", "proteins of the proteome"},
    {"features", "4096", "SAE features"},
    {"k", "32", "active features a protein"},
    {"terms", "5", "enriched GO terms a feature"},
    {"batch", "256", "proteins a FeatureBatch"},
    {"data", NULL, "data directory with the GO ontology (default the shared human data)"},
    {"tmpdir", "/tmp", "where the stores and outputs go"},
    {NULL, NULL, NULL},
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

static int make_store(const char *db, const go_ontology_t *o, int64_t nf, int64_t nt, ps_err_t *err) {
  fs_t *fs = NULL;
  int rc = fs_open(&fs, db, FS_OPEN_CREATE, err);
  if (rc < 0) return rc;
  fs_wb_t *wb = fs_wb_new();
  fs_meta_t m = {.format = FS_FORMAT, .n_features = (uint32_t)nf, .top_n = 4, .proteins = 1000};
  fs_wb_put_meta(fs, wb, &m);
  size_t n_go = go_n_terms(o);
  for (int64_t f = 0; f < nf; f++) {
    fs_enrich_feat_t e;
    memset(&e, 0, sizeof e);
    e.n_active = e.n_study = 100, e.max_act = 2.0f, e.n_hits = (uint32_t)nt;
    e.hits = ps_xcalloc((size_t)nt, sizeof *e.hits);
    for (int64_t t = 0; t < nt; t++) {
      fs_term_hit_t *h = &e.hits[t];
      int32_t g;
      do g = (int32_t)(next() % n_go);
      while (go_resolve(o, g) != g);  // not an obsolete term
      snprintf(h->go_id, sizeof h->go_id, "%s", go_term(o, g)->id);
      h->name = ps_xstrdup("term");
      h->k = 10 + (uint32_t)(next() % 90), h->n = 100, h->K = 200, h->N = 10000, h->p = 1e-6, h->q_bh = 1e-4;
    }
    fs_wb_put_enrich(fs, wb, (uint32_t)f, &e);
    fs_enrich_feat_free(&e);
  }
  fs_wb_put_kv(fs, wb, "enrich/state", "done", 4);
  rc = fs_commit(fs, wb, 0, err);
  fs_wb_free(&wb);
  fs_close(&fs);
  return rc;
}

static int same_file(const char *a, const char *b) {
  FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
  int same = x && y;
  for (int c, d; same;) {
    c = fgetc(x), d = fgetc(y);
    if (c != d) same = 0;
    if (c == EOF || d == EOF) break;
  }
  if (x) fclose(x);
  if (y) fclose(y);
  return same;
}

// Every protein through annot_protein into tsv / jsonl; seconds.
static double engine_run(annot_model_t *m, char **ids, const uint32_t *idx, const float *val, int64_t np, int64_t k,
                         const char *tsv, const char *jsonl) {
  FILE *ft = fopen(tsv, "w"), *fj = fopen(jsonl, "w");
  annot_stats_t sts;
  memset(&sts, 0, sizeof sts);
  ps_err_t err = {0};
  double t0 = ps_mono_s();
  annot_write_header(ft);
  for (int64_t p = 0; p < np; p++)
    if (annot_protein(m, ids[p], idx + p * k, val + p * k, (size_t)k, ft, fj, NULL, NULL, &sts, &err) < 0) {
      fprintf(stderr, "bench_annotator: %s\n", err.msg);
      exit(1);
    }
  ps_fclose_synced(ft);
  ps_fclose_synced(fj);
  annot_stats_free(&sts);
  return ps_mono_s() - t0;
}

int main(int argc, char **argv) {
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "bench_annotator", argc, argv);
  if (crc >= 0) return crc;
  int64_t np, nf, k, nt, bn;
  ps_err_t err = {0};
  const ps_config_bind_t opts[] = {PS_CFG_I64("proteins", &np), PS_CFG_I64("features", &nf), PS_CFG_I64("k", &k),
                                   PS_CFG_I64("terms", &nt),    PS_CFG_I64("batch", &bn),    {0}};
  if (ps_config_read(cfg, opts, &err) < 0 || np < 1 || nf < k || k < 1 || bn < 1) {
    fprintf(stderr, "bench_annotator: %s\n", err.msg[0] ? err.msg : "proteins, batch >= 1, features >= k >= 1");
    return 2;
  }
  char dd[4096], dir[4096], db[4200], p1[4200], p2[4200], st[4200], out[4200], o1[4300], o2[4300];
  const char *data = ps_config_str(cfg, "data");
  if (!data && !(data = ps_godata_default_dir(dd, sizeof dd))) {
    fprintf(stderr, "bench_annotator: no data directory (--data or PROTSAE_DATA)\n");
    return 77;
  }
  ps_godata_t gd;
  go_ontology_t *onto = NULL;
  if (ps_godata_find(data, PS_GODATA_NEED_ONTOLOGY, &gd, &err) < 0 || go_ontology_load(&onto, gd.obo, NULL, &err) < 0) {
    fprintf(stderr, "bench_annotator: %s\n", err.msg);
    return 1;
  }
  snprintf(dir, sizeof dir, "%s/bench_annotator.XXXXXX", ps_config_str(cfg, "tmpdir"));
  if (!mkdtemp(dir)) return 1;
  snprintf(db, sizeof db, "%s/features.db", dir);
  annot_model_t *m = NULL;
  annot_opts_t ao = {.db = db, .obo = gd.obo, .conf = ANNOT_CONF_PRECISION, .min_score = 0.01, .max_terms = 100};
  if (make_store(db, onto, nf, nt, &err) < 0 || annot_model_load(&m, &ao, &err) < 0) {
    fprintf(stderr, "bench_annotator: %s\n", err.msg);
    return 1;
  }
  go_ontology_destroy(&onto);
  // the codes: k distinct features a protein, activations in (0, 2]
  uint32_t *idx = ps_xmalloc((size_t)(np * k) * sizeof *idx);
  float *val = ps_xmalloc((size_t)(np * k) * sizeof *val);
  char **ids = ps_xmalloc((size_t)np * sizeof *ids);
  for (int64_t p = 0; p < np; p++) {
    char id[32];
    snprintf(id, sizeof id, "P%08lld", (long long)p);
    ids[p] = ps_xstrdup(id);
    for (int64_t j = 0; j < k; j++) {
      uint32_t f;
      int dup;
      do {
        f = (uint32_t)(next() % (uint64_t)nf);
        dup = 0;
        for (int64_t q = 0; q < j; q++) dup |= idx[p * k + q] == f;
      } while (dup);
      idx[p * k + j] = f;
      val[p * k + j] = (float)((next() >> 11) * 0x1.0p-53 * 2.0 + 1e-3);
    }
  }
  // the engine alone (before and after the sink: the faster run counts)
  snprintf(p1, sizeof p1, "%s/ref.tsv", dir);
  snprintf(p2, sizeof p2, "%s/ref.jsonl", dir);
  double t_engine = engine_run(m, ids, idx, val, np, k, p1, p2);
  // the sink: batches in reverse order, then the end
  snprintf(st, sizeof st, "%s/state", dir);
  snprintf(out, sizeof out, "%s/out", dir);
  sink_opts_t so = {st, out, m, NULL, 10000, 0};
  sink_t *s = NULL;
  if (sink_open(&s, &so, NULL, NULL, &err) < 0) {
    fprintf(stderr, "bench_annotator: %s\n", err.msg);
    return 1;
  }
  const char *key = "bench.0123456789abcdef";
  int64_t nb = (np + bn - 1) / bn;
  uint32_t *indptr = ps_xmalloc((size_t)(bn + 1) * sizeof *indptr);
  uint64_t *src = ps_xmalloc((size_t)bn * sizeof *src);
  double t0 = ps_mono_s();
  for (int64_t b = nb - 1; b >= 0; b--) {
    int64_t lo = b * bn, n = lo + bn < np ? bn : np - lo;
    Protsae__FeatureBatch fb = PROTSAE__FEATURE_BATCH__INIT;
    for (int64_t i = 0; i <= n; i++) indptr[i] = (uint32_t)(i * k);
    for (int64_t i = 0; i < n; i++) src[i] = (uint64_t)(lo + i);
    fb.n_protein_ids = (size_t)n, fb.protein_ids = ids + lo, fb.n_rows = (uint32_t)n, fb.n_features = (uint32_t)nf;
    fb.n_indptr = (size_t)n + 1, fb.indptr = indptr;
    fb.n_indices = fb.n_values = (size_t)(n * k), fb.indices = idx + lo * k, fb.values = val + lo * k;
    fb.source_seq = (uint64_t)b, fb.source_producer = (char *)"reader-0", fb.proteome = (char *)key;
    fb.n_source_index = (size_t)n, fb.source_index = src;
    if (sink_batch(s, &fb, 0, &err) != 1) {
      fprintf(stderr, "bench_annotator: batch %lld: %s\n", (long long)b, err.msg);
      return 1;
    }
  }
  double t_stage = ps_mono_s() - t0;
  Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
  e.proteome = (char *)key, e.source_producer = (char *)"reader-0", e.source_next_seq = (uint64_t)nb;
  e.proteins_sent = (uint64_t)np, e.reason = (char *)"done";
  if (sink_eos(s, &e, "enc-0", 0, &err) != 1 || sink_counts(s)->done != 1) {
    fprintf(stderr, "bench_annotator: end: %s\n", err.msg);
    return 1;
  }
  double t_sink = ps_mono_s() - t0;
  sink_close(&s);
  double t2 = engine_run(m, ids, idx, val, np, k, p1, p2);
  if (t2 < t_engine) t_engine = t2;
  snprintf(o1, sizeof o1, "%s/bench.tsv", out);
  snprintf(o2, sizeof o2, "%s/bench.jsonl", out);
  printf("proteins: %lld\nfeatures: %lld\nk: %lld\n", (long long)np, (long long)nf, (long long)k);
  printf("engine_proteins_per_s: %.0f\n", (double)np / t_engine);
  printf("sink_proteins_per_s: %.0f\n", (double)np / t_sink);
  printf("sink_fraction_of_engine: %.3f\n", t_engine / t_sink);
  printf("sink_staging_fraction: %.3f\n", t_stage / t_sink);
  printf("sink_output_identical: %d\n", same_file(p1, o1) && same_file(p2, o2));
  for (int64_t p = 0; p < np; p++) free(ids[p]);
  free(ids), free(idx), free(val), free(indptr), free(src);
  annot_model_free(&m);
  ps_rm_rf(dir);
  ps_config_destroy(&cfg);
  return 0;
}
