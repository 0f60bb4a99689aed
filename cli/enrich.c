// protsae enrich — GO enrichment of every feature of an SAE (and/or of the raw embedding
// dimensions, "neurons", with ReLU) against the whole GO hierarchy, in one process:
//   embeddings (.npy + ids, or any reader format) -> sae_enc (in-process) -> feature-major sparse
//   activations -> common/enrich engine -> TSV files + summary (`key: value` lines; a
//   side-by-side table when both features and neurons are analysed).
// --truth SYNTH_DIR (protsae synth output) adds the planted-term check: for each decoder row
// with cosine >= 0.9 to a planted direction, is that direction's GO term among the row's
// significant terms?
// Memory: one chunk of embedding rows (chunk-rows x d) + the sparse codes (12 bytes per active
// (protein, latent), twice while transposed) + the SAE + the engine (see enrich.h).
#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "emb.h"
#include "enrich.h"
#include "godata.h"
#include "io.h"
#include "go.h"
#include "log.h"
#include "sae.h"

static const ps_config_entry_t table[] = {
    {"sae", NULL, "SAE directory (cfg.json + sae_weights.safetensors), e.g. RUN/latest"},
    {"neurons", "0", "also (or, without --sae, only) analyse the raw embedding dimensions with ReLU"},
    {"emb", NULL, "embeddings, one row per protein (.npy, .safetensors, .h5, .pt)"},
    {"ids", NULL, "protein ids, one per line (for .npy); default: <emb dir>/proteins.ids when present"},
    {"data", NULL, "data directory with go_annotations.tsv.gz and go.obo[.gz] / go-*.obo[.gz] "
                   "(default: $PROTSAE_DATA or ../shared/data/human-swissprot)"},
    {"obo", NULL, "GO ontology file (overrides the one in --data)"},
    {"annotations", NULL, "annotation file (overrides --data's go_annotations.tsv.gz)"},
    {"annot-format", NULL, "tsv | gaf | uniprot (default: gaf when the name holds '.gaf', else tsv)"},
    {"min-size", "5", "population proteins a GO term needs to be tested"},
    {"act-frac", "0", "active = value > act-frac x the feature's max (0: value > 0)"},
    {"alternative", "greater", "greater (one-sided enrichment) | two-sided (goatools' p-values)"},
    {"correction", "bonferroni", "bonferroni (per feature) | fdr (Benjamini-Hochberg): what must be < alpha "
                                 "(--enrich-correction, when given, overrides it)"},
    ENRICH_CONFIG_ENTRIES(NULL),
    {"alpha", "0.05", "significance level"},
    {"f1-thresholds", "0,0.15,0.5,0.6,0.8", "activation thresholds (fractions of the max) for the best F1"},
    {"max-hits", "0", "keep at most this many terms per feature (0 = all significant)"},
    {"threads", "2", "threads (encoding and enrichment)"},
    {"chunk-rows", "4096", "embedding rows encoded at a time"},
    {"out", NULL, "output directory: enrich_<kind>.tsv (one line per kept feature-term) and features_<kind>.tsv"},
    {"truth", NULL, "protsae synth output directory: check the planted term of each recovered feature"},
    {"feature", NULL, "print this feature's top terms with names"},
    {"top", "10", "terms shown by --feature"},
    {"seed", "1", "seed of the random-term baseline (monosemanticity)"},
    {NULL, NULL, NULL},
};



// Growing protein-major CSR.
typedef struct csr {
  int64_t n_rows, cap_rows, nnz, cap_nnz;
  int64_t *indptr;
  int32_t *cols;
  float *vals;
} csr_t;

static void csr_row_begin(csr_t *c) {
  if (c->n_rows + 2 > c->cap_rows) {
    c->cap_rows = c->cap_rows ? c->cap_rows * 2 : 4096;
    c->indptr = ps_xrealloc(c->indptr, (size_t)c->cap_rows * sizeof *c->indptr);
  }
  if (c->n_rows == 0) c->indptr[0] = 0;
}

static void csr_push(csr_t *c, int32_t col, float v) {
  if (c->nnz == c->cap_nnz) {
    c->cap_nnz = c->cap_nnz ? c->cap_nnz * 2 : 65536;
    c->cols = ps_xrealloc(c->cols, (size_t)c->cap_nnz * sizeof *c->cols);
    c->vals = ps_xrealloc(c->vals, (size_t)c->cap_nnz * sizeof *c->vals);
  }
  c->cols[c->nnz] = col;
  c->vals[c->nnz++] = v;
}

