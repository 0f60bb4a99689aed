// sae_files.c — see sae.h: an SAE directory written (cfg.json + sae_weights.safetensors, each
// atomically) and read, in protsae's and SAELens' formats.
#include "sae.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "safetensors.h"

int sae_save(const sae_t *s, const char *dir, float in_scale, float out_scale, ps_err_t *err) {
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out;
  char path[4096];
  // cfg.json: SAELens field names, plus protsae's own.
  json_t *j = json_object();
  const char *arch = c->arch == SAE_RELU ? "standard" : c->arch == SAE_BATCHTOPK ? "jumprelu" : sae_arch_name(c->arch);
  json_object_set_new(j, "architecture", json_string(arch));
  json_object_set_new(j, "d_in", json_integer(d));
  json_object_set_new(j, "d_sae", json_integer(n));
  json_object_set_new(j, "d_out", json_integer(o));
  json_object_set_new(j, "dtype", json_string("float32"));
  json_object_set_new(j, "device", json_string("cpu"));
  json_object_set_new(j, "apply_b_dec_to_input", json_boolean(c->apply_b_dec_to_input));
  json_object_set_new(j, "normalize_activations", json_string(c->normalize_per_sample ? "layer_norm" : "none"));
  json_object_set_new(j, "activation_fn", json_string(c->arch == SAE_TOPK ? "topk" : "relu"));
  json_t *kw = json_object();
  if (c->arch == SAE_TOPK || c->arch == SAE_BATCHTOPK) {
    json_object_set_new(kw, "k", json_integer(c->k));
    json_object_set_new(j, "k", json_integer(c->k));
  }
  json_object_set_new(j, "activation_fn_kwargs", kw);
  json_object_set_new(j, "model_name", json_string(c->model_name[0] ? c->model_name : "esm2"));
  char hook[64];
  snprintf(hook, sizeof hook, "layers.%d", c->layer);
  json_object_set_new(j, "hook_name", json_string(hook));
  json_object_set_new(j, "hook_layer", json_integer(c->layer));
  json_object_set_new(j, "is_transcoder", json_boolean(c->transcoder));
  json_object_set_new(j, "protsae_arch", json_string(sae_arch_name(c->arch)));
  json_object_set_new(j, "protsae_level", json_string(c->level));
  json_object_set_new(j, "protsae_target_layer", json_integer(c->target_layer));
  json_object_set_new(j, "protsae_in_scale_folded", json_real(in_scale));
  json_object_set_new(j, "protsae_out_scale_folded", json_real(out_scale));
  char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  int rc = ps_write_file_atomic(path, txt, strlen(txt), err);
  free(txt);
  if (rc) return rc;

  st_writer_t *w = NULL;
  snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
  if ((rc = st_writer_open(&w, path, err))) return rc;
  st_writer_set_metadata(w, "format", "pt", err);
  st_writer_set_metadata(w, "producer", "protsae", err);
  uint64_t sh[2];
  float *buf = ps_xmalloc((size_t)(d > o ? d : o) * sizeof(float));
  // W_enc [d_in, d_sae]: row i = column i of W_encT.
  float *row = ps_xmalloc((size_t)n * sizeof(float));
  sh[0] = (uint64_t)d;
  sh[1] = (uint64_t)n;
  rc = st_writer_begin(w, "W_enc", ST_F32, sh, 2, err);
  for (int64_t i = 0; !rc && i < d; i++) {
    for (int64_t jj = 0; jj < n; jj++) row[jj] = s->W_encT[jj * d + i] * in_scale;
    rc = st_writer_append_f32(w, row, (uint64_t)n, err);
  }
  if (!rc) rc = st_writer_end(w, err);
  sh[0] = (uint64_t)n;
  if (!rc) rc = st_writer_add_f32(w, "b_enc", ST_F32, sh, 1, s->b_enc, err);
  sh[0] = (uint64_t)n;
  sh[1] = (uint64_t)o;
  if (!rc) rc = st_writer_begin(w, "W_dec", ST_F32, sh, 2, err);
  for (int64_t jj = 0; !rc && jj < n; jj++) {
    for (int64_t i = 0; i < o; i++) buf[i] = s->W_dec[jj * o + i] / out_scale;
    rc = st_writer_append_f32(w, buf, (uint64_t)o, err);
  }
  if (!rc) rc = st_writer_end(w, err);
  sh[0] = (uint64_t)o;
  for (int64_t i = 0; i < o; i++) buf[i] = s->b_dec[i] / out_scale;
  if (!rc) rc = st_writer_add_f32(w, "b_dec", ST_F32, sh, 1, buf, err);
  if (!rc && s->threshold) {
    sh[0] = (uint64_t)n;
    rc = st_writer_add_f32(w, "threshold", ST_F32, sh, 1, s->threshold, err);
  }
  free(buf);
  free(row);
  if (rc) {
    st_writer_abort(&w);
    return rc;
  }
  return st_writer_close(&w, err);
}

static int64_t jint(json_t *j, const char *key, int64_t def) {
  json_t *v = json_object_get(j, key);
  return json_is_integer(v) ? json_integer_value(v) : def;
}

