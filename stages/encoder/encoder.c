// encoder.c — see encoder.h.
#include "encoder.h"

#include <math.h>
#include <string.h>

#include "pool.h"
#include "wire.h"

struct encoder {
  encoder_opts_t o;
  sae_t *sae;
  sae_enc_t *enc;
  ps_pool_t *pool;
  uint32_t n_features, d_in;
  sae_codes_t codes;
  // FeatureBatch arrays (grown as needed)
  uint32_t *indptr, *indices, *p_indptr, *p_indices;
  float *values, *p_values;
  size_t cap_rows, cap_nnz, cap_prot, cap_pnnz;
  // pooling scratch: per feature accumulator and touched list
  double *acc;
  uint32_t *touched;
  uint8_t *seen;
};

int encoder_new(encoder_t **out, const encoder_opts_t *o, ps_err_t *err) {
  *out = NULL;
  encoder_t *e = ps_xcalloc(1, sizeof *e);
  e->o = *o;
  if (e->o.chunk_rows <= 0) e->o.chunk_rows = 1024;
  int rc;
  if (!o->neurons) {  // neuron mode takes its dimension from the first batch (encoder_encode)
    if (!o->sae_dir) {
      free(e);
      return ps_err_set(err, PS_ECONFIG, "encoder: an SAE directory (--sae) or neuron mode (--neurons) is required");
    }
    if ((rc = sae_load(&e->sae, o->sae_dir, err)) < 0) goto fail;
    if (o->threads > 1) e->pool = ps_pool_new(o->threads);
    if ((rc = sae_enc_new(&e->enc, e->sae, e->pool, e->o.chunk_rows, err)) < 0) goto fail;
    e->n_features = (uint32_t)e->sae->cfg.d_sae;
    e->d_in = (uint32_t)e->sae->cfg.d_in;
  }
  *out = e;
  return 0;
fail:
  encoder_destroy(&e);
  return rc;
}

void encoder_destroy(encoder_t **ep) {
  encoder_t *e = *ep;
  if (!e) return;
  sae_enc_free(&e->enc);
  sae_free(&e->sae);
  ps_pool_destroy(&e->pool);
  sae_codes_free(&e->codes);
  free(e->indptr);
  free(e->indices);
  free(e->values);
  free(e->p_indptr);
  free(e->p_indices);
  free(e->p_values);
  free(e->acc);
  free(e->touched);
  free(e->seen);
  free(e);
  *ep = NULL;
}

uint32_t encoder_n_features(const encoder_t *e) { return e->n_features; }
const sae_t *encoder_sae(const encoder_t *e) { return e->sae; }

