// sae_peer.c — sae_load_peer (sae.h): a peer's trained dictionary from a torch.save file (an
// InterPLM / dictionary_learning ae.pt, the reference study's Lightning .ckpt, or a SAELens-like
// state_dict), read with the pickle reader of ptfile.h and mapped onto sae_t.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptfile.h"
#include "sae.h"

// The four tensors of a layout, in the order W_enc, b_enc, W_dec, b_dec; enc_t / dec_t: stored
// transposed relative to SAELens ([d_sae, d_in] / [d_out, d_sae]).
typedef struct layout {
  const char *what;
  const char *names[4];
  const char *alt_b_dec;
  int enc_t, dec_t;
  sae_arch_t arch;
  int normalize;
} layout_t;

static const layout_t LAYOUTS[] = {
    {"dictionary_learning (InterPLM ae.pt)", {"encoder.weight", "encoder.bias", "decoder.weight", "bias"}, "b_dec", 1, 1,
     SAE_RELU, 0},
    {"the reference study's TopKAuto (Lightning)", {"weights.0", "weights.2", "weights.1", "weights.3"}, NULL, 0, 0,
     SAE_TOPK, 1},
    {"SAELens", {"W_enc", "b_enc", "W_dec", "b_dec"}, NULL, 0, 0, SAE_RELU, 0},
};
#define N_LAYOUTS (sizeof LAYOUTS / sizeof LAYOUTS[0])

// A tensor named prefix + leaf, or -1.
static int64_t find(const pt_state_t *st, const char *prefix, const char *leaf) {
  char name[512];
  snprintf(name, sizeof name, "%s%s", prefix, leaf);
  return pt_state_find(st, name);
}

// The layout whose first tensor is present as PREFIX + name (PREFIX empty or ending in '.').
static const layout_t *detect(const pt_state_t *st, char *prefix, size_t cap) {
  for (size_t l = 0; l < N_LAYOUTS; l++)
    for (size_t i = 0; i < pt_state_count(st); i++) {
      const char *nm = pt_state_name(st, i), *leaf = LAYOUTS[l].names[0];
      size_t nl = strlen(nm), ll = strlen(leaf);
      if (nl < ll || strcmp(nm + nl - ll, leaf) || (nl > ll && nm[nl - ll - 1] != '.') || nl - ll >= cap) continue;
      memcpy(prefix, nm, nl - ll);
      prefix[nl - ll] = 0;
      return &LAYOUTS[l];
    }
  return NULL;
}

static void shape_str(const pt_tensor_info_t *ti, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(buf, cap, "[");
  for (int k = 0; k < ti->ndim && o + 24 < cap; k++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%llu", k ? ", " : "", (unsigned long long)ti->shape[k]);
  snprintf(buf + o, cap - o, "]");
}

// Check tensor idx has shape [r] (c = 0) or [r, c].
static int check_shape(const pt_state_t *st, const char *path, int64_t idx, int64_t r, int64_t c, ps_err_t *err) {
  pt_tensor_info_t ti;
  pt_state_info(st, (size_t)idx, &ti);
  int nd = c ? 2 : 1;
  if (ti.ndim == nd && ti.shape[0] == (uint64_t)r && (nd == 1 || ti.shape[1] == (uint64_t)c)) return 0;
  char sb[128];
  shape_str(&ti, sb, sizeof sb);
  if (c)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has shape %s; [%lld, %lld] expected", path,
                      pt_state_name(st, (size_t)idx), sb, (long long)r, (long long)c);
  return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has shape %s; [%lld] expected", path, pt_state_name(st, (size_t)idx),
                    sb, (long long)r);
}

