// esm2_forward.c — the ESM2 forward pass: a workspace (buffers, thread pool), the packed batch
// through embedding, the transformer blocks and the LM head, and the requested outputs. The
// projections are sgemms (or the bf16 kernel, esm2_gemm.h) over row blocks; attention runs per
// (sequence, head, query block); the softmax and GELU loops are in esm2_kern.c. See esm2.h.
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "esm2_attn.h"
#include "esm2_kern.h"
#include "esm2_priv.h"
#include "io.h"
#include "pool.h"

#define MAX_SLOTS 64
#define QB 64   // queries of an attention task

struct esm2_ws {
  int nthreads;
  ps_pool_t *pool;
  size_t cap_tok, cap_res, cap_seq, cap_tt, cap_rope, cap_logit_tok;
  float *h, *x, *qkv, *ctx, *ff;   // (N,D) (N,D) (N,3D) (N,D) (N,F)
  float *scores;                  // nthreads x (QB x Tmax + QB)
  float *rope_cos, *rope_sin;     // Tmax x d_head/2
  int *pos;                       // (N) position of each token in its sequence
  float *kt;                      // keys transposed for the AVX-512 attention: kt_off[s] + (head, d, Tp)
  size_t *kt_off, cap_kt;         // (B+1); Tp = T rounded up to 16
  int attn_kern;                  // this forward's attention runs the AVX-512 kernels
  int *tok_off, *res_off;         // (B+1)
  int *task_off;                  // (B+1) first attention task of each sequence
  float *bf_scratch;              // nthreads x bf_stride (bf16 activations)
  size_t bf_stride, cap_bf;
  esm2_prec_t precision;
  int use_bf16;                   // this forward's projections run in bf16
  double phase_s[ESM2_PHASE_N];
  int n_seqs, n_slots, has_logits, D, V;
  size_t out_cap_res[MAX_SLOTS], out_cap_mean[MAX_SLOTS];
  float *out_res[MAX_SLOTS], *out_mean[MAX_SLOTS], *logits;
  int want_res, want_mean;
};

esm2_ws_t *esm2_ws_new(int nthreads) {
  esm2_ws_t *ws = ps_xcalloc(1, sizeof *ws);
  ws->nthreads = nthreads < 1 ? 1 : nthreads;
  if (ws->nthreads > 1) {
    ws->pool = ps_pool_new(ws->nthreads);
    if (!ws->pool) ws->nthreads = 1;
  }
  openblas_set_num_threads(1);  // all parallelism is the pool's (see gemm_nt)
  return ws;
}

void esm2_ws_set_precision(esm2_ws_t *ws, esm2_prec_t precision) {
  ws->precision = precision == ESM2_PREC_BF16 ? ESM2_PREC_BF16 : ESM2_PREC_F32;
}

void esm2_ws_destroy(esm2_ws_t **wp) {
  if (!wp || !*wp) return;
  esm2_ws_t *ws = *wp;
  ps_pool_destroy(&ws->pool);
  free(ws->h);
  free(ws->x);
  free(ws->qkv);
  free(ws->ctx);
  free(ws->ff);
  free(ws->scores);
  free(ws->rope_cos);
  free(ws->rope_sin);
  free(ws->pos);
  free(ws->kt);
  free(ws->kt_off);
  free(ws->tok_off);
  free(ws->res_off);
  free(ws->task_off);
  free(ws->bf_scratch);
  for (int i = 0; i < MAX_SLOTS; i++) {
    free(ws->out_res[i]);
    free(ws->out_mean[i]);
  }
  free(ws->logits);
  free(ws);
  *wp = NULL;
}

const float *esm2_out_residue(const esm2_ws_t *ws, int slot, int b) {
  if (!ws->want_res || slot < 0 || slot >= ws->n_slots || b < 0 || b >= ws->n_seqs) return NULL;
  return ws->out_res[slot] + (size_t)ws->res_off[b] * ws->D;
}

const float *esm2_out_mean(const esm2_ws_t *ws, int slot, int b) {
  if (!ws->want_mean || slot < 0 || slot >= ws->n_slots || b < 0 || b >= ws->n_seqs) return NULL;
  return ws->out_mean[slot] + (size_t)b * ws->D;
}

const float *esm2_out_logits(const esm2_ws_t *ws, int b) {
  if (!ws->has_logits || b < 0 || b >= ws->n_seqs) return NULL;
  return ws->logits + (size_t)ws->tok_off[b] * ws->V;
}

