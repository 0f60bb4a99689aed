// dir.c — the "pt" embedding source (emb.h): one .pt file, or a directory searched recursively
// for *.pt (hidden names skipped, symlinked directories not followed), read in byte order of the
// relative paths; each file's label must match its name. See ptfile.h.
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "internal.h"

#define MAX_DIR_DEPTH 32

static int ends_with_pt(const char *s) {
  size_t n = strlen(s);
  return n > 3 && !strcasecmp(s + n - 3, ".pt");
}

typedef struct pt_source {
  emb_source_t base;
  char *root;         // opts.path
  int is_dir;
  char **files;       // full paths, sorted by the part below root
  size_t n_files, cap_files, pos;
  size_t rel;         // files[i] + rel = path below root (or the base name of a single file)
  int layer;          // resolved
  uint32_t dim;       // of the first record, 0 before
  float *rows;
  size_t rows_cap;
  char *id;
  size_t id_cap;
} pt_source_t;

static void pt_destroy(emb_source_t *s) {
  pt_source_t *p = (pt_source_t *)s;
  for (size_t i = 0; i < p->n_files; i++) free(p->files[i]);
  free(p->files);
  free(p->rows);
  free(p->id);
  free(p->root);
  free(p);
}

static int64_t pt_count(emb_source_t *s) { return (int64_t)((pt_source_t *)s)->n_files; }

static int pt_skip(emb_source_t *s, uint64_t n, ps_err_t *err) {
  pt_source_t *p = (pt_source_t *)s;
  if (n > p->n_files - p->pos)
    return ps_err_set(err, PS_ETRUNC, "%s: cannot skip to record %llu: %zu .pt files", p->root,
                      (unsigned long long)(p->pos + n), p->n_files);
  p->pos += (size_t)n;
  return 0;
}

// Which dict holds this file's record at the source's level.
static pt_repr_t pick_repr(const pt_source_t *p, const pt_file_t *f, int layer) {
  if (p->base.opts.level == EMB_LEVEL_RESIDUE) return PT_REPR_PER_RESIDUE;
  const int *ls;
  size_t n = pt_file_layers(f, PT_REPR_MEAN, &ls);
  for (size_t j = 0; j < n; j++)
    if (ls[j] == layer) return PT_REPR_MEAN;
  return PT_REPR_PER_RESIDUE;
}

static int check_label(const pt_source_t *p, const char *path, const pt_file_t *f, char *id, size_t id_cap,
                       ps_err_t *err) {
  const char *label = pt_file_label(f);
  pt_label_id(label, id, id_cap);
  if (!*id) return ps_err_set(err, PS_EFORMAT, "%s: the label is blank", path);
  if (!p->is_dir && !ends_with_pt(path)) return 0;
  const char *rel = path + p->rel;
  size_t sl = strlen(rel) - 3;  // without ".pt"
  if ((strlen(label) == sl && !memcmp(rel, label, sl)) || (strlen(id) == sl && !memcmp(rel, id, sl))) return 0;
  char lb[200], sb[200];
  return ps_err_set(err, PS_EMISMATCH,
                    "%s: label '%s' does not match the file name '%s' (extract.py names each file LABEL.pt)", path,
                    pt_show(label, strlen(label), lb, sizeof lb), pt_show(rel, sl, sb, sizeof sb));
}

