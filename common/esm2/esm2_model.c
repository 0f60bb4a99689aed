// esm2_model.c — the ESM2 model object: its parameter layout, random weights and saving
// (benchmarks), tokenization and the layer-list syntax. Loading is in esm2_load.c, the forward
// pass in esm2_forward.c. See esm2.h.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emb.h"
#include "esm2_priv.h"
#include "hash.h"
#include "safetensors.h"

const esm2_config_t *esm2_config(const esm2_model_t *m) { return &m->cfg; }
uint64_t esm2_n_params(const esm2_model_t *m) { return m->n_params; }

void esm2_destroy(esm2_model_t **mp) {
  if (!mp || !*mp) return;
  if ((*mp)->packed)
    for (int i = 0; i < 4 * (*mp)->cfg.n_layers; i++) esm2_packed_free(&(*mp)->packed[i]);
  free((*mp)->packed);
  free((*mp)->slab);
  free((*mp)->layers);
  free(*mp);
  *mp = NULL;
}

// ---- layout --------------------------------------------------------------------------------

const char *const esm2_default_vocab[33] = {
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q",
    "N",     "F",     "Y",     "M",     "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>"};

int esm2_model_alloc(esm2_model_t *m) {
  const esm2_config_t *c = &m->cfg;
  uint64_t D = (uint64_t)c->d_model, F = (uint64_t)c->d_ff, V = (uint64_t)c->vocab, H2 = (uint64_t)c->d_head / 2;
  uint64_t per_layer = 2 * D + 3 * D * D + 3 * D + D * D + D + 2 * D + F * D + F + D * F + D + H2;
  uint64_t total = V * D + 2 * D + (uint64_t)c->n_layers * per_layer;
  if (c->has_lm_head) total += D * D + D + 2 * D + V * D + V;
  m->n_params = total;
  m->slab = calloc(total ? total : 1, sizeof(float));
  if (!m->slab) return PS_ENOMEM;
  m->layers = ps_xcalloc((size_t)c->n_layers, sizeof(esm2_layer_t));
  float *p = m->slab;
#define TAKE(ptr, n) \
  do {               \
    (ptr) = p;       \
    p += (n);        \
  } while (0)
  TAKE(m->embed, V * D);
  TAKE(m->lnf_w, D);
  TAKE(m->lnf_b, D);
  for (int l = 0; l < c->n_layers; l++) {
    esm2_layer_t *L = &m->layers[l];
    TAKE(L->ln1_w, D);
    TAKE(L->ln1_b, D);
    TAKE(L->w_qkv, 3 * D * D);
    TAKE(L->b_qkv, 3 * D);
    TAKE(L->w_o, D * D);
    TAKE(L->b_o, D);
    TAKE(L->ln2_w, D);
    TAKE(L->ln2_b, D);
    TAKE(L->w_1, F * D);
    TAKE(L->b_1, F);
    TAKE(L->w_2, D * F);
    TAKE(L->b_2, D);
    TAKE(L->inv_freq, H2);
  }
  if (c->has_lm_head) {
    TAKE(m->lm_dense_w, D * D);
    TAKE(m->lm_dense_b, D);
    TAKE(m->lm_ln_w, D);
    TAKE(m->lm_ln_b, D);
    TAKE(m->lm_dec_w, V * D);
    TAKE(m->lm_bias, V);
  }
#undef TAKE
  PS_ASSERT((uint64_t)(p - m->slab) == total);
  return 0;
}

void esm2_set_vocab(esm2_config_t *c, const char *const *toks, int n) {
  memset(c->letter_id, -1, sizeof c->letter_id);
  c->cls_id = c->eos_id = c->unk_id = c->mask_id = -1;
  for (int i = 0; i < n; i++) {
    const char *t = toks[i];
    if (strlen(t) == 1) c->letter_id[(unsigned char)t[0]] = (int8_t)i;
    else if (!strcmp(t, "<cls>")) c->cls_id = i;
    else if (!strcmp(t, "<eos>")) c->eos_id = i;
    else if (!strcmp(t, "<unk>")) c->unk_id = i;
    else if (!strcmp(t, "<mask>")) c->mask_id = i;
  }
}


// ---- random weights, save ------------------------------------------------------------------