static void grow(float **p, size_t *cap, size_t n) {
  if (n <= *cap) return;
  free(*p);
  *p = ps_xmalloc(n * sizeof(float));
  *cap = n;
}

// Parallel loop over [0, n): fn(ctx, begin, end, tid) on static slices.
typedef void (*range_fn)(void *ctx, int64_t b, int64_t e, int tid);
typedef struct {
  range_fn fn;
  void *ctx;
  int64_t n;
} pfor_t;

static void pfor_tramp(void *c, int tid, int nt) {
  pfor_t *p = c;
  int64_t b, e;
  ps_pool_range(p->n, tid, nt, &b, &e);
  if (b < e) p->fn(p->ctx, b, e, tid);
}

static void pfor(esm2_ws_t *ws, int64_t n, range_fn fn, void *ctx) {
  pfor_t p = {fn, ctx, n};
  if (ws->nthreads <= 1 || n < 2) fn(ctx, 0, n, 0);
  else ps_pool_run(ws->pool, pfor_tramp, &p);
}

// Parallel loop over [0, n) handed out one index at a time (tasks of unequal cost).
typedef struct {
  range_fn fn;
  void *ctx;
  int64_t n;
  atomic_llong next;
} pdyn_t;

static void pdyn_tramp(void *c, int tid, int nt) {
  pdyn_t *p = c;
  (void)nt;
  for (;;) {
    int64_t i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n) break;
    p->fn(p->ctx, i, i + 1, tid);
  }
}

static void pfor_dynamic(esm2_ws_t *ws, int64_t n, range_fn fn, void *ctx) {
  pdyn_t p = {fn, ctx, n, 0};
  if (ws->nthreads <= 1 || n < 2) fn(ctx, 0, n, 0);
  else ps_pool_run(ws->pool, pdyn_tramp, &p);
}

static const char *const phase_names[ESM2_PHASE_N] = {"embed", "layernorm", "qkv", "rotary", "attention",
                                                      "out", "ff1", "gelu", "ff2", "capture"};
const char *esm2_phase_name(int phase) { return phase >= 0 && phase < ESM2_PHASE_N ? phase_names[phase] : "?"; }
const double *esm2_ws_phase_seconds(const esm2_ws_t *ws) { return ws->phase_s; }

// Add the time since *t0 to phase ph and restart the clock.
static void phase_tick(esm2_ws_t *ws, int ph, double *t0) {
  double t = ps_mono_s();
  ws->phase_s[ph] += t - *t0;
  *t0 = t;
}

// LayerNorm of a row (x += bias first when bias != NULL): esm2_kern.c.
static void layernorm_row(float *x, const float *bias, float *y, const float *w, const float *b, int D, float eps) {
  esm2_kern_layernorm(x, bias, y, w, b, D, eps);
}

// Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
static inline float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

typedef struct fwd {
  const esm2_model_t *m;
  esm2_ws_t *ws;
  const esm2_layer_t *L;
  const int *n_tokens;
  float q_scale;
  int last;       // block is the last layer: apply the final LayerNorm
} fwd_t;

// LN1: x = LN(h) rows.
static void k_ln1(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++)
    layernorm_row(f->ws->h + r * D, NULL, f->ws->x + r * D, f->L->ln1_w, f->L->ln1_b, D, f->m->cfg.ln_eps);
}

// qkv += bias; q *= scale; rotary on q and k.
static void k_qkv(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  const esm2_config_t *cf = &f->m->cfg;
  int D = cf->d_model, hd = cf->d_head, h2 = hd / 2;
  for (int64_t r = b; r < e; r++) {
    float *q = f->ws->qkv + r * 3 * D;
    const float *bias = f->L->b_qkv;
    for (int i = 0; i < 3 * D; i++) q[i] += bias[i];
    for (int i = 0; i < D; i++) q[i] *= f->q_scale;
    const float *cs = f->ws->rope_cos + (size_t)f->ws->pos[r] * h2;
    const float *sn = f->ws->rope_sin + (size_t)f->ws->pos[r] * h2;
    for (int part = 0; part < 2; part++) {
      float *base = q + part * D;
      for (int hh = 0; hh < cf->n_heads; hh++) {
        float *v = base + hh * hd;
        for (int i = 0; i < h2; i++) {
          float x1 = v[i], x2 = v[i + h2];
          v[i] = x1 * cs[i] - x2 * sn[i];
          v[i + h2] = x2 * cs[i] + x1 * sn[i];
        }
      }
    }
  }
}