static int pt_next(emb_source_t *s, emb_record_t *rec, ps_err_t *err) {
  pt_source_t *p = (pt_source_t *)s;
  if (p->pos >= p->n_files) return 0;
  const char *path = p->files[p->pos];
  pt_file_t *f = NULL;
  char idb[1024];
  int rc = pt_file_open(&f, path, err);
  if (rc < 0) return rc;
  if ((rc = check_label(p, path, f, idb, sizeof idb, err)) < 0) goto out;
  pt_repr_t which = pick_repr(p, f, p->layer);
  pt_tensor_info_t info;
  if ((rc = pt_file_tensor_info(f, which, p->layer, &info, err)) < 0) goto out;
  uint32_t n_rows, dim;
  if (which == PT_REPR_MEAN) {
    if (info.ndim != 1) {
      rc = ps_err_set(err, PS_EDIM, "%s: mean_representations[%d] has %d dimensions; [d] expected", path, p->layer,
                      info.ndim);
      goto out;
    }
    n_rows = 1;
    dim = info.shape[0] > UINT32_MAX ? 0 : (uint32_t)info.shape[0];
  } else {
    if (info.ndim != 2) {
      rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] has %d dimensions; [L, d] expected", path, p->layer,
                      info.ndim);
      goto out;
    }
    if (info.shape[0] > UINT32_MAX || info.shape[1] > UINT32_MAX) {
      rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] is too large", path, p->layer);
      goto out;
    }
    n_rows = (uint32_t)info.shape[0];
    dim = (uint32_t)info.shape[1];
  }
  if (dim == 0) {
    rc = ps_err_set(err, PS_EDIM, "%s: %s[%d]: dimension 0", path, pt_repr_name(which), p->layer);
    goto out;
  }
  if (n_rows == 0 && p->base.opts.level == EMB_LEVEL_PROTEIN) {
    rc = ps_err_set(err, PS_EDIM, "%s: representations[%d] has no rows to pool (and no mean_representations[%d])",
                    path, p->layer, p->layer);
    goto out;
  }
  if (p->dim && dim != p->dim) {
    rc = ps_err_set(err, PS_EDIM, "%s: %s[%d] has dimension %u; the first file's is %u", path, pt_repr_name(which),
                    p->layer, dim, p->dim);
    goto out;
  }
  size_t nv = (size_t)n_rows * dim;
  if (nv > PT_MAX_TENSOR_FLOATS) {
    rc = ps_err_set(err, PS_EUNSUPP, "%s: %s[%d] has %zu elements (at most %llu)", path, pt_repr_name(which), p->layer,
                    nv, (unsigned long long)PT_MAX_TENSOR_FLOATS);
    goto out;
  }
  if (nv) {  // validate against the file before allocating what its pickle claims
    rc = pt_file_read_tensor(f, which, p->layer, NULL, 0, err);
    if (rc != PS_EDIM) {
      if (rc == 0) rc = ps_err_set(err, PS_ESTATE, "%s: %s[%d]: internal size mismatch", path, pt_repr_name(which), p->layer);
      goto out;
    }
    ps_err_clear(err);
  }
  if (nv > p->rows_cap) {
    free(p->rows);
    p->rows = ps_xmalloc(nv * sizeof(float));
    p->rows_cap = nv;
  }
  if (nv && (rc = pt_file_read_tensor(f, which, p->layer, p->rows, p->rows_cap, err)) < 0) goto out;
  if (!p->base.opts.allow_nonfinite) {
    for (size_t k = 0; k < nv; k++) {
      if (!isfinite(p->rows[k])) {
        rc = ps_err_set(err, PS_ENAN, "%s: %s[%d]: %s at row %zu, column %zu (record %zu, id %s)", path,
                        pt_repr_name(which), p->layer, isnan(p->rows[k]) ? "NaN" : "Inf", k / dim, k % dim, p->pos,
                        idb);
        goto out;
      }
    }
  }
  size_t il = strlen(idb) + 1;
  if (il > p->id_cap) {
    p->id = ps_xrealloc(p->id, il);
    p->id_cap = il;
  }
  memcpy(p->id, idb, il);
  p->dim = dim;
  p->pos++;
  rec->id = p->id;
  rec->n_rows = n_rows;
  rec->dim = dim;
  rec->rows = p->rows;
  rc = 1;
out:
  pt_file_destroy(&f);
  return rc;
}

static const emb_source_vt pt_vt = {"pt", pt_next, pt_skip, pt_destroy, pt_count};

// Every path is root + "/" + relative path: comparing whole paths orders the relative parts.
static int file_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void add_file(pt_source_t *p, const char *path) {
  if (p->n_files == p->cap_files) {
    p->cap_files = p->cap_files ? p->cap_files * 2 : 64;
    p->files = ps_xrealloc(p->files, p->cap_files * sizeof *p->files);
  }
  p->files[p->n_files++] = ps_xstrdup(path);
}

