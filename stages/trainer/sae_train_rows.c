// sae_train_rows.c — the sparse path of a training step, shared by every architecture (see
// sae_train_impl.h for the map). For a chunk of rows:
//   forward   xin = norm(x) - b_dec, yn = norm(y)                      tr_prepare   (row-parallel)
//             pre = xin W_enc + b_enc (one sgemm, the only dense product)  tr_preact
//             f = the architecture's selection of pre; y^ = f W_dec + b_dec   tr_rows (row-parallel)
//   backward  e_b = 2/B (y^_b - y_b), d pre_bj = e_b . W_dec_j (+ the architecture's penalty)  tr_rows
//             d W_dec_j, d W_enc_j, d b_enc_j over a CSC copy of the batch's active entries
//             (tr_collect after each chunk, tr_flush at the end: tr_cols)
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

static void dec_norms_job(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  int64_t o = t->s->cfg.d_out, jb, je;
  ps_pool_range(t->s->cfg.d_sae, tid, nt, &jb, &je);
  for (int64_t j = jb; j < je; j++) {
    const float *w = t->s->W_dec + j * o;
    t->dec_norm[j] = sqrtf(dotf(w, w, o));
  }
}

void tr_update_dec_norms(sae_trainer_t *t) { ps_pool_run(t->pool, dec_norms_job, t); }

// The batch's targets after tr_prepare: yn_b, or the input rows themselves (an SAE without
// per-sample normalisation: no copy).
const float *tr_target(const sae_trainer_t *t, const float *x) {
  return t->y || t->s->cfg.normalize_per_sample ? t->yn_b : x;
}