static float rng_normal(uint64_t *s) {
  double u1 = ((double)(ps_splitmix64(s) >> 11) + 0.5) / 9007199254740992.0;
  double u2 = ps_unit53(ps_splitmix64(s));
  return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static void fill_normal(float *p, uint64_t n, float std, uint64_t *s) {
  for (uint64_t i = 0; i < n; i++) p[i] = std * rng_normal(s);
}

esm2_model_t *esm2_new_random(int n_layers, int d_model, int n_heads, int d_ff, uint64_t seed) {
  PS_ASSERT(n_layers > 0 && d_model > 0 && n_heads > 0 && d_model % n_heads == 0 && (d_model / n_heads) % 2 == 0);
  esm2_model_t *m = ps_xcalloc(1, sizeof *m);
  esm2_config_t *c = &m->cfg;
  c->n_layers = n_layers;
  c->d_model = d_model;
  c->n_heads = n_heads;
  c->d_head = d_model / n_heads;
  c->d_ff = d_ff;
  c->vocab = 33;
  c->ln_eps = 1e-5f;
  c->token_dropout = 1;
  c->pad_id = 1;
  c->max_positions = 1026;
  esm2_set_vocab(c, esm2_default_vocab, 33);
  PS_ASSERT(esm2_model_alloc(m) == 0);
  uint64_t s = seed, D = (uint64_t)d_model, F = (uint64_t)d_ff;
  float std = 0.02f;
  fill_normal(m->embed, 33 * D, 1.0f, &s);
  for (uint64_t i = 0; i < D; i++) m->lnf_w[i] = 1;
  for (int l = 0; l < n_layers; l++) {
    esm2_layer_t *L = &m->layers[l];
    for (uint64_t i = 0; i < D; i++) L->ln1_w[i] = L->ln2_w[i] = 1;
    fill_normal(L->w_qkv, 3 * D * D, std, &s);
    fill_normal(L->b_qkv, 3 * D, std, &s);
    fill_normal(L->w_o, D * D, std, &s);
    fill_normal(L->w_1, F * D, std, &s);
    fill_normal(L->b_1, F, std, &s);
    fill_normal(L->w_2, D * F, std, &s);
    for (int i = 0; i < c->d_head / 2; i++)
      L->inv_freq[i] = emb_half_to_float(emb_float_to_half((float)(1.0 / pow(10000.0, (double)(2 * i) / c->d_head))));
  }
  return m;
}

int esm2_save(const esm2_model_t *m, const char *path, ps_err_t *err) {
  const esm2_config_t *c = &m->cfg;
  st_writer_t *w = NULL;
  int rc = st_writer_open(&w, path, err);
  if (rc < 0) return rc;
  uint64_t D = (uint64_t)c->d_model, F = (uint64_t)c->d_ff, V = (uint64_t)c->vocab;
  char name[256];
#define PUT(data, nd, a, b, ...)                                                   \
  do {                                                                             \
    uint64_t sh[2] = {a, b};                                                       \
    snprintf(name, sizeof name, __VA_ARGS__);                                      \
    if ((rc = st_writer_add_f32(w, name, ST_F32, sh, nd, data, err)) < 0) goto fail; \
  } while (0)
  PUT(m->embed, 2, V, D, "esm.embeddings.word_embeddings.weight");
  PUT(m->lnf_w, 1, D, 0, "esm.encoder.emb_layer_norm_after.weight");
  PUT(m->lnf_b, 1, D, 0, "esm.encoder.emb_layer_norm_after.bias");
  static const char *const qkv[3] = {"query", "key", "value"};
  for (int l = 0; l < c->n_layers; l++) {
    const esm2_layer_t *L = &m->layers[l];
    for (int k = 0; k < 3; k++) {
      PUT(L->w_qkv + k * D * D, 2, D, D, "esm.encoder.layer.%d.attention.self.%s.weight", l, qkv[k]);
      PUT(L->b_qkv + k * D, 1, D, 0, "esm.encoder.layer.%d.attention.self.%s.bias", l, qkv[k]);
    }
    PUT(L->w_o, 2, D, D, "esm.encoder.layer.%d.attention.output.dense.weight", l);
    PUT(L->b_o, 1, D, 0, "esm.encoder.layer.%d.attention.output.dense.bias", l);
    PUT(L->inv_freq, 1, (uint64_t)c->d_head / 2, 0, "esm.encoder.layer.%d.attention.self.rotary_embeddings.inv_freq", l);
    PUT(L->ln1_w, 1, D, 0, "esm.encoder.layer.%d.attention.LayerNorm.weight", l);
    PUT(L->ln1_b, 1, D, 0, "esm.encoder.layer.%d.attention.LayerNorm.bias", l);
    PUT(L->w_1, 2, F, D, "esm.encoder.layer.%d.intermediate.dense.weight", l);
    PUT(L->b_1, 1, F, 0, "esm.encoder.layer.%d.intermediate.dense.bias", l);
    PUT(L->w_2, 2, D, F, "esm.encoder.layer.%d.output.dense.weight", l);
    PUT(L->b_2, 1, D, 0, "esm.encoder.layer.%d.output.dense.bias", l);
    PUT(L->ln2_w, 1, D, 0, "esm.encoder.layer.%d.LayerNorm.weight", l);
    PUT(L->ln2_b, 1, D, 0, "esm.encoder.layer.%d.LayerNorm.bias", l);
  }
  if (c->has_lm_head) {
    PUT(m->lm_dense_w, 2, D, D, "lm_head.dense.weight");
    PUT(m->lm_dense_b, 1, D, 0, "lm_head.dense.bias");
    PUT(m->lm_ln_w, 1, D, 0, "lm_head.layer_norm.weight");
    PUT(m->lm_ln_b, 1, D, 0, "lm_head.layer_norm.bias");
    PUT(m->lm_dec_w, 2, V, D, "lm_head.decoder.weight");
    PUT(m->lm_bias, 1, V, 0, "lm_head.bias");
  }
#undef PUT
  return st_writer_close(&w, err);
fail:
  st_writer_abort(&w);
  return rc;
}

// ---- tokens --------------------------------------------------------------------------------

int esm2_tokenize(const esm2_config_t *c, const char *id, const char *seq, size_t len, size_t max_residues,
                  esm2_unknown_t unk, int32_t *tokens, ps_err_t *err) {
  size_t n = len < max_residues ? len : max_residues;
  tokens[0] = c->cls_id;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)seq[i];
    int t = c->letter_id[ch];
    if (t < 0) {
      if (unk == ESM2_UNKNOWN_ERROR) {
        char shown[8];
        if (ch > 32 && ch < 127) snprintf(shown, sizeof shown, "'%c'", ch);
        else snprintf(shown, sizeof shown, "0x%02x", ch);
        return ps_err_set(err, PS_EFORMAT,
                          "sequence '%s': letter %s at position %zu is not in the ESM2 alphabet "
                          "(set unknown=unk to map it to <unk>)",
                          id, shown, i + 1);
      }
      t = c->unk_id;
    }
    tokens[1 + i] = t;
  }
  tokens[n + 1] = c->eos_id;
  return (int)(n + 2);
}


