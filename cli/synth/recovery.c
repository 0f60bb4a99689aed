// recovery.c — planted-direction recovery: how many of the known directions (protsae synth's
// truth/directions.npy, or any matrix of directions) some decoder row of a trained SAE recovers,
// per direction the best cosine over all decoder rows. `protsae recovery` (cli/dev) prints it,
// the demo reports it; and per decoder row the direction it recovers (recovery_match: the residue
// demo's residue_concept_found). Memory: the decoder (d_sae x d) + the directions (n x d) + one block of
// 256 x d_sae cosines.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "sae.h"
#include "synth.h"

static void normalize_rows(float *a, int64_t n, int64_t d) {
  for (int64_t i = 0; i < n; i++) {
    double s = 0;
    for (int64_t k = 0; k < d; k++) s += (double)a[i * d + k] * a[i * d + k];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int64_t k = 0; k < d; k++) a[i * d + k] *= inv;
  }
}

// The SAE's decoder rows and the directions of truth, both normalised to unit length: *W (m x d)
// and *dir (n x d), the caller's to free.
static int load_unit(const char *sae_dir, const char *truth, float **W_out, int64_t *m_out, float **dir_out,
                     int64_t *n_out, int64_t *d_out, ps_err_t *err) {
  sae_t *s = NULL;
  emb_source_t *src = NULL;
  float *dir = NULL, *W = NULL;
  int rc = 0;
  if ((rc = sae_load(&s, sae_dir, err)) < 0) goto out;
  emb_source_opts_t eo = emb_source_opts_protein(truth, NULL);
  if ((rc = emb_source_open(&src, &eo, err)) < 0) goto out;
  int64_t d = s->cfg.d_out, n = 0, cap = 0, m = s->cfg.d_sae;
  emb_record_t rec;
  int g;
  while ((g = emb_source_next(src, &rec, err)) == 1) {
    if (rec.dim != d) {
      rc = ps_err_set(err, PS_EDIM, "%s: record %llu has %u dims, the SAE decodes to %lld", eo.path,
                      (unsigned long long)rec.index, rec.dim, (long long)d);
      goto out;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      float *nd = realloc(dir, (size_t)(cap * d) * sizeof(float));
      if (!nd) {
        rc = ps_err_set(err, PS_ENOMEM, "%s: out of memory", eo.path);
        goto out;
      }
      dir = nd;
    }
    memcpy(dir + n * d, rec.rows, (size_t)d * sizeof(float));
    n++;
  }
  if (g < 0) {
    rc = g;
    goto out;
  }
  if (n == 0) {
    rc = ps_err_set(err, PS_ETRUNC, "%s: no directions", eo.path);
    goto out;
  }
  W = malloc((size_t)(m * d) * sizeof(float));
  if (!W) {
    rc = ps_err_set(err, PS_ENOMEM, "recovery: out of memory");
    goto out;
  }
  memcpy(W, s->W_dec, (size_t)(m * d) * sizeof(float));
  normalize_rows(W, m, d);
  normalize_rows(dir, n, d);
  *W_out = W, *dir_out = dir, *m_out = m, *n_out = n, *d_out = d;
  W = dir = NULL;
out:
  emb_source_destroy(&src);
  sae_free(&s);
  free(dir);
  free(W);
  return rc < 0 ? rc : 0;
}

int recovery_measure(const char *sae_dir, const char *truth, recovery_t *out, ps_err_t *err) {
  float *dir = NULL, *W = NULL, *sim = NULL;
  int64_t m = 0, n = 0, d = 0;
  memset(out, 0, sizeof *out);
  int rc = load_unit(sae_dir, truth, &W, &m, &dir, &n, &d, err);
  if (rc < 0) return rc;
  int64_t blk = 256, hit9 = 0, hit8 = 0;
  sim = malloc((size_t)(blk * m) * sizeof(float));
  if (!sim) {
    rc = ps_err_set(err, PS_ENOMEM, "recovery: out of memory");
    goto out;
  }
  double sum = 0;
  for (int64_t i0 = 0; i0 < n; i0 += blk) {
    int64_t nb = n - i0 < blk ? n - i0 : blk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)m, (int)d, 1.0f, dir + i0 * d, (int)d, W, (int)d,
                0.0f, sim, (int)m);
    for (int64_t i = 0; i < nb; i++) {
      float best = -1;
      for (int64_t j = 0; j < m; j++) best = sim[i * m + j] > best ? sim[i * m + j] : best;
      hit9 += best >= 0.9f;
      hit8 += best >= 0.8f;
      sum += best;
    }
  }
  out->n_directions = n;
  out->d_sae = m;
  out->planted_recovery_cos09 = (double)hit9 / (double)n;
  out->planted_recovery_cos08 = (double)hit8 / (double)n;
  out->mean_best_cos = sum / (double)n;
out:
  free(dir);
  free(W);
  free(sim);
  return rc < 0 ? rc : 0;
}

int recovery_match(const char *sae_dir, const char *truth, float min_cos, int32_t **dir_of, int64_t *d_sae,
                   ps_err_t *err) {
  float *dir = NULL, *W = NULL, *sim = NULL;
  int64_t m = 0, n = 0, d = 0;
  *dir_of = NULL;
  int rc = load_unit(sae_dir, truth, &W, &m, &dir, &n, &d, err);
  if (rc < 0) return rc;
  int32_t *best = ps_xmalloc((size_t)(m ? m : 1) * sizeof *best);
  float *bcos = ps_xmalloc((size_t)(m ? m : 1) * sizeof *bcos);
  int64_t blk = 256;
  sim = ps_xmalloc((size_t)(blk * n) * sizeof(float));
  for (int64_t j0 = 0; j0 < m; j0 += blk) {  // a block of decoder rows against every direction
    int64_t nb = m - j0 < blk ? m - j0 : blk;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)n, (int)d, 1.0f, W + j0 * d, (int)d, dir, (int)d,
                0.0f, sim, (int)n);
    for (int64_t j = 0; j < nb; j++) {
      best[j0 + j] = -1, bcos[j0 + j] = min_cos;
      for (int64_t i = 0; i < n; i++)
        if (sim[j * n + i] >= bcos[j0 + j]) bcos[j0 + j] = sim[j * n + i], best[j0 + j] = (int32_t)i;
    }
  }
  *dir_of = best;
  *d_sae = m;
  free(bcos);
  free(dir);
  free(W);
  free(sim);
  return 0;
}
