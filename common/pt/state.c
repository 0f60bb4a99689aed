// state.c — a torch.save file of model weights: a bare state_dict (InterPLM's ae.pt) or a PyTorch
// Lightning checkpoint ({"state_dict": ..., "hyper_parameters": ..., ...}); the tensors by name and
// the hyper-parameters by key. See ptfile.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct st_ref {
  char *name;
  pv_t *t;
} st_ref_t;

struct pt_state {
  pt_pickled_t pk;
  int checkpoint;
  pv_t *hparams;  // a dict or NULL
  st_ref_t *refs;
  size_t n;
};

void pt_state_destroy(pt_state_t **sp) {
  if (!sp || !*sp) return;
  pt_state_t *s = *sp;
  for (size_t i = 0; i < s->n; i++) free(s->refs[i].name);
  free(s->refs);
  pt_pickled_close(&s->pk);
  free(s);
  *sp = NULL;
}

int pt_state_open(pt_state_t **out, const char *path, ps_err_t *err) {
  ps_err_t local;
  if (!err) err = &local;  // the interpreter reads err->code
  *out = NULL;
  pt_state_t *s = ps_xcalloc(1, sizeof *s);
  int rc = pt_pickled_open(&s->pk, path, err);
  if (rc < 0) goto fail;
  pv_t *sd = s->pk.root;
  if (sd->kind != PV_DICT) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: the saved object is a %s, not a state_dict or a checkpoint dict", path,
                    s->pk.pkl_name, pt_kind_name(sd->kind));
    goto fail;
  }
  pv_t *inner = pt_dict_get(sd, "state_dict");
  if (inner) {
    if (inner->kind != PV_DICT) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: \"state_dict\" is a %s, not a dict", path, s->pk.pkl_name,
                      inner->pos, pt_kind_name(inner->kind));
      goto fail;
    }
    s->checkpoint = 1;
    pv_t *hp = pt_dict_get(sd, "hyper_parameters");
    if (hp && hp->kind == PV_DICT) s->hparams = hp;
    sd = inner;
  }
  s->refs = ps_xcalloc(sd->n / 2 + 1, sizeof *s->refs);
  for (size_t k = 0; k + 1 < sd->n; k += 2) {
    pv_t *key = sd->items[k], *val = sd->items[k + 1];
    if (key->kind != PV_STR || val->kind != PV_TENSOR || memchr(key->s, 0, key->len)) continue;
    size_t j = 0;
    while (j < s->n && (strlen(s->refs[j].name) != key->len || memcmp(s->refs[j].name, key->s, key->len))) j++;
    if (j == s->n) {
      s->refs[j].name = ps_xmalloc(key->len + 1);
      memcpy(s->refs[j].name, key->s, key->len);
      s->refs[j].name[key->len] = 0;
      s->n++;
    }
    s->refs[j].t = val;
  }
  if (!s->n) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: the %s holds no tensors", path, s->pk.pkl_name,
                    s->checkpoint ? "checkpoint's state_dict" : "saved dict");
    goto fail;
  }
  *out = s;
  return 0;
fail:
  pt_state_destroy(&s);
  return rc;
}

size_t pt_state_count(const pt_state_t *s) { return s->n; }
const char *pt_state_name(const pt_state_t *s, size_t i) { return s->refs[i].name; }
int pt_state_is_checkpoint(const pt_state_t *s) { return s->checkpoint; }

int64_t pt_state_find(const pt_state_t *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (!strcmp(s->refs[i].name, name)) return (int64_t)i;
  return -1;
}

void pt_state_info(const pt_state_t *s, size_t i, pt_tensor_info_t *info) { pt_pickled_info(s->refs[i].t, info); }

int pt_state_read(pt_state_t *s, size_t i, float *out, size_t cap, ps_err_t *err) {
  char what[300];
  snprintf(what, sizeof what, "%s['%s']", s->checkpoint ? "state_dict" : "tensor", s->refs[i].name);
  return pt_pickled_read(&s->pk, s->refs[i].t, what, out, cap, err);
}

int pt_state_scalar(pt_state_t *s, size_t i, double *out, ps_err_t *err) {
  pt_tensor_info_t info;
  pt_pickled_info(s->refs[i].t, &info);
  if (info.numel != 1)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s' has %llu elements; a scalar expected", s->pk.path, s->refs[i].name,
                      (unsigned long long)info.numel);
  char what[300];
  float v;
  snprintf(what, sizeof what, "%s['%s']", s->checkpoint ? "state_dict" : "tensor", s->refs[i].name);
  int rc = pt_pickled_read_ex(&s->pk, s->refs[i].t, what, 1, &v, 1, err);
  if (!rc) *out = v;
  return rc;
}

int pt_state_hparam_int(const pt_state_t *s, const char *key, int64_t *out) {
  pv_t *v = s->hparams ? pt_dict_get(s->hparams, key) : NULL;
  if (!v || (v->kind != PV_INT && v->kind != PV_BOOL)) return 0;
  *out = v->i;
  return 1;
}

const char *pt_state_hparam_str(const pt_state_t *s, const char *key, char *buf, size_t cap) {
  pv_t *v = s->hparams ? pt_dict_get(s->hparams, key) : NULL;
  if (!v || v->kind != PV_STR || !cap || memchr(v->s, 0, v->len)) return NULL;
  size_t n = v->len < cap - 1 ? v->len : cap - 1;
  memcpy(buf, v->s, n);
  buf[n] = 0;
  return buf;
}