static void csr_row_end(csr_t *c) { c->indptr[++c->n_rows] = c->nnz; }

static void csr_free(csr_t *c) {
  free(c->indptr);
  free(c->cols);
  free(c->vals);
  memset(c, 0, sizeof *c);
}

typedef struct acts {
  const char *kind;        // "sae" | "neurons"
  csr_t csr;
  int64_t n_features;
  enrich_csc_buf_t csc;
  enrich_results_t res;
  enrich_summary_t sum;
} acts_t;

// Read the embeddings; encode each chunk with the SAE and/or take ReLU of the raw dims.
static int read_encode(const char *emb_path, const char *ids_path, sae_t *sae, ps_pool_t *pool, int64_t chunk,
                       acts_t *fa, acts_t *na, char ***ids_out, int64_t *n_out, double *enc_s, ps_err_t *err) {
  emb_source_t *src = NULL;
  sae_enc_t *enc = NULL;
  sae_codes_t codes;
  memset(&codes, 0, sizeof codes);
  float *buf = NULL;
  char **ids = NULL;
  int64_t n = 0, cap = 0, nb = 0, d = -1;
  int rc = 0, g;
  emb_source_opts_t eo = emb_source_opts_protein(emb_path, ids_path);
  if ((rc = emb_source_open(&src, &eo, err))) return rc;
  if (sae && (rc = sae_enc_new(&enc, sae, pool, chunk, err))) goto out;
  emb_record_t rec;
  double t_enc = 0;
  for (;;) {
    g = emb_source_next(src, &rec, err);
    if (g < 0) {
      rc = g;
      goto out;
    }
    if (g == 1) {
      if (d < 0) {
        d = rec.dim;
        if (sae && d != sae->cfg.d_in) {
          rc = ps_err_set(err, PS_EDIM, "%s: record 0 (%s) has %lld dims, the SAE takes %lld", emb_path, rec.id,
                          (long long)d, (long long)sae->cfg.d_in);
          goto out;
        }
        buf = ps_xmalloc((size_t)(chunk * d) * sizeof *buf);
        if (na) na->n_features = d;
      } else if (rec.dim != d) {
        rc = ps_err_set(err, PS_EDIM, "%s: record %llu (%s) has %u dims, the first had %lld", emb_path,
                        (unsigned long long)rec.index, rec.id, rec.dim, (long long)d);
        goto out;
      }
      if (n == cap) {
        cap = cap ? cap * 2 : 4096;
        ids = ps_xrealloc(ids, (size_t)cap * sizeof *ids);
      }
      ids[n++] = ps_xstrdup(rec.id);
      memcpy(buf + nb * d, rec.rows, (size_t)d * sizeof *buf);
      nb++;
    }
    if ((g == 0 && nb > 0) || nb == chunk) {
      double t0 = ps_mono_s();
      if (na)
        for (int64_t r = 0; r < nb; r++) {
          csr_row_begin(&na->csr);
          for (int64_t j = 0; j < d; j++)
            if (buf[r * d + j] > 0) csr_push(&na->csr, (int32_t)j, buf[r * d + j]);
          csr_row_end(&na->csr);
        }
      if (sae) {
        if ((rc = sae_enc_run(enc, buf, nb, &codes, err))) {
          ps_err_prefix(err, "%s: rows %lld..%lld: ", emb_path, (long long)(n - nb), (long long)(n - 1));
          goto out;
        }
        for (int64_t r = 0; r < nb; r++) {
          csr_row_begin(&fa->csr);
          for (int64_t j = codes.indptr[r]; j < codes.indptr[r + 1]; j++) csr_push(&fa->csr, codes.indices[j], codes.values[j]);
          csr_row_end(&fa->csr);
        }
      }
      t_enc += ps_mono_s() - t0;
      nb = 0;
    }
    if (g == 0) break;
  }
  if (n == 0) rc = ps_err_set(err, PS_ETRUNC, "%s: no embeddings", emb_path);
  *enc_s = t_enc;
out:
  *ids_out = ids;
  *n_out = n;
  free(buf);
  sae_codes_free(&codes);
  sae_enc_free(&enc);
  emb_source_destroy(&src);
  return rc;
}