int sae_load(sae_t **out, const char *dir, ps_err_t *err) {
  *out = NULL;
  char path[4096];
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) return ps_err_set(err, PS_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return ps_err_set(err, PS_EFORMAT, "%s: not a JSON object", path);
  }
  sae_cfg_t c;
  sae_cfg_default(&c);
  const char *arch = json_string_value(json_object_get(j, "protsae_arch"));
  if (!arch) arch = json_string_value(json_object_get(j, "architecture"));
  const char *act = json_string_value(json_object_get(j, "activation_fn"));
  if (!act) act = json_string_value(json_object_get(j, "activation_fn_str"));
  if (!arch) arch = (act && !strcmp(act, "topk")) ? "topk" : "standard";
  int rc = 0;
  if (sae_arch_parse(arch, &c.arch)) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: architecture \"%s\" is not supported (standard, relu, topk, batchtopk, "
                                     "jumprelu)", path, arch);
    goto out;
  }
  if (c.arch == SAE_RELU && act && !strcmp(act, "topk")) c.arch = SAE_TOPK;
  c.d_in = jint(j, "d_in", -1);
  c.d_sae = jint(j, "d_sae", -1);
  c.d_out = jint(j, "d_out", c.d_in);
  json_t *kw = json_object_get(j, "activation_fn_kwargs");
  c.k = (int32_t)jint(j, "k", json_is_object(kw) ? jint(kw, "k", 0) : 0);
  json_t *ab = json_object_get(j, "apply_b_dec_to_input");
  c.apply_b_dec_to_input = ab ? json_is_true(ab) : (c.d_in == c.d_out);
  const char *na = json_string_value(json_object_get(j, "normalize_activations"));
  if (na && strcmp(na, "none") && strcmp(na, "layer_norm")) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: normalize_activations \"%s\" is not supported (none, layer_norm)", path, na);
    goto out;
  }
  c.normalize_per_sample = na && !strcmp(na, "layer_norm");
  c.transcoder = json_is_true(json_object_get(j, "is_transcoder")) || c.d_out != c.d_in;
  c.layer = (int32_t)jint(j, "hook_layer", -1);
  c.target_layer = (int32_t)jint(j, "protsae_target_layer", -1);
  const char *lv = json_string_value(json_object_get(j, "protsae_level"));
  if (lv) snprintf(c.level, sizeof c.level, "%s", lv);
  const char *mn = json_string_value(json_object_get(j, "model_name"));
  if (mn) snprintf(c.model_name, sizeof c.model_name, "%s", mn);
  if ((rc = sae_new(out, &c, err))) {
    ps_err_prefix(err, "%s: ", path);
    goto out;
  }
  sae_t *s = *out;
  int64_t d = c.d_in, n = c.d_sae, o = c.d_out;
  snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
  st_file_t *f = NULL;
  if ((rc = st_open(&f, path, err))) goto fail;
  struct { const char *name; int64_t r, c; float *dst; } t[] = {
      {"W_enc", d, n, NULL}, {"b_enc", n, 0, s->b_enc}, {"W_dec", n, o, s->W_dec}, {"b_dec", o, 0, s->b_dec},
      {"threshold", n, 0, s->threshold}};
  float *tmp = ps_xmalloc((size_t)(d * n) * sizeof(float));
  t[0].dst = tmp;
  for (int i = 0; i < 5 && !rc; i++) {
    if (i == 4 && !s->threshold) break;
    const st_tensor_info_t *ti = st_tensor_find(f, t[i].name);
    if (!ti) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: tensor %s missing", path, t[i].name);
      break;
    }
    int want_nd = t[i].c ? 2 : 1;
    if (ti->ndim != want_nd || ti->shape[0] != (uint64_t)t[i].r || (want_nd == 2 && ti->shape[1] != (uint64_t)t[i].c)) {
      rc = ps_err_set(err, PS_EDIM, "%s: tensor %s has shape [%llu%s%llu], cfg.json says [%lld%s%lld]", path,
                      t[i].name, (unsigned long long)ti->shape[0], ti->ndim > 1 ? ", " : "",
                      ti->ndim > 1 ? (unsigned long long)ti->shape[1] : 0ULL, (long long)t[i].r, want_nd > 1 ? ", " : "",
                      (long long)(want_nd > 1 ? t[i].c : 0));
      break;
    }
    rc = st_read_f32(f, t[i].name, t[i].dst, ti->n_elems, err);
  }
  if (!rc)
    for (int64_t i = 0; i < d; i++)
      for (int64_t jj = 0; jj < n; jj++) s->W_encT[jj * d + i] = tmp[i * n + jj];
  free(tmp);
  st_close(&f);
  if (!rc)
    for (size_t i = 0; i < s->n_params; i++)
      if (!isfinite(s->params[i])) {
        rc = ps_err_set(err, PS_ENAN, "%s: non-finite parameter at flat index %zu", path, i);
        break;
      }
fail:
  if (rc) sae_free(out);
out:
  json_decref(j);
  return rc;
}