// Keys transposed for the AVX-512 attention, tasks [b, e) = seq * H + head: (hd, Tp) each.
static void k_keys_t(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  esm2_ws_t *ws = f->ws;
  int D = f->m->cfg.d_model, hd = f->m->cfg.d_head, H = f->m->cfg.n_heads;
  for (int64_t task = b; task < e; task++) {
    int s = (int)(task / H), hh = (int)(task % H), T = f->n_tokens[s], Tp = (T + 15) & ~15;
    const float *K = ws->qkv + (size_t)ws->tok_off[s] * 3 * D + D + hh * hd;
    float *kt = ws->kt + ws->kt_off[s] + (size_t)hh * hd * Tp;
    for (int t = 0; t < T; t++)
      for (int d = 0; d < hd; d++) kt[(size_t)d * Tp + t] = K[(size_t)t * 3 * D + d];
  }
}

// Attention of tasks [b, e) (pfor_dynamic). The tasks of sequence s are task_off[s] ..
// task_off[s+1]-1, head-major, each a block of up to QB queries against all T keys; they are
// handed out from the last (the longest sequence of a length-sorted batch) down.
static void k_attn(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  esm2_ws_t *ws = f->ws;
  const esm2_config_t *cf = &f->m->cfg;
  int D = cf->d_model, hd = cf->d_head;
  float *S = ws->scores + (size_t)tid * ws->cap_tt;
  int n_tasks = ws->task_off[ws->n_seqs];
  for (int64_t i = b; i < e; i++) {
    int task = n_tasks - 1 - (int)i, lo = 0, hi = ws->n_seqs - 1;
    while (lo < hi) {   // the sequence s with task_off[s] <= task < task_off[s+1]
      int mid = (lo + hi + 1) / 2;
      if (ws->task_off[mid] <= task) lo = mid;
      else hi = mid - 1;
    }
    int s = lo, T = f->n_tokens[s], off = ws->tok_off[s], nqb = (T + QB - 1) / QB;
    int local = task - ws->task_off[s], hh = local / nqb, q0 = (local % nqb) * QB;
    int nq = T - q0 < QB ? T - q0 : QB;
    const float *K = ws->qkv + (size_t)off * 3 * D + D + hh * hd, *V = K + D;
    const float *Q = ws->qkv + (size_t)(off + q0) * 3 * D + hh * hd;
    float *inv = S + (size_t)QB * T, *out = ws->ctx + (size_t)(off + q0) * D + hh * hd;
    if (ws->attn_kern) {
      int Tp = (T + 15) & ~15;
      esm2_attn_scores_avx512(nq, T, hd, Q, 3 * D, ws->kt + ws->kt_off[s] + (size_t)hh * hd * Tp, Tp, S, T);
      esm2_kern_softmax_unnorm(S, nq, T, inv);
      esm2_attn_pv_avx512(nq, T, hd, S, T, V, 3 * D, inv, out, D);
      continue;
    }
    // S (nq,T) = Q (nq,hd) K^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, T, hd, 1.0f, Q, 3 * D, K, 3 * D, 0.0f, S, T);
    // softmax without the division: exp(S - rowmax), then the rows of P V are scaled by 1 / sum
    esm2_kern_softmax_unnorm(S, nq, T, inv);
    // ctx (nq,hd) = P (nq,T) V (T,hd)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, T, 1.0f, S, T, V, 3 * D, 0.0f, out, D);
    esm2_kern_scale_rows(out, nq, hd, D, inv);
  }
}

// h += b_o; x = LN2(h).
static void k_post_attn(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++) {
    float *h = f->ws->h + r * D;
    layernorm_row(h, f->L->b_o, f->ws->x + r * D, f->L->ln2_w, f->L->ln2_b, D, f->m->cfg.ln_eps);
  }
}

// ff = gelu(ff + b_1).
static void k_gelu(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int F = f->m->cfg.d_ff;
  for (int64_t r = b; r < e; r++) {
    float *u = f->ws->ff + r * F;
    esm2_kern_gelu_bias(u, f->L->b_1, F);
  }
}

