// sae.c — see sae.h: the model (configuration, parameters). Files: sae_files.c; the TopK and
// normalisation kernels: sae_kernels.c; encoding: sae_encode.c.
#include "sae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *arch_names[] = {"relu", "topk", "batchtopk", "jumprelu"};

const char *sae_arch_name(sae_arch_t a) { return (unsigned)a < 4 ? arch_names[a] : "?"; }

int sae_arch_parse(const char *s, sae_arch_t *out) {
  if (!s) return PS_ECONFIG;
  if (!strcmp(s, "standard") || !strcmp(s, "relu")) {
    *out = SAE_RELU;
    return 0;
  }
  for (int i = 1; i < 4; i++)
    if (!strcmp(s, arch_names[i])) {
      *out = (sae_arch_t)i;
      return 0;
    }
  return PS_ECONFIG;
}

void sae_cfg_default(sae_cfg_t *c) {
  memset(c, 0, sizeof *c);
  c->arch = SAE_TOPK;
  c->k = 32;
  c->apply_b_dec_to_input = 1;
  c->layer = -1;
  c->target_layer = -1;
  snprintf(c->level, sizeof c->level, "protein");
}

static int cfg_check(const sae_cfg_t *c, ps_err_t *err) {
  if (c->d_in <= 0 || c->d_sae <= 0 || c->d_out <= 0 || c->d_in > (1 << 20) || c->d_out > (1 << 20) ||
      c->d_sae > (1 << 28))
    return ps_err_set(err, PS_EDIM, "sae: bad dimensions d_in=%lld d_sae=%lld d_out=%lld", (long long)c->d_in,
                      (long long)c->d_sae, (long long)c->d_out);
  if ((unsigned)c->arch > SAE_JUMPRELU) return ps_err_set(err, PS_ECONFIG, "sae: unknown architecture %d", c->arch);
  if ((c->arch == SAE_TOPK || c->arch == SAE_BATCHTOPK) && (c->k < 1 || c->k > c->d_sae))
    return ps_err_set(err, PS_ECONFIG, "sae: k=%d must be in [1, d_sae=%lld]", c->k, (long long)c->d_sae);
  if (c->apply_b_dec_to_input && c->d_in != c->d_out)
    return ps_err_set(err, PS_EDIM, "sae: apply_b_dec_to_input needs d_in == d_out (%lld != %lld)",
                      (long long)c->d_in, (long long)c->d_out);
  return 0;
}

static void sae_views(sae_t *s) {
  int64_t d = s->cfg.d_in, n = s->cfg.d_sae, o = s->cfg.d_out;
  s->W_encT = s->params;
  s->b_enc = s->W_encT + n * d;
  s->W_dec = s->b_enc + n;
  s->b_dec = s->W_dec + n * o;
}

int sae_new(sae_t **out, const sae_cfg_t *cfg, ps_err_t *err) {
  *out = NULL;
  int rc = cfg_check(cfg, err);
  if (rc) return rc;
  sae_t *s = ps_xcalloc(1, sizeof *s);
  s->cfg = *cfg;
  int64_t d = cfg->d_in, n = cfg->d_sae, o = cfg->d_out;
  s->n_params = (size_t)(n * d + n + n * o + o);
  size_t bytes = (s->n_params * sizeof(float) + 63) & ~(size_t)63;
  s->params = aligned_alloc(64, bytes);
  if (!s->params) {
    free(s);
    return ps_err_set(err, PS_ENOMEM, "sae: cannot allocate %zu bytes of parameters", bytes);
  }
  memset(s->params, 0, bytes);
  sae_views(s);
  if (cfg->arch == SAE_JUMPRELU || cfg->arch == SAE_BATCHTOPK) s->threshold = ps_xcalloc((size_t)n, sizeof(float));
  *out = s;
  return 0;
}

void sae_free(sae_t **sp) {
  if (!sp || !*sp) return;
  free((*sp)->params);
  free((*sp)->threshold);
  free(*sp);
  *sp = NULL;
}

int sae_copy(sae_t **out, const sae_t *src, ps_err_t *err) {
  int rc = sae_new(out, &src->cfg, err);
  if (rc) return rc;
  memcpy((*out)->params, src->params, src->n_params * sizeof(float));
  if (src->threshold) memcpy((*out)->threshold, src->threshold, (size_t)src->cfg.d_sae * sizeof(float));
  return 0;
}