int esm2_parse_layers(const char *s, int n_layers, int **out, int *n, ps_err_t *err) {
  *out = NULL;
  *n = 0;
  if (!s || !*s) return ps_err_set(err, PS_ECONFIG, "layers: empty list");
  if (!strcmp(s, "all")) {
    *out = ps_xmalloc(((size_t)n_layers + 1) * sizeof(int));
    for (int i = 0; i <= n_layers; i++) (*out)[i] = i;
    *n = n_layers + 1;
    return 0;
  }
  int cap = 8, *v = ps_xmalloc((size_t)cap * sizeof(int)), k = 0;
  const char *p = s;
  while (*p) {
    char *end;
    long x;
    if (!strncmp(p, "last", 4)) {
      x = n_layers;
      end = (char *)p + 4;
    } else {
      x = strtol(p, &end, 10);
      if (end == p) goto bad;
    }
    if (x < 0) x += n_layers + 1;  // -1 = last
    if (x < 0 || x > n_layers) {
      free(v);
      return ps_err_set(err, PS_ECONFIG, "layers '%s': layer %ld is outside 0..%d", s, x, n_layers);
    }
    for (int i = 0; i < k; i++)
      if (v[i] == (int)x) {
        free(v);
        return ps_err_set(err, PS_ECONFIG, "layers '%s': layer %ld listed twice", s, x);
      }
    if (k == cap) v = ps_xrealloc(v, (size_t)(cap *= 2) * sizeof(int));
    v[k++] = (int)x;
    if (*end == ',') end++;
    else if (*end) goto bad;
    p = end;
  }
  if (!k) goto bad;
  *out = v;
  *n = k;
  return 0;
bad:
  free(v);
  return ps_err_set(err, PS_ECONFIG, "layers '%s': expected a comma-separated list of layer numbers, 'last' or 'all'", s);
}