// Planted-term check against protsae synth's truth (terms.tsv, directions.npy).
static int truth_check(const char *dir, const sae_t *s, const enrich_engine_t *e, const enrich_results_t *r,
                       ps_err_t *err) {
  const go_ontology_t *o = enrich_ontology(e);
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/truth/terms.tsv", dir);
  FILE *f = fopen(path, "r");
  if (!f) return ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  int32_t *term = NULL;
  int64_t nt = 0, cap = 0, lineno = 0;
  char line[4096];
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (lineno == 1 && !strncmp(line, "feature_index", 13)) continue;
    long long fi;
    char gid[64];
    if (sscanf(line, "%lld\t%63s", &fi, gid) != 2 || fi != nt) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %lld: expected '<feature_index %lld>\\t<GO id>...'", path,
                      (long long)lineno, (long long)nt);
      break;
    }
    if (nt == cap) {
      cap = cap ? cap * 2 : 1024;
      term = ps_xrealloc(term, (size_t)cap * sizeof *term);
    }
    term[nt++] = go_lookup(o, gid);
  }
  fclose(f);
  if (rc) {
    free(term);
    return rc;
  }
  // directions
  snprintf(path, sizeof path, "%s/truth/directions.npy", dir);
  emb_source_t *src = NULL;
  emb_source_opts_t eo = emb_source_opts_protein(path, NULL);
  int64_t d = s->cfg.d_out, m = s->cfg.d_sae, nd = 0;
  float *D = ps_xmalloc((size_t)(nt ? nt : 1) * (size_t)d * sizeof *D);
  if ((rc = emb_source_open(&src, &eo, err))) goto out;
  emb_record_t rec;
  int g;
  while ((g = emb_source_next(src, &rec, err)) == 1) {
    if (rec.dim != d || nd >= nt) {
      rc = ps_err_set(err, PS_EDIM, "%s: record %llu: %u dims (SAE decodes to %lld) or more rows than terms.tsv (%lld)",
                      path, (unsigned long long)rec.index, rec.dim, (long long)d, (long long)nt);
      goto out;
    }
    memcpy(D + nd * d, rec.rows, (size_t)d * sizeof *D);
    nd++;
  }
  if (g < 0) {
    rc = g;
    goto out;
  }
  if (nd != nt) {
    rc = ps_err_set(err, PS_EMISMATCH, "%s: %lld directions, terms.tsv has %lld", path, (long long)nd, (long long)nt);
    goto out;
  }
  float *W = ps_xmalloc((size_t)(m * d) * sizeof *W);
  memcpy(W, s->W_dec, (size_t)(m * d) * sizeof *W);
  for (int k = 0; k < 2; k++) {
    float *a = k ? W : D;
    int64_t rows = k ? m : nd;
    for (int64_t i = 0; i < rows; i++) {
      double q = 0;
      for (int64_t j = 0; j < d; j++) q += (double)a[i * d + j] * a[i * d + j];
      float inv = q > 0 ? (float)(1 / sqrt(q)) : 0;
      for (int64_t j = 0; j < d; j++) a[i * d + j] *= inv;
    }
  }
  // best direction of each decoder row
  int64_t blk = 256;
  float *sim = ps_xmalloc((size_t)(blk * nd) * sizeof *sim);
  int64_t rec_feat = 0, found = 0, top1 = 0, unknown = 0, dir_rec = 0, dir_found = 0;
  uint8_t *drec = ps_xcalloc((size_t)nd, 1), *dfound = ps_xcalloc((size_t)nd, 1);
  for (int64_t i0 = 0; i0 < m; i0 += blk) {
    int64_t nb = m - i0 < blk ? m - i0 : blk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nd, (int)d, 1.0f, W + i0 * d, (int)d, D, (int)d,
                0.0f, sim, (int)nd);
    for (int64_t i = 0; i < nb; i++) {
      int64_t bt = 0;
      for (int64_t t = 1; t < nd; t++)
        if (sim[i * nd + t] > sim[i * nd + bt]) bt = t;
      if (sim[i * nd + bt] < 0.9f) continue;
      rec_feat++;
      drec[bt] = 1;
      if (term[bt] < 0) {
        unknown++;
        continue;
      }
      uint32_t nh;
      const enrich_hit_t *h = enrich_feature_hits(r, i0 + i, &nh);
      for (uint32_t j = 0; j < nh; j++)
        if (h[j].term == term[bt]) {
          found++;
          dfound[bt] = 1;
          top1 += j == 0;
          break;
        }
    }
  }
  for (int64_t t = 0; t < nd; t++) {
    dir_rec += drec[t];
    dir_found += dfound[t];
  }
  printf("planted_directions: %lld\n", (long long)nd);
  printf("planted_features_recovered_cos09: %lld\n", (long long)rec_feat);
  printf("planted_term_significant: %lld\n", (long long)found);
  printf("planted_term_frac: %.4f\n", rec_feat ? (double)found / (double)rec_feat : 0.0);
  printf("planted_term_top1_frac: %.4f\n", rec_feat ? (double)top1 / (double)rec_feat : 0.0);
  printf("planted_directions_recovered: %lld\nplanted_directions_term_found: %lld\n", (long long)dir_rec,
         (long long)dir_found);
  if (unknown) printf("planted_terms_not_in_ontology: %lld\n", (long long)unknown);
  free(sim);
  free(drec);
  free(dfound);
  free(W);
