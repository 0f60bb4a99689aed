// sae_train_rows.c — the sparse path of a training step, shared by every architecture (see
// sae_train_impl.h for the map). For a chunk of rows:
//   forward   xin = norm(x) - b_dec, yn = norm(y)                      tr_prepare   (row-parallel)
//             pre = xin W_enc + b_enc (one sgemm, the only dense product)  tr_preact
//             f = the architecture's selection of pre; y^ = f W_dec + b_dec   tr_rows (row-parallel)
//   backward  e_b = 2/B (y^_b - y_b), d pre_bj = e_b . W_dec_j (+ the architecture's penalty)  tr_rows
//             d W_dec_j, d W_enc_j, d b_enc_j over a CSC copy of the active entries   tr_cols
//             (latent-parallel: each latent's gradient is summed by one thread in row order, so
//             the result does not depend on scheduling).
// Matryoshka: the error of every nested prefix; a latent's d pre uses the sum of the errors of
// the prefixes that contain it.
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "sae_train_impl.h"

void tr_part_grow(int32_t **idx, float **f, float **dp, int64_t *cap, int64_t need) {
  if (need <= *cap) return;
  int64_t c = *cap ? *cap : 4096;
  while (c < need) c *= 2;
  *idx = ps_xrealloc(*idx, (size_t)c * sizeof(int32_t));
  *f = ps_xrealloc(*f, (size_t)c * sizeof(float));
  *dp = ps_xrealloc(*dp, (size_t)c * sizeof(float));
  *cap = c;
}

void tr_update_dec_norms(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae, o = t->s->cfg.d_out;
  for (int64_t j = 0; j < n; j++) {
    const float *w = t->s->W_dec + j * o;
    t->dec_norm[j] = sqrtf(dotf(w, w, o));
  }
}

// ---- forward: inputs ----------------------------------------------------------------------------
void tr_prepare(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  const sae_cfg_t *c = &t->s->cfg;
  int64_t b, e, d = c->d_in, o = c->d_out;
  ps_pool_range(t->rows, tid, nt, &b, &e);
  for (int64_t r = b; r < e; r++) {
    float *xr = t->xin + r * d, *yr = t->yn + r * o;
    memcpy(xr, t->x + r * d, (size_t)d * sizeof(float));
    if (c->normalize_per_sample) sae_normalize_row(xr, d, NULL, NULL);
    if (t->y) {
      memcpy(yr, t->y + r * o, (size_t)o * sizeof(float));
      if (c->normalize_per_sample) sae_normalize_row(yr, o, NULL, NULL);
    } else {
      memcpy(yr, xr, (size_t)o * sizeof(float));
    }
    if (c->apply_b_dec_to_input)
      for (int64_t i = 0; i < d; i++) xr[i] -= t->s->b_dec[i];
  }
}

// pre (n x d_sae) = xin (n x d_in) W_enc + b_enc, via cblas_sgemm.
void tr_preact(const sae_t *s, const float *xin, int64_t n, float *pre) {
  int64_t d = s->cfg.d_in, m = s->cfg.d_sae;
  for (int64_t r = 0; r < n; r++) memcpy(pre + r * m, s->b_enc, (size_t)m * sizeof(float));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)m, (blasint)d, 1.0f, xin, (blasint)d,
              s->W_encT, (blasint)d, 1.0f, pre, (blasint)m);
}

// ---- forward and backward of the rows -----------------------------------------------------------
// The architecture's selection of row r's active latents into p (indices ascending).
static int64_t select_row(const sae_trainer_t *t, tpart_t *p, const float *pre, int64_t r) {
  const sae_cfg_t *c = &t->s->cfg;
  if (c->arch == SAE_TOPK) return topk_select_row(p, pre, c->d_sae, c->k);
  if (c->arch == SAE_JUMPRELU) return jumprelu_select_row(t, p, pre, r);
  return relu_select_row(p, pre, c->d_sae, c->arch == SAE_BATCHTOPK ? t->btk_thr : 0.0f);
}

