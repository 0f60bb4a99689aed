// tensor.c — the torch layer of a .pt file: open the archive (zip.c), run data.pkl (pickle.c),
// find extract.py's dict ("label", "representations", "mean_representations"), and decode a
// tensor from its storage entry as float32 (float32/16, bfloat16, float64; any storage offset;
// row-major contiguous only). See ptfile.h.
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

// A byte string fit for a message: printable ASCII kept, the rest escaped, long ones shortened.
const char *pt_show(const char *s, size_t len, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 8 < cap; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 32 && c < 127 && c != '\\') buf[o++] = (char)c;
    else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    if (o + 8 >= cap && i + 1 < len) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
  }
  buf[o] = 0;
  return buf;
}

const char *pt_repr_name(pt_repr_t which) {
  return which == PT_REPR_MEAN ? "mean_representations" : "representations";
}

const char *pt_label_id(const char *label, char *buf, size_t cap) {
  size_t i = 0;
  while (*label && isspace((unsigned char)*label)) label++;
  while (label[i] && !isspace((unsigned char)label[i]) && i + 1 < cap) {
    buf[i] = label[i];
    i++;
  }
  if (cap) buf[i] = 0;
  return buf;
}

typedef struct layer_ref {
  int layer;
  size_t seq;  // position in the dict (a repeated key: the last one wins, as in Python)
  pv_t *t;
} layer_ref_t;

struct pt_file {
  pt_pickled_t pk;           // the archive and its pickle's values
  char *path;                // = pk.path
  pt_zip_t *zip;             // = pk.zip
  char *pkl_name;            // = pk.pkl_name
  char *label;
  int has[2];
  layer_ref_t *refs[2];
  int *layers[2];
  size_t n_layers[2];
};

void pt_file_destroy(pt_file_t **fp) {
  if (!fp || !*fp) return;
  pt_file_t *f = *fp;
  pt_pickled_close(&f->pk);
  free(f->label);
  for (int w = 0; w < 2; w++) {
    free(f->refs[w]);
    free(f->layers[w]);
  }
  free(f);
  *fp = NULL;
}

const char *pt_file_label(const pt_file_t *f) { return f->label; }
const char *pt_file_archive_name(const pt_file_t *f) { return ptz_archive(f->zip); }
int pt_file_has(const pt_file_t *f, pt_repr_t which) { return f->has[which == PT_REPR_MEAN]; }
size_t pt_file_layers(const pt_file_t *f, pt_repr_t which, const int **layers) {
  int w = which == PT_REPR_MEAN;
  if (layers) *layers = f->layers[w];
  return f->n_layers[w];
}

// ---- extract.py's dict ---------------------------------------------------------------------------
static int layer_cmp(const void *a, const void *b) {
  const layer_ref_t *x = a, *y = b;
  if (x->layer != y->layer) return (x->layer > y->layer) - (x->layer < y->layer);
  return (x->seq > y->seq) - (x->seq < y->seq);
}

static int collect_layers(pt_file_t *f, const pv_t *root, pt_repr_t which, ps_err_t *err) {
  int w = which == PT_REPR_MEAN;
  const char *name = pt_repr_name(which);
  pv_t *d = pt_dict_get(root, name);
  if (!d || d->kind == PV_NONE) return 0;
  if (d->kind != PV_DICT)
    return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: \"%s\" is a %s, not a dict", f->path, f->pkl_name, d->pos,
                      name, pt_kind_name(d->kind));
  f->has[w] = 1;
  size_t n = d->n / 2;
  layer_ref_t *r = ps_xcalloc(n ? n : 1, sizeof *r);
  size_t m = 0;
  for (size_t k = 0; k < n; k++) {
    pv_t *key = d->items[2 * k], *val = d->items[2 * k + 1];
    if (key->kind != PV_INT || key->i < INT_MIN || key->i > INT_MAX) {
      free(r);
      return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: a key of \"%s\" is a %s, not an int layer", f->path,
                        f->pkl_name, key->pos, name, pt_kind_name(key->kind));
    }
    if (val->kind != PV_TENSOR) {
      char mb[80], gb[80];
      free(r);
      if (val->kind == PV_OPAQUE && val->s)
        return ps_err_set(err, PS_EUNSUPP, "%s: %s byte %zu: %s[%lld] is made by %s.%s, not a tensor this reader knows",
                          f->path, f->pkl_name, val->pos, name, (long long)key->i, pt_show(val->s, val->len, mb, sizeof mb),
                          pt_show(val->s2, val->len2, gb, sizeof gb));
      return ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: %s[%lld] is a %s, not a tensor", f->path, f->pkl_name,
                        val->pos, name, (long long)key->i, pt_kind_name(val->kind));
    }
    r[k].layer = (int)key->i;
    r[k].seq = k;
    r[k].t = val;
  }
  qsort(r, n, sizeof *r, layer_cmp);
  for (size_t k = 0; k < n; k++) {  // keep the last of each run of equal layers
    if (m && r[m - 1].layer == r[k].layer) m--;
    r[m++] = r[k];
  }
  f->refs[w] = r;
  f->n_layers[w] = m;
  f->layers[w] = ps_xcalloc(m ? m : 1, sizeof(int));
  for (size_t j = 0; j < m; j++) f->layers[w][j] = r[j].layer;
  return 0;
}