// Architecture and k from hyper_parameters, the layout and the environment.
static int pick_arch(pt_state_t *st, const layout_t *L, int has_threshold, int64_t k_idx, const char *path,
                     sae_cfg_t *c, ps_err_t *err) {
  char ab[32];
  int64_t k = 0;
  int has_k = pt_state_hparam_int(st, "k", &k);
  if (!has_k && k_idx >= 0) {  // dictionary_learning's AutoEncoderTopK keeps k as a buffer
    double kv;
    int rc = pt_state_scalar(st, (size_t)k_idx, &kv, err);
    if (rc < 0) return rc;
    if (kv != floor(kv) || kv < 1 || kv > 1e9)
      return ps_err_set(err, PS_EFORMAT, "%s: tensor '%s' = %g is not a valid k", path, pt_state_name(st, (size_t)k_idx),
                        kv);
    k = (int64_t)kv;
    has_k = 1;
  }
  const char *an = pt_state_hparam_str(st, "architecture", ab, sizeof ab);
  c->arch = has_threshold ? SAE_JUMPRELU : L->arch;
  if (an) {
    if (sae_arch_parse(an, &c->arch))
      return ps_err_set(err, PS_EUNSUPP, "%s: hyper_parameters.architecture \"%s\" is not supported", path, an);
  } else if (has_k) {
    c->arch = SAE_TOPK;
  }
  if (c->arch != SAE_TOPK && c->arch != SAE_BATCHTOPK) return 0;
  if (!has_k) {
    const char *e = getenv(SAE_K_ENV);
    char *end = NULL;
    if (!e || !*e)
      return ps_err_set(err, PS_ECONFIG, "%s: a TopK checkpoint without hyper_parameters.k: set %s to its k", path,
                        SAE_K_ENV);
    k = strtoll(e, &end, 10);
    if (*end) return ps_err_set(err, PS_ECONFIG, "%s=%s: not an integer", SAE_K_ENV, e);
  }
  if (k < 1 || k > c->d_sae)
    return ps_err_set(err, PS_ECONFIG, "%s: k = %lld is outside [1, d_sae = %lld]", path, (long long)k,
                      (long long)c->d_sae);
  c->k = (int32_t)k;
  return 0;
}

static int load_tensors(sae_t *s, pt_state_t *st, const layout_t *L, const int64_t idx[5], const char *path,
                        ps_err_t *err) {
  int64_t d = s->cfg.d_in, n = s->cfg.d_sae, o = s->cfg.d_out;
  float *tmp = ps_xmalloc((size_t)(n * (d > o ? d : o)) * sizeof(float));
  int rc = pt_state_read(st, (size_t)idx[0], tmp, (size_t)(n * d), err);
  if (!rc) {
    if (L->enc_t) memcpy(s->W_encT, tmp, (size_t)(n * d) * sizeof(float));
    else
      for (int64_t i = 0; i < d; i++)
        for (int64_t j = 0; j < n; j++) s->W_encT[j * d + i] = tmp[i * n + j];
  }
  if (!rc) rc = pt_state_read(st, (size_t)idx[1], s->b_enc, (size_t)n, err);
  if (!rc) rc = pt_state_read(st, (size_t)idx[2], tmp, (size_t)(n * o), err);
  if (!rc) {
    if (!L->dec_t) memcpy(s->W_dec, tmp, (size_t)(n * o) * sizeof(float));
    else
      for (int64_t i = 0; i < o; i++)
        for (int64_t j = 0; j < n; j++) s->W_dec[j * o + i] = tmp[i * n + j];
  }
  if (!rc) rc = pt_state_read(st, (size_t)idx[3], s->b_dec, (size_t)o, err);
  if (!rc && s->threshold) rc = pt_state_read(st, (size_t)idx[4], s->threshold, (size_t)n, err);
  free(tmp);
  for (size_t i = 0; !rc && i < s->n_params; i++)
    if (!isfinite(s->params[i])) rc = ps_err_set(err, PS_ENAN, "%s: non-finite parameter at flat index %zu", path, i);
  return rc;
}

