// esm2.c — ESM2 model: loading, tokens, forward pass. See esm2.h.
#include "esm2.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "emb.h"
#include "esm2_kern.h"
#include "pool.h"
#include "safetensors.h"

typedef struct esm2_layer {
  float *ln1_w, *ln1_b;   // (D)
  float *w_qkv, *b_qkv;   // (3D, D) rows: query, key, value (out, in); (3D)
  float *w_o, *b_o;       // (D, D), (D)
  float *ln2_w, *ln2_b;   // (D)
  float *w_1, *b_1;       // (F, D), (F)
  float *w_2, *b_2;       // (D, F), (D)
  float *inv_freq;        // (d_head / 2)
} esm2_layer_t;

struct esm2_model {
  esm2_config_t cfg;
  float *slab;
  uint64_t n_params;
  float *embed;           // (V, D)
  float *lnf_w, *lnf_b;   // emb_layer_norm_after (D)
  float *lm_dense_w, *lm_dense_b, *lm_ln_w, *lm_ln_b, *lm_dec_w, *lm_bias;
  esm2_layer_t *layers;
};

const esm2_config_t *esm2_config(const esm2_model_t *m) { return &m->cfg; }
uint64_t esm2_n_params(const esm2_model_t *m) { return m->n_params; }

void esm2_destroy(esm2_model_t **mp) {
  if (!mp || !*mp) return;
  free((*mp)->slab);
  free((*mp)->layers);
  free(*mp);
  *mp = NULL;
}

// ---- layout --------------------------------------------------------------------------------

static const char *const default_vocab[] = {
    "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D", "P", "K", "Q",
    "N",     "F",     "Y",     "M",     "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-", "<null_1>", "<mask>"};