void pt_pickled_close(pt_pickled_t *p) {
  ptz_close(&p->zip);
  free(p->pkl_name);
  free(p->pkl);
  pt_values_free(&p->values);
  free(p->path);
  memset(p, 0, sizeof *p);
}

int pt_pickled_open(pt_pickled_t *p, const char *path, ps_err_t *err) {
  memset(p, 0, sizeof *p);
  p->path = ps_xstrdup(path);
  int rc;
  char nb[200];
  if ((rc = ptz_open(&p->zip, path, err)) < 0) goto fail;
  const char *arch = ptz_archive(p->zip);
  size_t al = strlen(arch);
  p->pkl_name = ps_xmalloc(al + 16);
  snprintf(p->pkl_name, al + 16, "%s/data.pkl", arch);
  char *ename = ps_xmalloc(al + 32);
  snprintf(ename, al + 32, "%s/byteorder", arch);
  int64_t bo = ptz_find(p->zip, ename);
  free(ename);
  if (bo >= 0) {
    uint8_t *b = NULL;
    size_t bl = 0;
    if ((rc = ptz_read_all(p->zip, bo, 64, &b, &bl, err)) < 0) goto fail;
    int little = !strcmp((char *)b, "little");
    free(b);
    if (!little) {
      rc = ps_err_set(err, PS_EUNSUPP, "%s: zip entry '%s/byteorder': only little-endian files are supported", path,
                      pt_show(arch, al, nb, sizeof nb));
      goto fail;
    }
  }
  int64_t pk = ptz_find(p->zip, p->pkl_name);
  if (pk < 0) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: no zip entry '%s': not a torch.save archive", path,
                    pt_show(p->pkl_name, strlen(p->pkl_name), nb, sizeof nb));
    goto fail;
  }
  if ((rc = ptz_read_all(p->zip, pk, PT_MAX_PICKLE_BYTES, &p->pkl, &p->pkl_len, err)) < 0) goto fail;
  if ((rc = pt_pickle_run(p->pkl, p->pkl_len, path, p->pkl_name, &p->values, &p->root, err)) < 0) goto fail;
  return 0;
fail:
  pt_pickled_close(p);
  return rc;
}

int pt_file_open(pt_file_t **out, const char *path, ps_err_t *err) {
  ps_err_t local;
  if (!err) err = &local;  // the interpreter reads err->code
  *out = NULL;
  pt_file_t *f = ps_xcalloc(1, sizeof *f);
  int rc;
  if ((rc = pt_pickled_open(&f->pk, path, err)) < 0) goto fail;
  f->path = f->pk.path;
  f->zip = f->pk.zip;
  f->pkl_name = f->pk.pkl_name;
  pv_t *root = f->pk.root;
  if (root->kind != PV_DICT) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: the saved object is a %s, not extract.py's dict", path, f->pkl_name,
                    pt_kind_name(root->kind));
    goto fail;
  }
  pv_t *label = pt_dict_get(root, "label");
  if (!label || label->kind != PV_STR) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s: no \"label\" string (not an extract.py file)", path, f->pkl_name);
    goto fail;
  }
  if (label->len == 0 || memchr(label->s, 0, label->len)) {
    rc = ps_err_set(err, PS_EFORMAT, "%s: %s byte %zu: \"label\" is empty or holds a NUL byte", path, f->pkl_name,
                    label->pos);
    goto fail;
  }
  f->label = ps_xmalloc(label->len + 1);
  memcpy(f->label, label->s, label->len);
  f->label[label->len] = 0;
  if ((rc = collect_layers(f, root, PT_REPR_PER_RESIDUE, err)) < 0) goto fail;
  if ((rc = collect_layers(f, root, PT_REPR_MEAN, err)) < 0) goto fail;
  *out = f;
  return 0;