void tr_rows(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t n = c->d_sae, o = c->d_out;
  tpart_t *p = &t->parts[tid];
  ps_pool_range(t->rows, tid, nt, &p->rb, &p->re);
  p->nnz = p->annz = p->wnnz = 0;
  p->mse = p->l1 = p->aux = p->var_part = p->mse_nested = 0;
  const int NP = t->np;
  p->hash = 0;
  memset(p->gbdec, 0, (size_t)o * sizeof(double));
  memset(p->ysum, 0, (size_t)o * sizeof(double));
  const float inv2B = (float)(2.0 / (double)t->B);
  for (int64_t r = p->rb; r < p->re; r++) {
    const float *pre = t->pre + r * n;
    const float *yr = t->yn + r * o;
    float *eb = t->ebuf + r * NP * o, *er = eb + (NP - 1) * o;  // er: the full model's error
    int64_t cnt = select_row(t, p, pre, r);
    int32_t *ix = p->idx + p->nnz;
    float *fv = p->f + p->nnz, *dp = p->dpre + p->nnz;
    // decode, error (matryoshka: the partial sums at each prefix boundary; indices ascend)
    memcpy(er, s->b_dec, (size_t)o * sizeof(float));
    int g = 0;
    for (int64_t q = 0; q < cnt; q++) {
      for (; NP > 1 && g < NP - 1 && ix[q] >= t->o.matryoshka[g]; g++) memcpy(eb + g * o, er, (size_t)o * sizeof(float));
      axpyf(fv[q], s->W_dec + (int64_t)ix[q] * o, er, o);
    }
    for (; g < NP - 1; g++) memcpy(eb + g * o, er, (size_t)o * sizeof(float));
    for (int pp = 0; pp < NP - 1; pp++) {
      float *ep = eb + pp * o;
      double sp = 0;
      for (int64_t i = 0; i < o; i++) {
        ep[i] -= yr[i];
        sp += (double)ep[i] * ep[i];
      }
      p->mse_nested += sp;
    }
    double se = 0;
    for (int64_t i = 0; i < o; i++) {
      er[i] -= yr[i];
      se += (double)er[i] * er[i];
      p->ysum[i] += yr[i];
      p->var_part += (double)yr[i] * yr[i];
    }
    p->mse += se;
    p->mse_nested += se;
    // aux (before er is scaled): a_b - (y - y^) = a_b + err
    int64_t acnt = t->kaux > 0 ? auxk_row(t, p, pre, er, r) : 0;
    // e_b = 2/B err
    if (NP == 1) {
      for (int64_t i = 0; i < o; i++) er[i] *= inv2B;
    } else {  // d loss / d y^(p) = 2/(B P) e^(p); slot p <- sum over the prefixes >= p
      const float sc = (float)(2.0 / ((double)t->B * NP));
      for (int64_t i = 0; i < o; i++) er[i] *= sc;
      for (int pp = NP - 2; pp >= 0; pp--)
        for (int64_t i = 0; i < o; i++) eb[pp * o + i] = eb[pp * o + i] * sc + eb[(pp + 1) * o + i];
    }
    for (int64_t i = 0; i < o; i++) p->gbdec[i] += eb[i];  // every prefix holds b_dec
    for (int64_t q = 0; q < cnt; q++)
      dp[q] = dotf(eb + (NP > 1 ? t->mgroup[ix[q]] : 0) * o, s->W_dec + (int64_t)ix[q] * o, o);
    if (c->arch == SAE_RELU) relu_l1_row(t, p, ix, fv, dp, cnt);
    if (c->arch == SAE_JUMPRELU) jumprelu_ste_row(t, p, er, cnt, r);
    for (int64_t q = 0; q < cnt; q++) p->hash += sel_mix((uint64_t)(t->r0 + r), (uint64_t)ix[q], 0);
    for (int64_t q = 0; q < acnt; q++) p->hash += sel_mix((uint64_t)(t->r0 + r), (uint64_t)p->aidx[p->annz + q], 1);
    p->cnt[r - p->rb] = cnt;
    p->acnt[r - p->rb] = acnt;
    p->nnz += cnt;
    p->annz += acnt;
  }
}

// ---- backward: the weights, by latent -----------------------------------------------------------
void tr_build_csc(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae, total = 0;
  memset(t->ccount, 0, (size_t)(n + 1) * sizeof(int64_t));
  for (int i = 0; i < t->nt; i++) {
    tpart_t *p = &t->parts[i];
    for (int64_t q = 0; q < p->nnz; q++) t->ccount[p->idx[q] + 1]++;
    for (int64_t q = 0; q < p->annz; q++) t->ccount[p->aidx[q] + 1]++;
    total += p->nnz + p->annz;
  }
  for (int64_t j = 0; j < n; j++) t->ccount[j + 1] += t->ccount[j];
  if (total > t->ccap) {
    t->ccap = total * 2;
    t->cent = ps_xrealloc(t->cent, (size_t)t->ccap * sizeof(centry_t));
  }
  int64_t *pos = ps_xmalloc((size_t)n * sizeof(int64_t));
  memcpy(pos, t->ccount, (size_t)n * sizeof(int64_t));
  for (int i = 0; i < t->nt; i++) {
    tpart_t *p = &t->parts[i];
    int64_t q = 0, aq = 0;
    for (int64_t r = p->rb; r < p->re; r++) {
      for (int64_t e = 0; e < p->cnt[r - p->rb]; e++, q++) {
        int32_t j = p->idx[q];
        t->cent[pos[j]++] = (centry_t){(int32_t)r, 0, p->f[q], p->dpre[q]};
        t->fired[j] = 1;
      }
      for (int64_t e = 0; e < p->acnt[r - p->rb]; e++, aq++) {
        int32_t j = p->aidx[aq];
        t->cent[pos[j]++] = (centry_t){(int32_t)r, 1, p->af[aq], p->adpre[aq]};
      }
    }
  }
  free(pos);
}

void tr_cols(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out, jb, je;
  ps_pool_range(n, tid, nt, &jb, &je);
  float *gWe = t->grad, *gbe = t->grad + n * d, *gWd = gbe + n;
  double *gbenc = t->parts[tid].gbenc;
  memset(gbenc, 0, (size_t)d * sizeof(double));
  for (int64_t j = jb; j < je; j++) {
    int64_t a = t->ccount[j], b = t->ccount[j + 1];
    if (a == b) continue;
    float *gd = gWd + j * o, *ge = gWe + j * d;
    float gb = 0.0f, fsum = 0.0f;
    for (int64_t q = a; q < b; q++) {
      const centry_t *ce = &t->cent[q];
      const float *ev = ce->kind ? t->gabuf + (int64_t)ce->row * o
                                 : t->ebuf + ((int64_t)ce->row * t->np + (t->np > 1 ? t->mgroup[j] : 0)) * o;
      axpyf(ce->f, ev, gd, o);
      axpyf(ce->dpre, t->xin + (int64_t)ce->row * d, ge, d);
      gb += ce->dpre;
      if (!ce->kind) fsum += ce->f;
    }
    gbe[j] += gb;
    if (c->apply_b_dec_to_input) {  // d b_dec through the encoder input: - sum_j (sum_b dpre_bj) W_enc_j
      const float *we = s->W_encT + j * d;
      for (int64_t i = 0; i < d; i++) gbenc[i] += (double)gb * we[i];
    }
    if (c->arch == SAE_RELU) relu_l1_col(t, j, fsum, gd);
  }
}