int sae_load_peer(sae_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  pt_state_t *st = NULL;
  int rc = pt_state_open(&st, path, err);
  if (rc < 0) return rc;
  char prefix[256];
  const layout_t *L = detect(st, prefix, sizeof prefix);
  if (!L) {
    char names[300];
    size_t o = 0;
    names[0] = 0;
    for (size_t i = 0; i < pt_state_count(st) && i < 8 && o + 64 < sizeof names; i++)
      o += (size_t)snprintf(names + o, sizeof names - o, "%s'%.48s'", i ? ", " : "", pt_state_name(st, i));
    rc = ps_err_set(err, PS_EFORMAT,
                    "%s: no known SAE layout (encoder.weight | weights.0 | W_enc, maybe behind a prefix); tensors: %s%s",
                    path, names, pt_state_count(st) > 8 ? ", ..." : "");
    goto out;
  }
  int64_t idx[5] = {-1, -1, -1, -1, -1};
  for (int t = 0; t < 4; t++) {
    idx[t] = find(st, prefix, L->names[t]);
    if (idx[t] < 0 && t == 3 && L->alt_b_dec) idx[t] = find(st, prefix, L->alt_b_dec);
    if (idx[t] < 0) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: tensor '%s%s' missing (%s layout: %s%s, %s%s, %s%s, %s%s)", path, prefix,
                      L->names[t], L->what, prefix, L->names[0], prefix, L->names[1], prefix, L->names[2], prefix,
                      L->names[3]);
      goto out;
    }
  }
  idx[4] = find(st, prefix, "threshold");
  if (idx[4] >= 0) {  // a JumpReLU threshold is [d_sae]; a scalar one (dictionary_learning TopK's) is not used
    pt_tensor_info_t th;
    pt_state_info(st, (size_t)idx[4], &th);
    if (th.ndim != 1) idx[4] = -1;
  }
  pt_tensor_info_t te, tb;  // d_in and d_sae from the encoder matrix, d_out from b_dec
  pt_state_info(st, (size_t)idx[0], &te);
  pt_state_info(st, (size_t)idx[3], &tb);
  int bad_e = te.ndim != 2 || !te.shape[0] || !te.shape[1];
  if (bad_e || tb.ndim != 1 || !tb.shape[0]) {
    char sb[128];
    shape_str(bad_e ? &te : &tb, sb, sizeof sb);
    rc = ps_err_set(err, PS_EDIM, "%s: tensor '%s' has shape %s; a non-empty %s expected", path,
                    pt_state_name(st, (size_t)idx[bad_e ? 0 : 3]), sb, bad_e ? "matrix" : "vector");
    goto out;
  }
  sae_cfg_t c;
  sae_cfg_default(&c);
  c.d_sae = (int64_t)(L->enc_t ? te.shape[0] : te.shape[1]);
  c.d_in = (int64_t)(L->enc_t ? te.shape[1] : te.shape[0]);
  c.d_out = (int64_t)tb.shape[0];
  if ((rc = check_shape(st, path, idx[0], L->enc_t ? c.d_sae : c.d_in, L->enc_t ? c.d_in : c.d_sae, err)) ||
      (rc = check_shape(st, path, idx[1], c.d_sae, 0, err)) ||
      (rc = check_shape(st, path, idx[2], L->dec_t ? c.d_out : c.d_sae, L->dec_t ? c.d_sae : c.d_out, err)) ||
      (rc = check_shape(st, path, idx[3], c.d_out, 0, err)))
    goto out;
  c.transcoder = c.d_out != c.d_in;
  c.apply_b_dec_to_input = !c.transcoder;
  c.normalize_per_sample = L->normalize;
  int64_t layer;
  if (pt_state_hparam_int(st, "layer", &layer) && layer >= 0 && layer < INT32_MAX) c.layer = (int32_t)layer;
  if ((rc = pick_arch(st, L, idx[4] >= 0, find(st, prefix, "k"), path, &c, err))) goto out;
  if ((c.arch == SAE_JUMPRELU || c.arch == SAE_BATCHTOPK)) {
    if (idx[4] < 0) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: tensor '%sthreshold' missing (a %s SAE needs it)", path, prefix,
                      sae_arch_name(c.arch));
      goto out;
    }
    if ((rc = check_shape(st, path, idx[4], c.d_sae, 0, err))) goto out;
  }
  for (int t = 0; t < 5; t++) {  // each backed by the file (cap = 0 validates) before allocating
    if (idx[t] < 0 || (t == 4 && !(c.arch == SAE_JUMPRELU || c.arch == SAE_BATCHTOPK))) continue;
    rc = pt_state_read(st, (size_t)idx[t], NULL, 0, err);
    if (rc == 0) rc = ps_err_set(err, PS_EDIM, "%s: tensor '%s' is empty", path, pt_state_name(st, (size_t)idx[t]));
    if (rc != PS_EDIM) goto out;
    rc = 0;
  }
  if ((rc = sae_new(out, &c, err))) {
    ps_err_prefix(err, "%s: ", path);
    goto out;
  }
  if ((rc = load_tensors(*out, st, L, idx, path, err))) sae_free(out);
out:
  pt_state_destroy(&st);
  return rc;
}