// ---- forward: inputs ----------------------------------------------------------------------------
void tr_prepare(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  const sae_cfg_t *c = &t->s->cfg;
  int64_t b, e, d = c->d_in, o = c->d_out;
  ps_pool_range(t->rows, tid, nt, &b, &e);
  for (int64_t r = b; r < e; r++) {
    float *xr = t->xin + r * d, *yr = t->yn_b + r * o;
    memcpy(xr, t->x + r * d, (size_t)d * sizeof(float));
    if (c->normalize_per_sample) sae_normalize_row(xr, d, NULL, NULL);
    if (t->y) {
      memcpy(yr, t->y + r * o, (size_t)o * sizeof(float));
      if (c->normalize_per_sample) sae_normalize_row(yr, o, NULL, NULL);
    } else if (c->normalize_per_sample) {  // else the target is x itself (tr_target)
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

// Row r's decoder rows one after the other: fetch the row four entries ahead (the gathers miss
// the cache; the arithmetic is short).
static inline void prefetch_row(const float *w, int64_t o) {
  for (int64_t i = 0; i < o; i += 16) __builtin_prefetch(w + i);
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
    for (int64_t q = 0; q < cnt && q < 4; q++) prefetch_row(s->W_dec + (int64_t)ix[q] * o, o);
    for (int64_t q = 0; q < cnt; q++) {
      if (q + 4 < cnt) prefetch_row(s->W_dec + (int64_t)ix[q + 4] * o, o);
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
    double se = 0, vp = p->var_part;
    double *restrict ys = p->ysum;
    for (int64_t i = 0; i < o; i++) {
      er[i] -= yr[i];
      se += (double)er[i] * er[i];
      ys[i] += yr[i];
      vp += (double)yr[i] * yr[i];
    }
    p->var_part = vp;
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
    double *restrict gbd = p->gbdec;
    for (int64_t i = 0; i < o; i++) gbd[i] += eb[i];  // every prefix holds b_dec
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
// The weight gradients wait until the batch's last sparse chunk (or a dense one): each latent's
// gradient rows are written once a batch, not once a chunk, and its sums run over the batch's
// rows in order whatever the chunk size.
void tr_collect(sae_trainer_t *t) {
  int64_t add = 0;
  for (int i = 0; i < t->nt; i++) add += t->parts[i].nnz + t->parts[i].annz;
  if (t->coo_n + add > t->coo_cap) {
    t->coo_cap = (t->coo_n + add) * 2;
    t->coo = ps_xrealloc(t->coo, (size_t)t->coo_cap * sizeof(centry_t));
    t->coo_j = ps_xrealloc(t->coo_j, (size_t)t->coo_cap * sizeof(int32_t));
  }
  centry_t *ce = t->coo + t->coo_n;
  int32_t *cj = t->coo_j + t->coo_n;
  for (int i = 0; i < t->nt; i++) {
    tpart_t *p = &t->parts[i];
    int64_t q = 0, aq = 0;
    for (int64_t r = p->rb; r < p->re; r++) {
      int32_t row = (int32_t)(t->r0 + r);
      for (int64_t e = 0; e < p->cnt[r - p->rb]; e++, q++) {
        *cj++ = p->idx[q];
        *ce++ = (centry_t){row, 0, p->f[q], p->dpre[q]};
        t->fired[p->idx[q]] = 1;
      }
      for (int64_t e = 0; e < p->acnt[r - p->rb]; e++, aq++) {
        *cj++ = p->aidx[aq];
        *ce++ = (centry_t){row, 1, p->af[aq], p->adpre[aq]};
      }
    }
  }
  t->coo_n += add;
  t->pend_n++;
}

// The pending entries by latent (a stable counting sort: rows stay ascending within a latent).
static void build_csc(sae_trainer_t *t) {
  int64_t n = t->s->cfg.d_sae;
  memset(t->ccount, 0, (size_t)(n + 1) * sizeof(int64_t));
  for (int64_t q = 0; q < t->coo_n; q++) t->ccount[t->coo_j[q] + 1]++;
  for (int64_t j = 0; j < n; j++) t->ccount[j + 1] += t->ccount[j];
  if (t->coo_n > t->ccap) {
    t->ccap = t->coo_n * 2;
    t->cent = ps_xrealloc(t->cent, (size_t)t->ccap * sizeof(centry_t));
  }
  int64_t *pos = ps_xmalloc((size_t)n * sizeof(int64_t));
  memcpy(pos, t->ccount, (size_t)n * sizeof(int64_t));
  for (int64_t q = 0; q < t->coo_n; q++) t->cent[pos[t->coo_j[q]]++] = t->coo[q];
  free(pos);
}

// Entry q's two rows (its error and its input): fetched a few entries ahead, they miss L2.
static inline void prefetch_entry(const sae_trainer_t *t, const centry_t *ce, const float *ej) {
  int64_t o = t->s->cfg.d_out, d = t->s->cfg.d_in;
  const float *ev = ce->kind ? t->gabuf_b + (int64_t)ce->row * o : ej + (int64_t)ce->row * t->np * o;
  const float *xv = t->xin_b + (int64_t)ce->row * d;
  for (int64_t i = 0; i < o; i += 16) __builtin_prefetch(ev + i);
  for (int64_t i = 0; i < d; i += 16) __builtin_prefetch(xv + i);
}

// Pool job: latent j's d W_dec_j, d W_enc_j, d b_enc_j from its pending entries (rows first
// zeroed when the buffer does not hold this batch's values yet).
static void tr_cols(void *ctx, int tid, int nt) {
  sae_trainer_t *t = ctx;
  sae_t *s = t->s;
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out, jb, je;
  ps_pool_range(n, tid, nt, &jb, &je);
  float *gWe = t->grad, *gbe = t->grad + n * d, *gWd = gbe + n;
  double *gbenc = t->gbenc + (int64_t)tid * d;
  memset(gbenc, 0, (size_t)d * sizeof(double));
  const int64_t a1 = t->ccount[je];
  for (int64_t j = jb; j < je; j++) {
    int64_t a = t->ccount[j], b = t->ccount[j + 1];
    float *gd = gWd + j * o, *ge = gWe + j * d;
    if (!t->grad_ready) {
      memset(gd, 0, (size_t)o * sizeof(float));
      memset(ge, 0, (size_t)d * sizeof(float));
      gbe[j] = 0.0f;
    }
    if (a == b) continue;
    const float *ej = t->ebuf_b + (t->np > 1 ? t->mgroup[j] : 0) * o;
    float gb = 0.0f, fsum = 0.0f;
    for (int64_t q = a; q < b; q++) {
      const centry_t *ce = &t->cent[q];
      if (q + 4 < a1) {  // the entry four ahead (of this latent or the next ones)
        int64_t q4 = q + 4;
        const centry_t *c4 = &t->cent[q4];
        int64_t j4 = j;
        while (j4 + 1 < je && t->ccount[j4 + 1] <= q4) j4++;
        prefetch_entry(t, c4, t->ebuf_b + (t->np > 1 ? t->mgroup[j4] : 0) * o);
      }
      const float *ev = ce->kind ? t->gabuf_b + (int64_t)ce->row * o : ej + (int64_t)ce->row * t->np * o;
      axpyf(ce->f, ev, gd, o);
      axpyf(ce->dpre, t->xin_b + (int64_t)ce->row * d, ge, d);
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

void tr_flush(sae_trainer_t *t, double *gbdec) {
  if (t->pend_n == 0) return;
  const sae_cfg_t *c = &t->s->cfg;
  build_csc(t);
  ps_pool_run(t->pool, tr_cols, t);
  t->grad_ready = 1;
  if (c->apply_b_dec_to_input)
    for (int i = 0; i < t->nt; i++)
      for (int64_t k = 0; k < c->d_in; k++) gbdec[k] -= t->gbenc[(int64_t)i * c->d_in + k];
  t->pend_n = 0;
  t->coo_n = 0;
}