out:
  emb_source_destroy(&src);
  free(D);
  free(term);
  return rc;
}

int cli_enrich(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae enrich", argc, argv);
  if (crc >= 0) return crc;
  int neurons = 0;
  ps_config_bool(cfg, "neurons", &neurons, NULL);
  const char *sae_dir = ps_config_str(cfg, "sae");
  if (!ps_config_str(cfg, "emb") || (!sae_dir && !neurons))
    return ps_config_cli_bad(&cfg, table, "protsae enrich", "needs --emb and --sae DIR and/or --neurons 1");
  if (ps_config_str(cfg, "truth") && !sae_dir) {
    fprintf(stderr, "protsae enrich: --truth needs --sae (the check matches decoder rows to planted directions)\n");
    ps_config_destroy(&cfg);
    return 2;
  }
  ps_config_print(cfg);
  int rc = 1;
  sae_t *sae = NULL;
  ps_pool_t *pool = NULL;
  go_ontology_t *onto = NULL;
  go_annotations_t *annot = NULL;
  enrich_engine_t *eng = NULL;
  char **ids = NULL;
  int64_t n_ids = 0, *annot_of = NULL;
  char *obo = NULL, *ann = NULL, *ids_auto = NULL;
  acts_t A[2];
  memset(A, 0, sizeof A);
  A[0].kind = "sae";
  A[1].kind = "neurons";
  enrich_opts_t eo;
  enrich_opts_default(&eo);
  int64_t threads = 2, chunk = 4096, min_size = 5, max_hits = 0, seed = 1;
  const ps_config_bind_t opts[] = {PS_CFG_I64("threads", &threads),    PS_CFG_I64("chunk-rows", &chunk),
                                   PS_CFG_I64("min-size", &min_size),  PS_CFG_I64("max-hits", &max_hits),
                                   PS_CFG_I64("seed", &seed),          PS_CFG_F64("act-frac", &eo.act_frac),
                                   PS_CFG_F64("alpha", &eo.alpha),     {0}};
  if (ps_config_read(cfg, opts, &err) || enrich_f1_parse(ps_config_str(cfg, "f1-thresholds"), &eo, &err)) goto out;
  if (enrich_alt_parse(ps_config_str(cfg, "alternative"), &eo.alternative) || eo.alternative == ENRICH_LESS) {
    ps_err_set(&err, PS_ECONFIG, "--alternative '%s': greater | two-sided", ps_config_str(cfg, "alternative"));
    goto out;
  }
  if (enrich_corr_parse(ps_config_str(cfg, "correction"), &eo.correction)) {
    ps_err_set(&err, PS_ECONFIG, "--correction '%s': bonferroni | fdr", ps_config_str(cfg, "correction"));
    goto out;
  }
  go_load_opts_t lo = {GO_REL_IS_A | GO_REL_PART_OF};
  if (enrich_opts_config(cfg, &eo, &lo.rels, &err)) goto out;
  if (min_size < 1 || max_hits < 0 || chunk < 1 || threads < 1 || threads > 256) {
    ps_err_set(&err, PS_ECONFIG, "--min-size, --chunk-rows, --threads must be >= 1 (threads <= 256), --max-hits >= 0");
    goto out;
  }
  eo.min_size = (uint32_t)min_size;
  eo.max_hits = (uint32_t)max_hits;
  // inputs
  char dbuf[PATH_MAX];
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = ps_godata_default_dir(dbuf, sizeof dbuf);
  ps_godata_t gd;
  int have_gd = data && ps_godata_find(data, 0, &gd, NULL) == 0;
  if (ps_config_str(cfg, "obo")) obo = ps_xstrdup(ps_config_str(cfg, "obo"));
  else if (have_gd && gd.obo[0]) obo = ps_xstrdup(gd.obo);
  if (ps_config_str(cfg, "annotations")) ann = ps_xstrdup(ps_config_str(cfg, "annotations"));
  else if (have_gd && gd.annotations[0] && !gd.annotations_gaf) ann = ps_xstrdup(gd.annotations);
  if (!obo || !ann) {
    ps_err_set(&err, PS_ENOTFOUND, "%s: no %s (give --data DIR, or --obo and --annotations)", data ? data : "(no data dir)",
               !obo ? "GO ontology (go.obo[.gz], go-*.obo[.gz])" : "go_annotations.tsv[.gz]");
    goto out;
  }
  const char *ids_path = ps_config_str(cfg, "ids");
  if (!ids_path) {
    const char *emb = ps_config_str(cfg, "emb");
    const char *sl = strrchr(emb, '/');
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%.*s%sproteins.ids", sl ? (int)(sl - emb) : 0, emb, sl ? "/" : "");
    if (access(buf, R_OK) == 0) ids_path = ids_auto = ps_xstrdup(buf);
  }
  double t0 = ps_mono_s();
  if (go_ontology_load(&onto, obo, &lo, &err)) goto out;
  annot = go_annotations_new();
  go_annot_report_t rep;
  const char *fmt = ps_config_str(cfg, "annot-format");
  if (!fmt) fmt = strstr(ann, ".gaf") ? "gaf" : "tsv";
  int lr = !strcmp(fmt, "tsv")       ? go_annotations_load_tsv(annot, onto, ann, NULL, &rep, &err)
           : !strcmp(fmt, "gaf")     ? go_annotations_load_gaf(annot, onto, ann, NULL, &rep, &err)
           : !strcmp(fmt, "uniprot") ? go_annotations_load_uniprot(annot, onto, ann, NULL, &rep, &err)
                                     : ps_err_set(&err, PS_ECONFIG, "--annot-format '%s': tsv | gaf | uniprot", fmt);
  if (lr) goto out;
  go_annotations_propagate(annot, onto);
  PS_INFO("annotations loaded file=%s lines=%llu used=%llu unknown_ids=%llu obsolete_mapped=%llu obsolete_skipped=%llu "
          "proteins=%zu seconds=%.2f",
          ann, (unsigned long long)rep.lines, (unsigned long long)rep.used, (unsigned long long)rep.unknown_ids,
          (unsigned long long)rep.obsolete_mapped, (unsigned long long)rep.obsolete_skipped, annot->n_proteins,
          ps_mono_s() - t0);
  pool = ps_pool_new((int)threads);
  if (!pool) {
    ps_err_set(&err, -errno, "thread pool of %lld: %s", (long long)threads, strerror(errno));
    goto out;
  }
  if (sae_dir && sae_load(&sae, sae_dir, &err)) goto out;
  double enc_s = 0;
  if (read_encode(ps_config_str(cfg, "emb"), ids_path, sae, pool, chunk, sae ? &A[0] : NULL, neurons ? &A[1] : NULL,
                  &ids, &n_ids, &enc_s, &err))
    goto out;
  if (sae) A[0].n_features = sae->cfg.d_sae;
  annot_of = ps_xmalloc((size_t)n_ids * sizeof *annot_of);
  int64_t n_annot = 0;
  for (int64_t p = 0; p < n_ids; p++) {
    annot_of[p] = go_annotations_find(annot, ids[p]);
    n_annot += annot_of[p] >= 0;
  }
  if (enrich_engine_new(&eng, onto, annot, annot_of, n_ids, &eo, &err)) goto out;
  printf("proteins: %lld\nproteins_annotated: %lld\npopulation: %lld\nterms_tested: %u\nencode_seconds: %.3f\n",
         (long long)n_ids, (long long)n_annot, (long long)enrich_pop_size(eng), enrich_n_tested(eng), enc_s);
  printf("enrich_population: %s\nenrich_relations: %s\nenrich_correction: %s\nenrich_correction_scope: %s\n"
         "enrich_depth: %s\n", enrich_pop_name(eo.population), enrich_rels_name(lo.rels), enrich_corr_name(eo.correction),
         enrich_scope_name(eo.scope), enrich_depth_name(eo.depth));
  const char *outdir = ps_config_str(cfg, "out");
  if (outdir && mkdir(outdir, 0755) != 0 && errno != EEXIST) {
    ps_err_set(&err, -errno, "%s: %s", outdir, strerror(errno));
    goto out;
  }
  for (int k = 0; k < 2; k++) {
    acts_t *a = &A[k];
    if ((k == 0 && !sae) || (k == 1 && !neurons)) continue;
    if (enrich_csc_from_csr(&a->csc, a->csr.n_rows, a->n_features, a->csr.indptr, a->csr.cols, a->csr.vals, &err))
      goto out;
    csr_free(&a->csr);
    if (enrich_run(eng, &a->csc.csc, pool, &a->res, &err)) goto out;
    enrich_summarize(eng, &a->res, (uint64_t)seed, 10, &a->sum);
    char pre[32];
    snprintf(pre, sizeof pre, "%s_", a->kind);
    printf("%senrich_seconds: %.3f\n%sterms_with_hits: %llu\n%sexact_pvalues: %llu\n", pre, a->res.seconds, pre,
           (unsigned long long)a->res.n_touched, pre, (unsigned long long)a->res.n_exact);
    enrich_summary_print(&a->sum, pre, stdout);
    if (outdir) {
      char p1[PATH_MAX], p2[PATH_MAX];
      snprintf(p1, sizeof p1, "%s/enrich_%s.tsv", outdir, a->kind);
      snprintf(p2, sizeof p2, "%s/features_%s.tsv", outdir, a->kind);
      if (enrich_write_tsv(eng, &a->res, p1, &err) || enrich_write_features_tsv(eng, &a->res, p2, &err)) goto out;
      printf("%stsv: %s\n%sfeatures_tsv: %s\n", pre, p1, pre, p2);
    }
  }
  if (sae && neurons) {
    printf("\n");
    enrich_summary_print_pair(&A[0].sum, "features", &A[1].sum, "neurons", stdout);
    printf("\n");
  }
  if (ps_config_str(cfg, "feature")) {
    int64_t fid = -1, top = 10;
    if (ps_config_i64(cfg, "feature", &fid, &err) || ps_config_i64(cfg, "top", &top, &err)) goto out;
    acts_t *a = sae ? &A[0] : &A[1];
    if (fid < 0 || fid >= a->res.n_features) {
      ps_err_set(&err, PS_ECONFIG, "--feature %lld: not in [0, %lld)", (long long)fid, (long long)a->res.n_features);
      goto out;
    }
    size_t cap = 1 << 16;
    char *buf = ps_xmalloc(cap);
    size_t w = enrich_feature_describe(eng, &a->res, fid, (size_t)(top > 0 ? top : 10), buf, cap);
    printf("feature %lld (%s): active on %lld proteins (%lld annotated), %u significant terms; top %zu:\n%s",
           (long long)fid, a->kind, (long long)a->res.features[fid].n_active, (long long)a->res.features[fid].n_study,
           a->res.features[fid].n_hits, w, buf);
    free(buf);
  }
  if (ps_config_str(cfg, "truth")) {
    if (truth_check(ps_config_str(cfg, "truth"), sae, eng, &A[0].res, &err)) goto out;
  }
  rc = 0;
out:
  if (rc) fprintf(stderr, "protsae enrich: %s\n", err.msg);
  for (int k = 0; k < 2; k++) {
    csr_free(&A[k].csr);
    enrich_csc_buf_free(&A[k].csc);
    enrich_results_free(&A[k].res);
  }
  for (int64_t p = 0; p < n_ids; p++) free(ids[p]);
  free(ids);
  free(annot_of);
  enrich_engine_free(&eng);
  go_annotations_destroy(&annot);
  go_ontology_destroy(&onto);
  sae_free(&sae);
  ps_pool_destroy(&pool);
  free(obo);
  free(ann);
  free(ids_auto);
  ps_config_destroy(&cfg);
  return rc;
}
