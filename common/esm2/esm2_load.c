// esm2_load.c — loading an ESM2 checkpoint: config.json (EsmConfig) and the safetensors weights
// (one file or shards named by the index), converted to float32 into the model's slab. Errors
// name the file and the key or tensor. See esm2.h.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "esm2_priv.h"
#include "safetensors.h"

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
    esm2_set_vocab(c, toks, (int)n);
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
    esm2_set_vocab(c, esm2_default_vocab, 33);
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
  if (esm2_model_alloc(m) < 0) {
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