// h += b_2; final LayerNorm on the last layer.
static void k_post_ff(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++) {
    float *h = f->ws->h + r * D;
    for (int i = 0; i < D; i++) h[i] += f->L->b_2[i];
    if (f->last) layernorm_row(h, NULL, h, f->m->lnf_w, f->m->lnf_b, D, f->m->cfg.ln_eps);
  }
}

// lm_head: x = LN(gelu(x + dense_b)).
static void k_lm(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++) {
    float *x = f->ws->x + r * D;
    for (int i = 0; i < D; i++) x[i] = gelu(x[i] + f->m->lm_dense_b[i]);
    layernorm_row(x, NULL, x, f->m->lm_ln_w, f->m->lm_ln_b, D, f->m->cfg.ln_eps);
  }
}

static void capture(const esm2_model_t *m, esm2_ws_t *ws, int layer, const int *n_tokens, const esm2_request_t *req) {
  int D = m->cfg.d_model;
  for (int s = 0; s < req->n_layers; s++) {
    if (req->layers[s] != layer) continue;
    for (int b = 0; b < ws->n_seqs; b++) {
      int nr = n_tokens[b] - 2;
      const float *src = ws->h + (size_t)(ws->tok_off[b] + 1) * D;
      if (req->residue) memcpy(ws->out_res[s] + (size_t)ws->res_off[b] * D, src, (size_t)nr * D * sizeof(float));
      if (req->mean) {
        float *mean = ws->out_mean[s] + (size_t)b * D;
        for (int j = 0; j < D; j++) {
          double acc = 0;
          for (int r = 0; r < nr; r++) acc += src[(size_t)r * D + j];
          mean[j] = nr > 0 ? (float)(acc / nr) : 0.0f;
        }
      }
    }
  }
}

typedef struct gemm_job {
  int N, K;
  const float *A, *B;
  const esm2_packed_t *Bp;   // bf16 weights, or NULL
  float beta;
  float *C;
  esm2_ws_t *ws;
  int M, chunk;   // rows, rows of a task (pfor_dynamic; 0: [b, e) are rows)
} gemm_job_t;

// Rows [b, e) of C (M,N) = A (M,K) B^T (B is (N,K), a torch Linear weight) + beta C.
static void k_gemm(void *c, int64_t b, int64_t e, int tid) {
  gemm_job_t *g = c;
  if (g->chunk) {   // [b, e) counts chunks of rows
    b *= g->chunk;
    e = e * g->chunk < g->M ? e * g->chunk : g->M;
  }
  if (g->Bp)
    esm2_gemm_bf16((int)(e - b), g->A + b * g->K, g->K, g->Bp, g->beta, g->C + b * g->N, g->N,
                   g->ws->bf_scratch + (size_t)tid * g->ws->bf_stride);
  else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(e - b), g->N, g->K, 1.0f, g->A + b * g->K, g->K, g->B,
                g->K, g->beta, g->C + b * g->N, g->N);
}

// The projections: the pool's threads take blocks of 192 rows as they come free (a thread
// slowed by other work on the machine takes fewer), each a single-threaded sgemm (OpenBLAS itself
// runs one thread, so it never competes with the pool) or bf16 product (Bp, when this forward
// runs in bf16). A row's result does not depend on its block.
#define GEMM_CHUNK 192
static void gemm_nt(esm2_ws_t *ws, int M, int N, int K, const float *A, const float *B, const esm2_packed_t *Bp,
                    float beta, float *C) {
  gemm_job_t g = {N, K, A, B, ws->use_bf16 ? Bp : NULL, beta, C, ws, M, 0};
  if (ws->nthreads <= 1 || M < 2 * GEMM_CHUNK) k_gemm(&g, 0, M, 0);
  else {
    g.chunk = GEMM_CHUNK;
    pfor_dynamic(ws, (M + GEMM_CHUNK - 1) / GEMM_CHUNK, k_gemm, &g);
  }
}

int esm2_bf16_supported(void) { return esm2_gemm_bf16_cpu(); }

static pthread_mutex_t pack_mu = PTHREAD_MUTEX_INITIALIZER;

