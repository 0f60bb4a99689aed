// sae_files.c — see sae.h: an SAE directory written (cfg.json in SAELens v6's layout +
// sae_weights.safetensors, each atomically) and read (that layout, legacy SAELens, older protsae
// directories); a file path goes to sae_peer.c.
#include "sae.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"
#include "safetensors.h"

// The hook of an ESM layer in SAELens' (TransformerLens') naming: representations[L] (L >= 1) is
// the output of transformer block L-1, i.e. blocks.{L-1}.hook_resid_post; layer 0 is the
// embedding (hook_embed); an unknown layer (-1) is "protsae.layer_unknown" (no negative index).
static void esm_hook(int32_t layer, char *buf, size_t cap) {
  if (layer < 0) snprintf(buf, cap, "protsae.layer_unknown");
  else if (layer == 0) snprintf(buf, cap, "hook_embed");
  else snprintf(buf, cap, "blocks.%d.hook_resid_post", layer - 1);
}

// SAELens' architecture name (its registry): see sae.h.
static const char *saelens_arch(const sae_cfg_t *c) {
  int jump = c->arch == SAE_JUMPRELU || c->arch == SAE_BATCHTOPK;
  if (c->transcoder) return jump ? "jumprelu_transcoder" : c->arch == SAE_TOPK ? "topk_transcoder" : "transcoder";
  return jump ? "jumprelu" : c->arch == SAE_TOPK ? "topk" : "standard";
}

static char *cfg_json(const sae_cfg_t *c, float in_scale, float out_scale) {
  json_t *j = json_object();
  char hook[64];
  json_object_set_new(j, "architecture", json_string(saelens_arch(c)));
  json_object_set_new(j, "d_in", json_integer(c->d_in));
  json_object_set_new(j, "d_sae", json_integer(c->d_sae));
  json_object_set_new(j, "d_out", json_integer(c->d_out));
  json_object_set_new(j, "dtype", json_string("float32"));
  json_object_set_new(j, "device", json_string("cpu"));
  json_object_set_new(j, "apply_b_dec_to_input", json_boolean(c->apply_b_dec_to_input));
  json_object_set_new(j, "normalize_activations", json_string(c->normalize_per_sample ? "layer_norm" : "none"));
  json_object_set_new(j, "reshape_activations", json_string("none"));
  if (c->arch == SAE_TOPK || c->arch == SAE_BATCHTOPK) {
    json_object_set_new(j, "k", json_integer(c->k));
    json_object_set_new(j, "rescale_acts_by_decoder_norm", json_false());
  }
  if (c->transcoder) {
    esm_hook(c->target_layer, hook, sizeof hook);
    json_object_set_new(j, "hook_name_out", json_string(hook));
    json_object_set_new(j, "hook_layer_out", c->target_layer > 0 ? json_integer(c->target_layer - 1) : json_null());
    json_object_set_new(j, "hook_head_index_out", json_null());
  }
  json_t *m = json_object();  // SAEMetadata; sae_lens_version >= 6 selects SAELens' current loader
  json_object_set_new(m, "model_name", json_string(c->model_name[0] ? c->model_name : "esm2"));
  esm_hook(c->layer, hook, sizeof hook);
  json_object_set_new(m, "hook_name", json_string(hook));
  json_object_set_new(m, "hook_layer", c->layer > 0 ? json_integer(c->layer - 1) : json_null());
  json_object_set_new(m, "hook_head_index", json_null());
  json_object_set_new(m, "model_class_name", json_null());
  json_object_set_new(m, "model_from_pretrained_kwargs", json_object());
  json_object_set_new(m, "prepend_bos", json_true());  // ESM prepends <cls>
  json_object_set_new(m, "exclude_special_tokens", json_null());
  json_object_set_new(m, "neuronpedia_id", json_null());
  json_object_set_new(m, "context_size", json_null());
  json_object_set_new(m, "seqpos_slice", json_null());
  json_object_set_new(m, "dataset_path", json_null());
  json_object_set_new(m, "sae_lens_version", json_string(SAE_SAELENS_VERSION));
  json_object_set_new(m, "sae_lens_training_version", json_null());
  json_object_set_new(j, "metadata", m);
  json_object_set_new(j, "protsae_arch", json_string(sae_arch_name(c->arch)));
  json_object_set_new(j, "protsae_level", json_string(c->level));
  json_object_set_new(j, "protsae_layer", json_integer(c->layer));
  json_object_set_new(j, "protsae_target_layer", json_integer(c->target_layer));
  if (c->transcoder) json_object_set_new(j, "protsae_target", json_string(c->target_delta ? "delta" : "raw"));
  json_object_set_new(j, "protsae_in_scale_folded", json_real(in_scale));
  json_object_set_new(j, "protsae_out_scale_folded", json_real(out_scale));
  char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  return txt;
}