static int scan_dir(pt_source_t *p, const char *dir, int depth, ps_err_t *err) {
  DIR *d = opendir(dir);
  if (!d) return ps_err_set(err, -errno, "%s: cannot list: %s", dir, strerror(errno));
  int rc = 0;
  struct dirent *e;
  size_t dl = strlen(dir);
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t nl = strlen(e->d_name);
    char *full = ps_xmalloc(dl + nl + 2);
    memcpy(full, dir, dl);
    full[dl] = '/';
    memcpy(full + dl + 1, e->d_name, nl + 1);
    struct stat ls, st;
    if (lstat(full, &ls) == 0) {
      if (S_ISDIR(ls.st_mode)) {
        if (depth >= MAX_DIR_DEPTH) rc = ps_err_set(err, PS_EUNSUPP, "%s: directories nested too deeply", full);
        else rc = scan_dir(p, full, depth + 1, err);
      } else if (ends_with_pt(e->d_name) && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
        add_file(p, full);
      }
    }
    free(full);
    if (rc < 0) break;
  }
  closedir(d);
  return rc;
}

int pt_source_open(emb_source_t **out, const emb_source_opts_t *opts, ps_err_t *err) {
  *out = NULL;
  if (!opts || !opts->path) return ps_err_set(err, PS_ECONFIG, "pt source: no path given");
  pt_source_t *p = ps_xcalloc(1, sizeof *p);
  p->base.vt = &pt_vt;
  p->base.opts = *opts;
  p->root = ps_xstrdup(opts->path);
  pt_file_t *f = NULL;
  int rc;
  struct stat st;
  if (stat(p->root, &st) < 0) {
    rc = ps_err_set(err, -errno, "%s: %s", p->root, strerror(errno));
    goto fail;
  }
  if (S_ISDIR(st.st_mode)) {
    p->is_dir = 1;
    size_t rl = strlen(p->root);
    while (rl > 1 && p->root[rl - 1] == '/') p->root[--rl] = 0;
    p->rel = rl + 1;
    if ((rc = scan_dir(p, p->root, 0, err)) < 0) goto fail;
    if (!p->n_files) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: no .pt files in this directory", p->root);
      goto fail;
    }
    qsort(p->files, p->n_files, sizeof *p->files, file_cmp);
  } else {
    add_file(p, p->root);
    const char *slash = strrchr(p->root, '/');
    p->rel = slash ? (size_t)(slash - p->root) + 1 : 0;
  }
  // the first file fixes the layer (and fails early when unreadable)
  if ((rc = pt_file_open(&f, p->files[0], err)) < 0) goto fail;
  int want = opts->layer;
  if (want < 0) {
    const int *ls;
    size_t n = pt_file_layers(f, PT_REPR_PER_RESIDUE, &ls);
    int best = INT_MIN;
    for (size_t j = 0; j < n; j++) best = ls[j] > best ? ls[j] : best;
    if (opts->level == EMB_LEVEL_PROTEIN) {
      n = pt_file_layers(f, PT_REPR_MEAN, &ls);
      for (size_t j = 0; j < n; j++) best = ls[j] > best ? ls[j] : best;
    }
    if (best == INT_MIN) {
      rc = ps_err_set(err, PS_ENOTFOUND, "%s: no layers in %s", p->files[0],
                      opts->level == EMB_LEVEL_PROTEIN ? "representations or mean_representations"
                                                       : "representations (residue level needs extract.py "
                                                         "--include per_tok)");
      goto fail;
    }
    want = best;
  }
  p->layer = want;
  pt_tensor_info_t info;
  if ((rc = pt_file_tensor_info(f, pick_repr(p, f, want), want, &info, err)) < 0) goto fail;
  pt_file_destroy(&f);
  *out = &p->base;
  return 0;
fail:
  pt_file_destroy(&f);
  pt_destroy(&p->base);
  return rc;
}