int esm2_prepare(const esm2_model_t *cm, esm2_prec_t precision, ps_err_t *err) {
  if (precision != ESM2_PREC_BF16 || !esm2_gemm_bf16_cpu() || atomic_load(&cm->packed_ready)) return 0;
  esm2_model_t *m = (esm2_model_t *)cm;   // the bf16 copies are a cache beside the weights
  const esm2_config_t *c = &m->cfg;
  int D = c->d_model, F = c->d_ff, rc = 0;
  pthread_mutex_lock(&pack_mu);
  if (!atomic_load(&m->packed_ready)) {
    m->packed = ps_xcalloc((size_t)c->n_layers * 4, sizeof(esm2_packed_t));
    for (int l = 0; l < c->n_layers && rc == 0; l++) {
      const esm2_layer_t *L = &m->layers[l];
      esm2_packed_t *p = m->packed + 4 * l;
      if (esm2_pack_bf16(&p[0], L->w_qkv, 3 * D, D) < 0 || esm2_pack_bf16(&p[1], L->w_o, D, D) < 0 ||
          esm2_pack_bf16(&p[2], L->w_1, F, D) < 0 || esm2_pack_bf16(&p[3], L->w_2, D, F) < 0)
        rc = ps_err_set(err, PS_ENOMEM, "esm2: no memory for the bf16 weights of layer %d", l);
    }
    if (rc < 0) {
      for (int i = 0; i < 4 * c->n_layers; i++) esm2_packed_free(&m->packed[i]);
      free(m->packed);
      m->packed = NULL;
    } else atomic_store(&m->packed_ready, 1);
  }
  pthread_mutex_unlock(&pack_mu);
  return rc;
}