fail:
  pt_file_destroy(&f);
  return rc;
}

// ---- tensors -------------------------------------------------------------------------------------
static void list_layers(const pt_file_t *f, int w, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = 0;
  if (!f->n_layers[w]) {
    snprintf(buf, cap, "%s", f->has[w] ? "none (the dict is empty)" : "none (no such dict)");
    return;
  }
  for (size_t j = 0; j < f->n_layers[w] && o + 16 < cap; j++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%d", j ? ", " : "", f->layers[w][j]);
}

static int find_tensor(const pt_file_t *f, pt_repr_t which, int layer, pv_t **t, ps_err_t *err) {
  int w = which == PT_REPR_MEAN;
  for (size_t j = 0; j < f->n_layers[w]; j++) {
    if (f->refs[w][j].layer == layer) {
      *t = f->refs[w][j].t;
      return 0;
    }
  }
  char lb[256];
  list_layers(f, w, lb, sizeof lb);
  return ps_err_set(err, PS_ENOTFOUND, "%s: layer %d not in %s; layers present: %s", f->path, layer,
                    pt_repr_name(which), lb);
}

static void fill_info(const pv_t *t, pt_tensor_info_t *info) {
  memset(info, 0, sizeof *info);
  info->dtype = t->storage->dtype;
  info->dtype_name = t->storage->dtype_name;
  if (!info->dtype_name) info->dtype_name = "unknown";
  info->ndim = t->ndim;
  uint64_t n = 1;
  for (int k = 0; k < t->ndim; k++) {
    info->shape[k] = (uint64_t)t->size[k];
    if (n && info->shape[k] > UINT64_MAX / n) n = UINT64_MAX;  // saturate: caught by the size checks
    else n *= info->shape[k];
  }
  info->numel = n;
}

int pt_file_tensor_info(const pt_file_t *f, pt_repr_t which, int layer, pt_tensor_info_t *info, ps_err_t *err) {
  pv_t *t;
  int rc = find_tensor(f, which, layer, &t, err);
  if (rc < 0) return rc;
  fill_info(t, info);
  return 0;
}

typedef struct {
  float *out;
  size_t done;
  pt_dtype_t dtype;
  size_t esize;  // PT_DTYPE_OTHER (allowed integers only): 8 = int64, 4 = int32
} conv_sink_t;

static int conv_sink(void *ctx, const uint8_t *p, size_t n) {
  conv_sink_t *c = ctx;
  float *o = c->out + c->done;
  size_t k;
  switch (c->dtype) {
  case PT_DTYPE_F32:
    for (k = 0; k < n / 4; k++) {
      uint32_t b = pt_rd32(p + 4 * k);
      memcpy(&o[k], &b, 4);
    }
    break;
  case PT_DTYPE_F16:
    for (k = 0; k < n / 2; k++) o[k] = emb_half_to_float(pt_rd16(p + 2 * k));
    break;
  case PT_DTYPE_BF16:
    for (k = 0; k < n / 2; k++) o[k] = emb_bf16_to_float(pt_rd16(p + 2 * k));
    break;
  case PT_DTYPE_OTHER:
    if (c->esize == 8)
      for (k = 0; k < n / 8; k++) o[k] = (float)(int64_t)pt_rd64(p + 8 * k);
    else
      for (k = 0; k < n / 4; k++) o[k] = (float)(int32_t)pt_rd32(p + 4 * k);
    break;
  default:
    for (k = 0; k < n / 8; k++) {
      uint64_t b = pt_rd64(p + 8 * k);
      double d;
      memcpy(&d, &b, 8);
      o[k] = (float)d;
    }
    break;
  }
  c->done += k;
  return 0;
}

int pt_file_read_tensor(pt_file_t *f, pt_repr_t which, int layer, float *out, size_t cap, ps_err_t *err) {
  pv_t *t;
  int rc = find_tensor(f, which, layer, &t, err);
  if (rc < 0) return rc;
  char what[64];
  snprintf(what, sizeof what, "%s[%d]", pt_repr_name(which), layer);
  return pt_pickled_read(&f->pk, t, what, out, cap, err);
}

void pt_pickled_info(const pv_t *t, pt_tensor_info_t *info) { fill_info(t, info); }

int pt_pickled_read(pt_pickled_t *pk, const pv_t *t, const char *what, float *out, size_t cap, ps_err_t *err) {
  return pt_pickled_read_ex(pk, t, what, 0, out, cap, err);
}

int pt_pickled_read_ex(pt_pickled_t *pk, const pv_t *t, const char *what, int allow_int, float *out, size_t cap,
                       ps_err_t *err) {
  const char *P = pk->path, *W = what;
  const pv_t *s = t->storage;
  char kb[80];
  const char *K = pt_show(s->s, s->len, kb, sizeof kb);
  pt_tensor_info_t info;
  fill_info(t, &info);
  int is_int = info.dtype_name && (!strcmp(info.dtype_name, "int64") || !strcmp(info.dtype_name, "int32"));
  if (s->dtype == PT_DTYPE_OTHER && !(allow_int && is_int))
    return ps_err_set(err, PS_EUNSUPP, "%s: %s (%s byte %zu) has dtype %s; a float tensor is expected", P, W,
                      pk->pkl_name, t->pos, info.dtype_name);
  if (info.numel > PT_MAX_TENSOR_FLOATS)
    return ps_err_set(err, PS_EUNSUPP, "%s: %s (%s byte %zu) has %llu elements (at most %llu)", P, W,
                      pk->pkl_name, t->pos, (unsigned long long)info.numel, (unsigned long long)PT_MAX_TENSOR_FLOATS);
  if (info.numel == 0) return 0;
  int64_t expect = 1;  // row-major strides; axes of length 1 may have any stride
  for (int k = t->ndim - 1; k >= 0; k--) {
    if (t->size[k] != 1 && t->stride[k] != expect) {
      char sb[200];
      size_t o = 0;
      for (int j = 0; j < t->ndim && o + 24 < sizeof sb; j++)
        o += (size_t)snprintf(sb + o, sizeof sb - o, "%s%lld", j ? ", " : "", (long long)t->stride[j]);
      return ps_err_set(err, PS_EUNSUPP,
                        "%s: %s (%s byte %zu) is not contiguous (stride (%s)); save a .contiguous() copy", P, W,
                        pk->pkl_name, t->pos, sb);
    }
    expect *= t->size[k];
  }
  if ((uint64_t)t->offset > s->numel || info.numel > s->numel - (uint64_t)t->offset)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: %s (%s byte %zu) needs elements [%lld, %llu) of storage '%s', which holds %llu", P, W,
                      pk->pkl_name, t->pos, (long long)t->offset,
                      (unsigned long long)((uint64_t)t->offset + info.numel), K, (unsigned long long)s->numel);
  const char *arch = ptz_archive(pk->zip);
  size_t al = strlen(arch);
  char *ename = ps_xmalloc(al + s->len + 8);
  memcpy(ename, arch, al);
  memcpy(ename + al, "/data/", 6);
  memcpy(ename + al + 6, s->s, s->len);
  ename[al + 6 + s->len] = 0;
  int64_t z = ptz_find(pk->zip, ename);
  free(ename);
  if (z < 0)
    return ps_err_set(err, PS_ENOTFOUND, "%s: %s (%s byte %zu): storage '%s' (zip entry '%s/data/%s') is missing",
                      P, W, pk->pkl_name, t->pos, K, arch, K);
  uint64_t zsize = ptz_size(pk->zip, z);
  if (s->numel > UINT64_MAX / s->esize || zsize < s->numel * s->esize)
    return ps_err_set(err, PS_ETRUNC,
                      "%s: %s: storage '%s' declares %llu %s elements but its zip entry holds %llu bytes", P, W,
                      K, (unsigned long long)s->numel, info.dtype_name, (unsigned long long)zsize);
  if (info.numel > cap)  // after the file's own checks: cap = 0 validates without reading
    return ps_err_set(err, PS_EDIM, "%s: %s has %llu elements; room for %zu given", P, W,
                      (unsigned long long)info.numel, cap);
  conv_sink_t cs = {out, 0, s->dtype, s->esize};
  uint64_t off = (uint64_t)t->offset * s->esize, n = info.numel * s->esize;
  return ptz_stream(pk->zip, z, off, n, conv_sink, &cs, err);  // a whole entry: its CRC is checked
}