static void ensure_rows(encoder_t *e, size_t rows) {
  if (rows + 1 <= e->cap_rows) return;
  e->cap_rows = rows + 1;
  e->indptr = ps_xrealloc(e->indptr, e->cap_rows * sizeof *e->indptr);
}
static void ensure_nnz(encoder_t *e, size_t nnz) {
  if (nnz <= e->cap_nnz) return;
  e->cap_nnz = nnz + nnz / 2 + 16;
  e->indices = ps_xrealloc(e->indices, e->cap_nnz * sizeof *e->indices);
  e->values = ps_xrealloc(e->values, e->cap_nnz * sizeof *e->values);
}
static void ensure_pnnz(encoder_t *e, size_t nnz) {
  if (nnz <= e->cap_pnnz) return;
  e->cap_pnnz = nnz + nnz / 2 + 16;
  e->p_indices = ps_xrealloc(e->p_indices, e->cap_pnnz * sizeof *e->p_indices);
  e->p_values = ps_xrealloc(e->p_values, e->cap_pnnz * sizeof *e->p_values);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

// Pooled codes of each protein from its residues' codes (CSR in e->indptr/indices/values).
static void pool_residues(encoder_t *e, const uint32_t *offsets, size_t n_prot) {
  if (!e->acc) {
    e->acc = ps_xcalloc(e->n_features, sizeof *e->acc);
    e->touched = ps_xmalloc(e->n_features * sizeof *e->touched);
    e->seen = ps_xcalloc(e->n_features, 1);
  }
  if (n_prot + 1 > e->cap_prot) {
    e->cap_prot = n_prot + 1;
    e->p_indptr = ps_xrealloc(e->p_indptr, e->cap_prot * sizeof *e->p_indptr);
  }
  size_t out = 0;
  e->p_indptr[0] = 0;
  for (size_t p = 0; p < n_prot; p++) {
    uint32_t r0 = offsets[p], r1 = offsets[p + 1], nt = 0;
    for (uint32_t r = r0; r < r1; r++)
      for (uint32_t j = e->indptr[r]; j < e->indptr[r + 1]; j++) {
        uint32_t f = e->indices[j];
        double v = e->values[j];
        if (!e->seen[f]) {
          e->seen[f] = 1;
          e->touched[nt++] = f;
          e->acc[f] = v;
        } else if (e->o.pooling == ENC_POOL_MAX) {
          if (v > e->acc[f]) e->acc[f] = v;
        } else {
          e->acc[f] += v;
        }
      }
    qsort(e->touched, nt, sizeof *e->touched, cmp_u32);
    ensure_pnnz(e, out + nt);
    double inv = r1 > r0 ? 1.0 / (double)(r1 - r0) : 0.0;
    for (uint32_t i = 0; i < nt; i++) {
      uint32_t f = e->touched[i];
      float v = (float)(e->o.pooling == ENC_POOL_MAX ? e->acc[f] : e->acc[f] * inv);
      e->seen[f] = 0;
      e->acc[f] = 0;
      if (!(v > 0)) continue;  // a mean that underflows to 0 is not an activation
      e->p_indices[out] = f;
      e->p_values[out] = v;
      out++;
    }
    e->p_indptr[p + 1] = (uint32_t)out;
  }
}

int encoder_encode(encoder_t *e, const Protsae__EmbeddingBatch *eb, Protsae__FeatureBatch *fb, ps_err_t *err) {
  protsae__feature_batch__init(fb);
  int rc = wire_check_embedding_batch(eb, err);
  if (rc < 0) return rc;
  if (e->o.neurons && !e->d_in) {
    uint32_t max_dim = e->o.max_dim ? e->o.max_dim : 8192;
    if (!eb->dim || eb->dim > max_dim)
      return ps_err_set(err, PS_EDIM, "batch of dim %u: the neuron encoder takes 1..%u (max_dim)", eb->dim, max_dim);
    e->n_features = e->d_in = eb->dim;
  }
  if (eb->dim != e->d_in)
    return ps_err_set(err, PS_EDIM, "batch of dim %u but the %s expects %u", eb->dim,
                      e->o.neurons ? "neuron encoder" : "SAE", e->d_in);
  const float *x = (const float *)eb->rows.data;
  size_t n = eb->n_rows;
  ensure_rows(e, n);
  e->indptr[0] = 0;
  if (e->o.neurons) {
    size_t nnz = 0;
    for (size_t r = 0; r < n; r++) {
      ensure_nnz(e, nnz + e->d_in);
      const float *row = x + r * e->d_in;
      for (uint32_t c = 0; c < e->d_in; c++) {
        float v = row[c];
        if (!isfinite(v)) return ps_err_set(err, PS_ENAN, "row %zu: %s at column %u", r, isnan(v) ? "NaN" : "Inf", c);
        if (v > 0) {
          e->indices[nnz] = c;
          e->values[nnz] = v;
          nnz++;
        }
      }
      e->indptr[r + 1] = (uint32_t)nnz;
    }
  } else {
    if ((rc = sae_enc_run(e->enc, x, (int64_t)n, &e->codes, err)) < 0) return rc;
    size_t nnz = (size_t)e->codes.indptr[n];
    if (nnz > UINT32_MAX) return ps_err_set(err, PS_EDIM, "batch of %zu non-zero codes (> 2^32)", nnz);
    ensure_nnz(e, nnz);
    for (size_t r = 0; r <= n; r++) e->indptr[r] = (uint32_t)e->codes.indptr[r];
    for (size_t j = 0; j < nnz; j++) {
      e->indices[j] = (uint32_t)e->codes.indices[j];
      e->values[j] = e->codes.values[j];
    }
  }
  fb->n_protein_ids = eb->n_protein_ids;
  fb->protein_ids = eb->protein_ids;
  fb->level = eb->level;
  fb->layer = eb->layer;
  fb->n_rows = (uint32_t)n;
  fb->n_features = e->n_features;
  fb->n_indptr = n + 1;
  fb->indptr = e->indptr;
  fb->n_indices = fb->n_values = e->indptr[n];
  fb->indices = e->indices;
  fb->values = e->values;
  fb->neurons = e->o.neurons != 0;
  if (eb->level == PROTSAE__LEVEL__LEVEL_RESIDUE) {
    fb->n_residue_offsets = eb->n_residue_offsets;
    fb->residue_offsets = eb->residue_offsets;
    pool_residues(e, eb->residue_offsets, eb->n_protein_ids);
    fb->n_pooled_indptr = eb->n_protein_ids + 1;
    fb->pooled_indptr = e->p_indptr;
    fb->n_pooled_indices = fb->n_pooled_values = e->p_indptr[eb->n_protein_ids];
    fb->pooled_indices = e->p_indices;
    fb->pooled_values = e->p_values;
    fb->pooling = e->o.pooling == ENC_POOL_MAX ? PROTSAE__POOLING__POOLING_MAX : PROTSAE__POOLING__POOLING_MEAN;
  }
  return 0;
}

static const char *const reject_names[ENC_REJ_N] = {"malformed", "seq_out_of_range", "dim", "bad_values"};
const char *encoder_reject_name(enc_reject_t r) { return (unsigned)r < ENC_REJ_N ? reject_names[r] : "unknown"; }

int encoder_handle(encoder_t *e, const Protsae__Envelope *env, Protsae__FeatureBatch *fb, enc_reject_t *why,
                   ps_err_t *err) {
  protsae__feature_batch__init(fb);
  PS_ASSERT(env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH);
  const Protsae__EmbeddingBatch *eb = env->embedding_batch;
  const char *prod = env->producer && env->producer[0] ? env->producer : NULL;
  unsigned long long seq = (unsigned long long)env->seq, n = (unsigned long long)eb->stream_batches;
  if (!prod) {
    *why = ENC_REJ_MALFORMED;
    return ps_err_set(err, PS_EPROTO, "batch seq=%llu without a producer", seq);
  }
  if (env->seq >= ENC_MAX_SEQ || eb->stream_batches > ENC_MAX_SEQ || (eb->stream_batches && env->seq >= eb->stream_batches)) {
    *why = ENC_REJ_SEQ_RANGE;
    return ps_err_set(err, PS_EPROTO, "%s batch seq=%llu: outside the stream's %llu batches (bound 2^32)", prod, seq, n);
  }
  int rc = encoder_encode(e, eb, fb, err);
  if (rc < 0) {
    *why = rc == PS_EDIM ? ENC_REJ_DIM : rc == PS_ENAN ? ENC_REJ_VALUES : ENC_REJ_MALFORMED;
    ps_err_prefix(err, "%s batch seq=%llu: ", prod, seq);
    return rc;
  }
  fb->source_seq = env->seq;
  fb->source_producer = env->producer;
  fb->stream_batches = eb->stream_batches;
  fb->proteome = eb->proteome;  // the annotation service's proteome key and FASTA order, passed on
  if (eb->n_source_index == eb->n_protein_ids) {
    fb->n_source_index = eb->n_source_index;
    fb->source_index = eb->source_index;
  }
  return 0;
}