// Point the parameter tensors into one slab (allocated here, zeroed). 0 or PS_ENOMEM.
static int model_alloc(esm2_model_t *m) {
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

static void set_vocab(esm2_config_t *c, const char *const *toks, int n) {
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

// ---- config.json ---------------------------------------------------------------------------

static int cfg_int(json_t *j, const char *path, const char *key, int def, int required, int *out, ps_err_t *err) {
  json_t *v = json_object_get(j, key);
  if (!v) {
    if (required) return ps_err_set(err, PS_EFORMAT, "%s: key '%s' is missing", path, key);
    *out = def;
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
    return ps_err_set(err, PS_EFORMAT, "%s: key '%s' must be a non-negative integer", path, key);
  *out = (int)json_integer_value(v);
  return 0;
}

static int parse_config(esm2_config_t *c, const char *path, ps_err_t *err) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) {
    if (je.line < 0) return ps_err_set(err, PS_ENOTFOUND, "%s: %s", path, je.text);
    return ps_err_set(err, PS_EFORMAT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
  }
  int rc = 0;
  memset(c, 0, sizeof *c);
  if (!json_is_object(j)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: not a JSON object", path);
    goto done;
  }
  if ((rc = cfg_int(j, path, "hidden_size", 0, 1, &c->d_model, err)) < 0 ||
      (rc = cfg_int(j, path, "num_hidden_layers", 0, 1, &c->n_layers, err)) < 0 ||
      (rc = cfg_int(j, path, "num_attention_heads", 0, 1, &c->n_heads, err)) < 0 ||
      (rc = cfg_int(j, path, "intermediate_size", 0, 1, &c->d_ff, err)) < 0 ||
      (rc = cfg_int(j, path, "vocab_size", 33, 0, &c->vocab, err)) < 0 ||
      (rc = cfg_int(j, path, "pad_token_id", 1, 0, &c->pad_id, err)) < 0 ||
      (rc = cfg_int(j, path, "max_position_embeddings", 1026, 0, &c->max_positions, err)) < 0)
    goto done;
  int mask_cfg = -1;
  if ((rc = cfg_int(j, path, "mask_token_id", -1, 0, &mask_cfg, err)) < 0) goto done;
  if (c->d_model < 1 || c->n_layers < 1 || c->n_heads < 1 || c->d_ff < 1 || c->d_model % c->n_heads ||
      (c->d_model / c->n_heads) % 2) {
    rc = ps_err_set(err, PS_EFORMAT,
                    "%s: hidden_size %d, num_hidden_layers %d, num_attention_heads %d, intermediate_size %d: "
                    "need positive sizes and an even head size",
                    path, c->d_model, c->n_layers, c->n_heads, c->d_ff);
    goto done;
  }
  c->d_head = c->d_model / c->n_heads;
  json_t *v = json_object_get(j, "layer_norm_eps");
  c->ln_eps = v ? (float)json_number_value(v) : 1e-5f;
  v = json_object_get(j, "token_dropout");
  c->token_dropout = v ? json_is_true(v) : 1;
  v = json_object_get(j, "emb_layer_norm_before");
  c->emb_ln_before = v ? json_is_true(v) : 0;
  v = json_object_get(j, "position_embedding_type");
  if (v && (!json_is_string(v) || strcmp(json_string_value(v), "rotary"))) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: position_embedding_type '%s' is not supported (ESM2 uses rotary)", path,
                    json_is_string(v) ? json_string_value(v) : "?");
    goto done;
  }
  v = json_object_get(j, "hidden_act");
  if (v && (!json_is_string(v) || strcmp(json_string_value(v), "gelu"))) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: hidden_act '%s' is not supported (ESM2 uses gelu)", path,
                    json_is_string(v) ? json_string_value(v) : "?");
    goto done;
  }
  v = json_object_get(j, "vocab_list");
  if (v && !json_is_null(v)) {
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n == 0 || n > ESM2_MAX_VOCAB) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: vocab_list must be an array of 1..%d strings", path, ESM2_MAX_VOCAB);
      goto done;
    }
    const char *toks[ESM2_MAX_VOCAB];
    for (size_t i = 0; i < n; i++) {
      json_t *t = json_array_get(v, i);
      if (!json_is_string(t)) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: vocab_list[%zu] is not a string", path, i);
        goto done;
      }
      toks[i] = json_string_value(t);
    }
    set_vocab(c, toks, (int)n);
    if ((int)n != c->vocab) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: vocab_list has %zu tokens but vocab_size is %d", path, n, c->vocab);
      goto done;
    }
  } else {
    if (c->vocab != 33) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: no vocab_list and vocab_size %d is not the ESM-1b alphabet's 33", path,
                      c->vocab);
      goto done;
    }
    set_vocab(c, default_vocab, 33);
  }
  if (mask_cfg >= 0) c->mask_id = mask_cfg;
  if (c->cls_id < 0 || c->eos_id < 0 || c->unk_id < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: vocab_list lacks <cls>, <eos> or <unk>", path);
    goto done;
  }
  if (c->vocab > ESM2_MAX_VOCAB) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: vocab_size %d > %d", path, c->vocab, ESM2_MAX_VOCAB);
    goto done;
  }
done:
  json_decref(j);
  return rc;
}

// ---- weights -------------------------------------------------------------------------------

#define MAX_SHARDS 64

typedef struct loader {
  const char *dir;
  st_file_t *files[MAX_SHARDS];
  int n_files;
  const char *prefix;   // "esm." or ""
} loader_t;

static const st_tensor_info_t *find_tensor(loader_t *L, const char *name, st_file_t **f) {
  for (int i = 0; i < L->n_files; i++) {
    const st_tensor_info_t *t = st_tensor_find(L->files[i], name);
    if (t) {
      *f = L->files[i];
      return t;
    }
  }
  return NULL;
}

static const char *files_desc(loader_t *L, char *buf, size_t cap) {
  if (L->n_files == 1) return st_path(L->files[0]);
  snprintf(buf, cap, "%s/model-*.safetensors (%d shards)", L->dir, L->n_files);
  return buf;
}