int esm2_forward(const esm2_model_t *m, esm2_ws_t *ws, const int32_t *tokens, const int *n_tokens, int n_seqs,
                 const esm2_request_t *req, ps_err_t *err) {
  const esm2_config_t *c = &m->cfg;
  int D = c->d_model, F = c->d_ff, V = c->vocab, hd = c->d_head, h2 = hd / 2;
  if (n_seqs < 1) return ps_err_set(err, PS_ECONFIG, "esm2_forward: no sequences");
  if (req->n_layers < 0 || req->n_layers > MAX_SLOTS)
    return ps_err_set(err, PS_ECONFIG, "esm2: at most %d layers per request", MAX_SLOTS);
  int deepest = 0;
  for (int s = 0; s < req->n_layers; s++) {
    if (req->layers[s] < 0 || req->layers[s] > c->n_layers)
      return ps_err_set(err, PS_ECONFIG, "esm2: layer %d is outside 0..%d", req->layers[s], c->n_layers);
    for (int t = 0; t < s; t++)
      if (req->layers[t] == req->layers[s]) return ps_err_set(err, PS_ECONFIG, "esm2: layer %d asked twice", req->layers[s]);
    if (req->layers[s] > deepest) deepest = req->layers[s];
  }
  if (req->logits) {
    if (!c->has_lm_head) return ps_err_set(err, PS_ENOTFOUND, "esm2: logits asked but the checkpoint has no lm_head");
    deepest = c->n_layers;
  }
  size_t N = 0, Nres = 0;
  int Tmax = 0;
  for (int b = 0; b < n_seqs; b++) {
    if (n_tokens[b] < 2) return ps_err_set(err, PS_ECONFIG, "esm2_forward: sequence %d has %d tokens (< 2)", b, n_tokens[b]);
    N += (size_t)n_tokens[b];
    Nres += (size_t)n_tokens[b] - 2;
    if (n_tokens[b] > Tmax) Tmax = n_tokens[b];
  }
  if (N > (size_t)INT32_MAX / (size_t)(F > 3 * D ? F : 3 * D))
    return ps_err_set(err, PS_ECONFIG, "esm2_forward: batch of %zu tokens is too large", N);
  for (size_t i = 0; i < N; i++)
    if (tokens[i] < 0 || tokens[i] >= V)
      return ps_err_set(err, PS_ECONFIG, "esm2_forward: token %zu is %d, outside 0..%d", i, tokens[i], V - 1);

  // buffers
  if (N > ws->cap_tok) {
    free(ws->h);
    free(ws->x);
    free(ws->qkv);
    free(ws->ctx);
    free(ws->ff);
    free(ws->pos);
    ws->h = ps_xmalloc(N * D * sizeof(float));
    ws->x = ps_xmalloc(N * D * sizeof(float));
    ws->qkv = ps_xmalloc(N * 3 * D * sizeof(float));
    ws->ctx = ps_xmalloc(N * D * sizeof(float));
    ws->ff = ps_xmalloc(N * F * sizeof(float));
    ws->pos = ps_xmalloc(N * sizeof(int));
    ws->cap_tok = N;
  }
  if ((size_t)n_seqs > ws->cap_seq) {
    free(ws->tok_off);
    free(ws->res_off);
    free(ws->task_off);
    free(ws->kt_off);
    ws->kt_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(size_t));
    ws->tok_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(int));
    ws->res_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(int));
    ws->task_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(int));
    ws->cap_seq = (size_t)n_seqs;
  }
  ws->use_bf16 = ws->precision == ESM2_PREC_BF16 && esm2_gemm_bf16_cpu();
  if (ws->use_bf16) {
    if (esm2_prepare(m, ESM2_PREC_BF16, err) < 0) return err->code;
    ws->bf_stride = (esm2_gemm_bf16_scratch(F > D ? F : D) + 15) / 16 * 16;
    if (ws->bf_stride * ws->nthreads > ws->cap_bf) {
      free(ws->bf_scratch);
      ws->bf_scratch = aligned_alloc(64, ws->bf_stride * ws->nthreads * sizeof(float));
      if (!ws->bf_scratch) {
        ws->cap_bf = 0;
        return ps_err_set(err, PS_ENOMEM, "esm2_forward: no memory for the bf16 scratch");
      }
      ws->cap_bf = ws->bf_stride * ws->nthreads;
    }
  }
  size_t tt = (size_t)QB * Tmax + QB;   // scores of a query block + 1/row sums
  if (tt > ws->cap_tt) {
    free(ws->scores);
    ws->scores = ps_xmalloc(tt * ws->nthreads * sizeof(float));
    ws->cap_tt = tt;
  }
  if ((size_t)Tmax * h2 > ws->cap_rope) {
    free(ws->rope_cos);
    free(ws->rope_sin);
    ws->rope_cos = ps_xmalloc((size_t)Tmax * h2 * sizeof(float));
    ws->rope_sin = ps_xmalloc((size_t)Tmax * h2 * sizeof(float));
    ws->cap_rope = (size_t)Tmax * h2;
  }
  ws->n_seqs = n_seqs;
  ws->n_slots = req->n_layers;
  ws->D = D;
  ws->V = V;
  ws->want_res = req->residue;
  ws->want_mean = req->mean;
  ws->has_logits = req->logits;
  for (int s = 0; s < req->n_layers; s++) {
    if (req->residue) grow(&ws->out_res[s], &ws->out_cap_res[s], (Nres ? Nres : 1) * D);
    if (req->mean) grow(&ws->out_mean[s], &ws->out_cap_mean[s], (size_t)n_seqs * D);
  }
  if (req->logits) grow(&ws->logits, &ws->cap_logit_tok, N * V);
  ws->tok_off[0] = ws->res_off[0] = ws->task_off[0] = 0;
  ws->kt_off[0] = 0;
  for (int b = 0; b < n_seqs; b++) {
    ws->task_off[b + 1] = ws->task_off[b] + c->n_heads * ((n_tokens[b] + QB - 1) / QB);
    ws->tok_off[b + 1] = ws->tok_off[b] + n_tokens[b];
    ws->res_off[b + 1] = ws->res_off[b] + n_tokens[b] - 2;
    ws->kt_off[b + 1] = ws->kt_off[b] + (size_t)((n_tokens[b] + 15) & ~15) * D;
    for (int t = 0; t < n_tokens[b]; t++) ws->pos[ws->tok_off[b] + t] = t;
  }
  ws->attn_kern = esm2_attn_avx512_cpu();
  if (ws->attn_kern && ws->kt_off[n_seqs] > ws->cap_kt) {
    free(ws->kt);
    ws->kt = ps_xmalloc(ws->kt_off[n_seqs] * sizeof(float));
    ws->cap_kt = ws->kt_off[n_seqs];
  }

  double t0 = ps_mono_s();
  // embeddings with token-dropout scaling (masked tokens zeroed, the rest scaled by
  // (1 - 0.15 * 0.8) / (1 - masked / T)).
  for (int b = 0; b < n_seqs; b++) {
    const int32_t *tk = tokens + ws->tok_off[b];
    int T = n_tokens[b], nmask = 0;
    for (int t = 0; t < T; t++) nmask += tk[t] == c->mask_id;
    float scale = 1.0f;
    if (c->token_dropout) scale = (float)((1.0 - 0.15 * 0.8) / (1.0 - (double)nmask / T));
    for (int t = 0; t < T; t++) {
      float *h = ws->h + (size_t)(ws->tok_off[b] + t) * D;
      if (c->token_dropout && tk[t] == c->mask_id) memset(h, 0, D * sizeof(float));
      else {
        const float *e = m->embed + (size_t)tk[t] * D;
        for (int i = 0; i < D; i++) h[i] = e[i] * scale;
      }
    }
  }
  phase_tick(ws, ESM2_PHASE_EMBED, &t0);
  capture(m, ws, 0, n_tokens, req);
  phase_tick(ws, ESM2_PHASE_CAPTURE, &t0);

  fwd_t f = {.m = m, .ws = ws, .n_tokens = n_tokens, .q_scale = (float)pow((double)hd, -0.5)};
  int nt = (int)N;
  for (int l = 0; l < deepest; l++) {
    const esm2_layer_t *L = &m->layers[l];
    f.L = L;
    f.last = l == c->n_layers - 1;
    if (l == 0 || memcmp(L->inv_freq, m->layers[l - 1].inv_freq, h2 * sizeof(float)) != 0)
      for (int t = 0; t < Tmax; t++)   // the tables of the previous layer when its inv_freq is the same
        for (int i = 0; i < h2; i++) {
          float a = (float)t * L->inv_freq[i];
          ws->rope_cos[(size_t)t * h2 + i] = (float)cos((double)a);
          ws->rope_sin[(size_t)t * h2 + i] = (float)sin((double)a);
        }
    const esm2_packed_t *P = ws->use_bf16 ? m->packed + 4 * l : NULL;
    pfor(ws, nt, k_ln1, &f);
    phase_tick(ws, ESM2_PHASE_LAYERNORM, &t0);
    gemm_nt(ws, nt, 3 * D, D, ws->x, L->w_qkv, P ? &P[0] : NULL, 0.0f, ws->qkv);   // qkv (N,3D) = x W_qkv^T
    phase_tick(ws, ESM2_PHASE_QKV, &t0);
    pfor(ws, nt, k_qkv, &f);
    if (ws->attn_kern) pfor_dynamic(ws, (int64_t)n_seqs * c->n_heads, k_keys_t, &f);
    phase_tick(ws, ESM2_PHASE_ROTARY, &t0);
    pfor_dynamic(ws, ws->task_off[n_seqs], k_attn, &f);
    phase_tick(ws, ESM2_PHASE_ATTENTION, &t0);
    gemm_nt(ws, nt, D, D, ws->ctx, L->w_o, P ? &P[1] : NULL, 1.0f, ws->h);        // h += ctx W_o^T
    phase_tick(ws, ESM2_PHASE_OUT, &t0);
    pfor(ws, nt, k_post_attn, &f);
    phase_tick(ws, ESM2_PHASE_LAYERNORM, &t0);
    gemm_nt(ws, nt, F, D, ws->x, L->w_1, P ? &P[2] : NULL, 0.0f, ws->ff);         // ff (N,F) = x W_1^T
    phase_tick(ws, ESM2_PHASE_FF1, &t0);
    pfor(ws, nt, k_gelu, &f);
    phase_tick(ws, ESM2_PHASE_GELU, &t0);
    gemm_nt(ws, nt, D, F, ws->ff, L->w_2, P ? &P[3] : NULL, 1.0f, ws->h);         // h += ff W_2^T
    phase_tick(ws, ESM2_PHASE_FF2, &t0);
    pfor(ws, nt, k_post_ff, &f);
    phase_tick(ws, ESM2_PHASE_LAYERNORM, &t0);
    capture(m, ws, l + 1, n_tokens, req);
    phase_tick(ws, ESM2_PHASE_CAPTURE, &t0);
  }
  if (req->logits) {   // the LM head stays float32
    ws->use_bf16 = 0;
    gemm_nt(ws, nt, D, D, ws->h, m->lm_dense_w, NULL, 0.0f, ws->x);
    pfor(ws, nt, k_lm, &f);
    for (size_t r = 0; r < N; r++) memcpy(ws->logits + r * V, m->lm_bias, V * sizeof(float));
    gemm_nt(ws, nt, V, D, ws->x, m->lm_dec_w, NULL, 1.0f, ws->logits);
  }
  return 0;
}