int sae_save(const sae_t *s, const char *dir, float in_scale, float out_scale, ps_err_t *err) {
  const sae_cfg_t *c = &s->cfg;
  int64_t d = c->d_in, n = c->d_sae, o = c->d_out;
  char path[4096];
  char *txt = cfg_json(c, in_scale, out_scale);
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

static const char *jstr(json_t *j, const char *key) { return json_string_value(json_object_get(j, key)); }

// An ESM layer from a SAELens hook name (the inverse of esm_hook), or -1.
static int32_t hook_layer_of(const char *h) {
  int n = -1, end = 0;
  if (!h) return -1;
  if (!strcmp(h, "hook_embed")) return 0;
  if (sscanf(h, "blocks.%d.hook_resid_post%n", &n, &end) == 1 && !h[end] && n >= 0) return n + 1;
  return -1;
}

int sae_load(sae_t **out, const char *dir, ps_err_t *err) {
  *out = NULL;
  struct stat sb;
  if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode)) return sae_load_peer(out, dir, err);
  char path[4096];
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) return ps_err_set(err, PS_EFORMAT, "%s:%d:%d: %s", path, je.line, je.column, je.text);
  if (!json_is_object(j)) {
    json_decref(j);
    return ps_err_set(err, PS_EFORMAT, "%s: not a JSON object", path);
  }
  // Three layouts: protsae's (protsae_* fields), SAELens >= 6 (the "metadata" object) and legacy
  // SAELens (model_name, hook_name, hook_layer, activation_fn... at the top).
  json_t *meta = json_object_get(j, "metadata");
  if (!json_is_object(meta)) meta = j;
  sae_cfg_t c;
  sae_cfg_default(&c);
  const char *sl_arch = jstr(j, "architecture");
  const char *arch = jstr(j, "protsae_arch");
  size_t al = sl_arch ? strlen(sl_arch) : 0;
  int tc_arch = al >= 10 && !strcmp(sl_arch + al - 10, "transcoder");  // also beside protsae_arch (d_in = d_out)
  if (!arch && sl_arch) {
    arch = !strcmp(sl_arch, "transcoder") ? "relu" : !strcmp(sl_arch, "jumprelu_transcoder") ? "jumprelu"
           : !strcmp(sl_arch, "topk_transcoder") ? "topk" : sl_arch;
  }
  const char *act = jstr(j, "activation_fn");
  if (!act) act = jstr(j, "activation_fn_str");
  if (!arch) arch = (act && !strcmp(act, "topk")) ? "topk" : "standard";
  int rc = 0;
  if (sae_arch_parse(arch, &c.arch)) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: architecture \"%s\" is not supported (standard, relu, topk, batchtopk, "
                                     "jumprelu, transcoder, jumprelu_transcoder, topk_transcoder)", path, arch);
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
  const char *na = jstr(j, "normalize_activations");
  if (na && strcmp(na, "none") && strcmp(na, "layer_norm")) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: normalize_activations \"%s\" is not supported (none, layer_norm)", path, na);
    goto out;
  }
  c.normalize_per_sample = na && !strcmp(na, "layer_norm");
  c.transcoder = tc_arch || json_is_true(json_object_get(j, "is_transcoder")) || c.d_out != c.d_in;
  if (jstr(j, "protsae_arch") && !json_object_get(j, "protsae_layer"))
    c.layer = (int32_t)jint(j, "hook_layer", -1);  // protsae before SAELens v6 metadata: ESM numbering
  else {
    int32_t hl = hook_layer_of(jstr(meta, "hook_name"));
    if (hl < 0 && jint(meta, "hook_layer", -1) >= 0) hl = (int32_t)jint(meta, "hook_layer", -1) + 1;
    c.layer = (int32_t)jint(j, "protsae_layer", hl);
  }
  c.target_layer = (int32_t)jint(j, "protsae_target_layer", hook_layer_of(jstr(j, "hook_name_out")));
  const char *tm = jstr(j, "protsae_target");  // absent (SAELens' own transcoders): raw
  c.target_delta = c.transcoder && tm && !strcmp(tm, "delta");
  const char *lv = jstr(j, "protsae_level");
  if (lv) snprintf(c.level, sizeof c.level, "%s", lv);
  const char *mn = jstr(meta, "model_name");
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