// Load tensor `name` (ndim 1 or 2, shape d0 [x d1]) into dst. Returns 1 loaded, 0 absent and
// optional, <0 error naming the file and the tensor.
static int load_t(loader_t *L, const char *name, int required, float *dst, int ndim, uint64_t d0, uint64_t d1,
                  ps_err_t *err) {
  st_file_t *f = NULL;
  const st_tensor_info_t *t = find_tensor(L, name, &f);
  char buf[512];
  if (!t) {
    if (!required) return 0;
    return ps_err_set(err, PS_ENOTFOUND, "%s: tensor '%s' is missing", files_desc(L, buf, sizeof buf), name);
  }
  int ok = t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
  if (!ok) {
    char got[128] = "[";
    for (int i = 0; i < t->ndim; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)t->shape[i]);
    strncat(got, "]", sizeof got - strlen(got) - 1);
    char want[64];
    if (ndim == 1) snprintf(want, sizeof want, "[%llu]", (unsigned long long)d0);
    else snprintf(want, sizeof want, "[%llu, %llu]", (unsigned long long)d0, (unsigned long long)d1);
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has shape %s, expected %s (from config.json)", st_path(f), name,
                      got, want);
  }
  if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
    return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s' has dtype %s (F32, F16, BF16 or F64 expected)", st_path(f),
                      name, st_dtype_name(t->dtype));
  int rc = st_read_range_f32(f, t, 0, t->n_elems, dst, err);
  if (rc < 0) return ps_err_prefix(err, "tensor '%s': ", name);
  return 1;
}

static int open_weights(loader_t *L, ps_err_t *err) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/model.safetensors", L->dir);
  if (stat(path, &st) == 0) {
    L->n_files = 1;
    return st_open(&L->files[0], path, err);
  }
  snprintf(path, sizeof path, "%s/model.safetensors.index.json", L->dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) {
    if (stat(path, &st) != 0)
      return ps_err_set(err, PS_ENOTFOUND, "%s: neither model.safetensors nor model.safetensors.index.json found",
                        L->dir);
    return ps_err_set(err, PS_EFORMAT, "%s: line %d column %d: %s", path, je.line, je.column, je.text);
  }
  int rc = 0;
  json_t *wm = json_object_get(j, "weight_map");
  if (!json_is_object(wm)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: no weight_map object", path);
    goto done;
  }
  const char *key;
  json_t *val;
  const char *seen[MAX_SHARDS];
  json_object_foreach(wm, key, val) {
    if (!json_is_string(val)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: weight_map['%s'] is not a file name", path, key);
      goto done;
    }
    const char *fn = json_string_value(val);
    int dup = 0;
    for (int i = 0; i < L->n_files; i++) dup |= !strcmp(seen[i], fn);
    if (dup) continue;
    if (L->n_files == MAX_SHARDS || strchr(fn, '/')) {
      rc = ps_err_set(err, PS_EUNSUPP, "%s: shard '%s': more than %d shards or a path", path, fn, MAX_SHARDS);
      goto done;
    }
    char sp[4096];
    snprintf(sp, sizeof sp, "%s/%s", L->dir, fn);
    seen[L->n_files] = fn;
    if ((rc = st_open(&L->files[L->n_files], sp, err)) < 0) goto done;
    L->n_files++;
  }
  if (!L->n_files) rc = ps_err_set(err, PS_EFORMAT, "%s: weight_map is empty", path);
done:
  json_decref(j);
  return rc;
}

int esm2_load(esm2_model_t **out, const char *dir, ps_err_t *err) {
  *out = NULL;
  esm2_model_t *m = ps_xcalloc(1, sizeof *m);
  loader_t L = {.dir = dir};
  char path[4096], name[256];
  int rc;
  snprintf(path, sizeof path, "%s/config.json", dir);
  if ((rc = parse_config(&m->cfg, path, err)) < 0) goto fail;
  if ((rc = open_weights(&L, err)) < 0) goto fail;
  st_file_t *dummy;
  if (find_tensor(&L, "esm.embeddings.word_embeddings.weight", &dummy)) L.prefix = "esm.";
  else L.prefix = "";
  esm2_config_t *c = &m->cfg;
  c->has_lm_head = find_tensor(&L, "lm_head.dense.weight", &dummy) != NULL;
  if (model_alloc(m) < 0) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: %.1f GB of float32 weights (%d layers, hidden size %d) do not fit in memory",
                    dir, (double)m->n_params * 4 / 1e9, c->n_layers, c->d_model);
    goto fail;
  }
  uint64_t D = (uint64_t)c->d_model, F = (uint64_t)c->d_ff, V = (uint64_t)c->vocab;
#define LOAD(req, dst, nd, a, b, ...)                                  \
  do {                                                                 \
    snprintf(name, sizeof name, __VA_ARGS__);                          \
    if ((rc = load_t(&L, name, req, dst, nd, a, b, err)) < 0) goto fail; \
  } while (0)
  LOAD(1, m->embed, 2, V, D, "%sembeddings.word_embeddings.weight", L.prefix);
  LOAD(1, m->lnf_w, 1, D, 0, "%sencoder.emb_layer_norm_after.weight", L.prefix);
  LOAD(1, m->lnf_b, 1, D, 0, "%sencoder.emb_layer_norm_after.bias", L.prefix);
  if (c->emb_ln_before) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: emb_layer_norm_before = true is not supported (ESM2 has false)", path);
    goto fail;
  }
  for (int l = 0; l < c->n_layers; l++) {
    esm2_layer_t *ly = &m->layers[l];
    const char *p = L.prefix;
    LOAD(1, ly->w_qkv, 2, D, D, "%sencoder.layer.%d.attention.self.query.weight", p, l);
    LOAD(1, ly->w_qkv + D * D, 2, D, D, "%sencoder.layer.%d.attention.self.key.weight", p, l);
    LOAD(1, ly->w_qkv + 2 * D * D, 2, D, D, "%sencoder.layer.%d.attention.self.value.weight", p, l);
    LOAD(1, ly->b_qkv, 1, D, 0, "%sencoder.layer.%d.attention.self.query.bias", p, l);
    LOAD(1, ly->b_qkv + D, 1, D, 0, "%sencoder.layer.%d.attention.self.key.bias", p, l);
    LOAD(1, ly->b_qkv + 2 * D, 1, D, 0, "%sencoder.layer.%d.attention.self.value.bias", p, l);
    LOAD(1, ly->w_o, 2, D, D, "%sencoder.layer.%d.attention.output.dense.weight", p, l);
    LOAD(1, ly->b_o, 1, D, 0, "%sencoder.layer.%d.attention.output.dense.bias", p, l);
    LOAD(1, ly->ln1_w, 1, D, 0, "%sencoder.layer.%d.attention.LayerNorm.weight", p, l);
    LOAD(1, ly->ln1_b, 1, D, 0, "%sencoder.layer.%d.attention.LayerNorm.bias", p, l);
    LOAD(1, ly->w_1, 2, F, D, "%sencoder.layer.%d.intermediate.dense.weight", p, l);
    LOAD(1, ly->b_1, 1, F, 0, "%sencoder.layer.%d.intermediate.dense.bias", p, l);
    LOAD(1, ly->w_2, 2, D, F, "%sencoder.layer.%d.output.dense.weight", p, l);
    LOAD(1, ly->b_2, 1, D, 0, "%sencoder.layer.%d.output.dense.bias", p, l);
    LOAD(1, ly->ln2_w, 1, D, 0, "%sencoder.layer.%d.LayerNorm.weight", p, l);
    LOAD(1, ly->ln2_b, 1, D, 0, "%sencoder.layer.%d.LayerNorm.bias", p, l);
    snprintf(name, sizeof name, "%sencoder.layer.%d.attention.self.rotary_embeddings.inv_freq", p, l);
    rc = load_t(&L, name, 0, ly->inv_freq, 1, (uint64_t)c->d_head / 2, 0, err);
    if (rc < 0) goto fail;
    if (rc == 0)  // not stored: what ESM2 computes, rounded through float16 like the checkpoints
      for (int i = 0; i < c->d_head / 2; i++)
        ly->inv_freq[i] = emb_half_to_float(emb_float_to_half(
            (float)(1.0 / pow(10000.0, (double)(2 * i) / (double)c->d_head))));
  }
  if (c->has_lm_head) {
    LOAD(1, m->lm_dense_w, 2, D, D, "lm_head.dense.weight");
    LOAD(1, m->lm_dense_b, 1, D, 0, "lm_head.dense.bias");
    LOAD(1, m->lm_ln_w, 1, D, 0, "lm_head.layer_norm.weight");
    LOAD(1, m->lm_ln_b, 1, D, 0, "lm_head.layer_norm.bias");
    LOAD(1, m->lm_bias, 1, V, 0, "lm_head.bias");
    snprintf(name, sizeof name, "lm_head.decoder.weight");
    if ((rc = load_t(&L, name, 0, m->lm_dec_w, 2, V, D, err)) < 0) goto fail;
    if (rc == 0) memcpy(m->lm_dec_w, m->embed, V * D * sizeof(float));  // tied
  }
#undef LOAD
  for (int i = 0; i < L.n_files; i++) st_close(&L.files[i]);
  *out = m;
  return 0;
fail:
  for (int i = 0; i < L.n_files; i++) st_close(&L.files[i]);
  esm2_destroy(&m);
  return ps_err_prefix(err, "esm2: ");
}

// ---- random weights, save ------------------------------------------------------------------

static uint64_t rng_next(uint64_t *s) {  // splitmix64
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static float rng_normal(uint64_t *s) {
  double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
  double u2 = (double)(rng_next(s) >> 11) / 9007199254740992.0;
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
  set_vocab(c, default_vocab, 33);
  PS_ASSERT(model_alloc(m) == 0);
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

// ---- forward -------------------------------------------------------------------------------

#define MAX_SLOTS 64

struct esm2_ws {
  int nthreads;
  ps_pool_t *pool;
  size_t cap_tok, cap_res, cap_seq, cap_tt, cap_rope, cap_logit_tok;
  float *h, *x, *qkv, *ctx, *ff;   // (N,D) (N,D) (N,3D) (N,D) (N,F)
  float *scores;                  // nthreads x Tmax^2
  float *rope_cos, *rope_sin;     // Tmax x d_head/2
  int *pos;                       // (N) position of each token in its sequence
  int *tok_off, *res_off;         // (B+1)
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
  free(ws->tok_off);
  free(ws->res_off);
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

static void layernorm_row(const float *x, float *y, const float *w, const float *b, int D, float eps) {
  double s = 0;
  for (int i = 0; i < D; i++) s += x[i];
  float mean = (float)(s / D);
  double v = 0;
  for (int i = 0; i < D; i++) {
    float d = x[i] - mean;
    v += (double)d * d;
  }
  float rstd = (float)(1.0 / sqrt(v / D + eps));
  for (int i = 0; i < D; i++) y[i] = (x[i] - mean) * rstd * w[i] + b[i];
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
    layernorm_row(f->ws->h + r * D, f->ws->x + r * D, f->L->ln1_w, f->L->ln1_b, D, f->m->cfg.ln_eps);
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

// Attention of tasks [b, e): task = seq * H + head.
static void k_attn(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  esm2_ws_t *ws = f->ws;
  const esm2_config_t *cf = &f->m->cfg;
  int D = cf->d_model, hd = cf->d_head, H = cf->n_heads;
  float *S = ws->scores + (size_t)tid * ws->cap_tt;
  for (int64_t task = b; task < e; task++) {
    int s = (int)(task / H), hh = (int)(task % H);
    int T = f->n_tokens[s], off = ws->tok_off[s];
    const float *Q = ws->qkv + (size_t)off * 3 * D + hh * hd, *K = Q + D, *V = Q + 2 * D;
    // S (T,T) = Q (T,hd) K^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, Q, 3 * D, K, 3 * D, 0.0f, S, T);
    // softmax without the division: exp(S - rowmax), then the rows of P V are scaled by 1 / sum
    float *inv = S + (size_t)T * T;
    esm2_kern_softmax_unnorm(S, T, T, inv);
    // ctx (T,hd) = P (T,T) V (T,hd)
    float *out = ws->ctx + (size_t)off * D + hh * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, S, T, V, 3 * D, 0.0f, out, D);
    esm2_kern_scale_rows(out, T, hd, D, inv);
  }
}

// h += b_o; x = LN2(h).
static void k_post_attn(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++) {
    float *h = f->ws->h + r * D;
    for (int i = 0; i < D; i++) h[i] += f->L->b_o[i];
    layernorm_row(h, f->ws->x + r * D, f->L->ln2_w, f->L->ln2_b, D, f->m->cfg.ln_eps);
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
    if (f->last) layernorm_row(h, h, f->m->lnf_w, f->m->lnf_b, D, f->m->cfg.ln_eps);
  }
}

// lm_head: x = LN(gelu(x + dense_b)).
static void k_lm(void *c, int64_t b, int64_t e, int tid) {
  fwd_t *f = c;
  int D = f->m->cfg.d_model;
  for (int64_t r = b; r < e; r++) {
    float *x = f->ws->x + r * D;
    for (int i = 0; i < D; i++) x[i] = gelu(x[i] + f->m->lm_dense_b[i]);
    layernorm_row(x, x, f->m->lm_ln_w, f->m->lm_ln_b, D, f->m->cfg.ln_eps);
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
  float beta;
  float *C;
} gemm_job_t;

// Rows [b, e) of C (M,N) = A (M,K) B^T (B is (N,K), a torch Linear weight) + beta C.
static void k_gemm(void *c, int64_t b, int64_t e, int tid) {
  gemm_job_t *g = c;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(e - b), g->N, g->K, 1.0f, g->A + b * g->K, g->K, g->B,
              g->K, g->beta, g->C + b * g->N, g->N);
}

// The projections: the pool's threads take contiguous row blocks, each a single-threaded sgemm
// (OpenBLAS itself runs one thread, so it never competes with the pool).
static void gemm_nt(esm2_ws_t *ws, int M, int N, int K, const float *A, const float *B, float beta, float *C) {
  gemm_job_t g = {N, K, A, B, beta, C};
  if (ws->nthreads <= 1 || M < 64) k_gemm(&g, 0, M, 0);
  else pfor(ws, M, k_gemm, &g);
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
    ws->tok_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(int));
    ws->res_off = ps_xmalloc(((size_t)n_seqs + 1) * sizeof(int));
    ws->cap_seq = (size_t)n_seqs;
  }
  size_t tt = (size_t)Tmax * Tmax + (size_t)Tmax;   // scores + 1/row sums
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
  ws->tok_off[0] = ws->res_off[0] = 0;
  for (int b = 0; b < n_seqs; b++) {
    ws->tok_off[b + 1] = ws->tok_off[b] + n_tokens[b];
    ws->res_off[b + 1] = ws->res_off[b] + n_tokens[b] - 2;
    for (int t = 0; t < n_tokens[b]; t++) ws->pos[ws->tok_off[b] + t] = t;
  }

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
  capture(m, ws, 0, n_tokens, req);

  fwd_t f = {.m = m, .ws = ws, .n_tokens = n_tokens, .q_scale = (float)pow((double)hd, -0.5)};
  int nt = (int)N;
  for (int l = 0; l < deepest; l++) {
    const esm2_layer_t *L = &m->layers[l];
    f.L = L;
    f.last = l == c->n_layers - 1;
    for (int t = 0; t < Tmax; t++)
      for (int i = 0; i < h2; i++) {
        float a = (float)t * L->inv_freq[i];
        ws->rope_cos[(size_t)t * h2 + i] = (float)cos((double)a);
        ws->rope_sin[(size_t)t * h2 + i] = (float)sin((double)a);
      }
    pfor(ws, nt, k_ln1, &f);
    gemm_nt(ws, nt, 3 * D, D, ws->x, L->w_qkv, 0.0f, ws->qkv);   // qkv (N,3D) = x W_qkv^T
    pfor(ws, nt, k_qkv, &f);
    pfor(ws, (int64_t)n_seqs * c->n_heads, k_attn, &f);
    gemm_nt(ws, nt, D, D, ws->ctx, L->w_o, 1.0f, ws->h);        // h += ctx W_o^T
    pfor(ws, nt, k_post_attn, &f);
    gemm_nt(ws, nt, F, D, ws->x, L->w_1, 0.0f, ws->ff);         // ff (N,F) = x W_1^T
    pfor(ws, nt, k_gelu, &f);
    gemm_nt(ws, nt, D, F, ws->ff, L->w_2, 1.0f, ws->h);         // h += ff W_2^T
    pfor(ws, nt, k_post_ff, &f);
    capture(m, ws, l + 1, n_tokens, req);
  }
  if (req->logits) {
    gemm_nt(ws, nt, D, D, ws->h, m->lm_dense_w, 0.0f, ws->x);
    pfor(ws, nt, k_lm, &f);
    for (size_t r = 0; r < N; r++) memcpy(ws->logits + r * V, m->lm_bias, V * sizeof(float));
    gemm_nt(ws, nt, V, D, ws->x, m->lm_dec_w, 1.0f, ws->logits);
  }
  return 0;
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
