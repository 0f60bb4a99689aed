// safetensors_write.c — the streaming safetensors writer: tensors go to a temporary data file,
// close writes header + data to path.tmp, fsyncs and renames it into place. See safetensors.h.
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emb.h"
#include "io.h"
#include "safetensors.h"

#define CONV_BYTES ((size_t)64 * 1024)

struct st_writer {
  char *path, *tmp, *data_tmp;
  FILE *data;
  uint64_t data_len;
  json_t *tensors;   // name -> {dtype, shape, data_offsets}, in the order added
  json_t *meta;      // NULL until the first metadata entry
  uint64_t n;
  // tensor being written (between begin and end)
  int open;
  json_t *cur;       // its header entry (owned until end)
  char *cur_name;
  st_dtype_t cur_dtype;
  uint64_t cur_need, cur_done, cur_begin;
  uint16_t *conv;    // CONV_BYTES
};

static uint16_t float_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet NaN, sign kept
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

static void writer_free(st_writer_t *w) {
  if (w->data) fclose(w->data);
  json_decref(w->tensors);
  json_decref(w->meta);
  json_decref(w->cur);
  free(w->cur_name);
  free(w->conv);
  free(w->path);
  free(w->tmp);
  free(w->data_tmp);
  free(w);
}

void st_writer_abort(st_writer_t **wp) {
  if (!wp || !*wp) return;
  st_writer_t *w = *wp;
  if (w->data) {
    fclose(w->data);
    w->data = NULL;
  }
  unlink(w->data_tmp);
  unlink(w->tmp);
  writer_free(w);
  *wp = NULL;
}

int st_writer_open(st_writer_t **out, const char *path, ps_err_t *err) {
  *out = NULL;
  st_writer_t *w = ps_xcalloc(1, sizeof *w);
  size_t l = strlen(path);
  w->path = ps_xstrdup(path);
  w->tmp = ps_xmalloc(l + 5);
  snprintf(w->tmp, l + 5, "%s.tmp", path);
  w->data_tmp = ps_xmalloc(l + 10);
  snprintf(w->data_tmp, l + 10, "%s.data.tmp", path);
  w->tensors = json_object();
  w->conv = ps_xmalloc(CONV_BYTES);
  if (!(w->data = fopen(w->data_tmp, "w+b"))) {
    int rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->data_tmp, strerror(errno));
    writer_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

int st_writer_set_metadata(st_writer_t *w, const char *key, const char *value, ps_err_t *err) {
  json_t *k = json_string(key), *v = json_string(value);
  int bad = !k || !v;
  json_decref(k);  // only validates the key
  if (bad) {
    json_decref(v);
    return ps_err_set(err, PS_EFORMAT, "%s: metadata '%s': key and value must be valid UTF-8", w->path, key);
  }
  if (!w->meta) w->meta = json_object();
  json_object_set_new(w->meta, key, v);
  return 0;
}

int st_writer_begin(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim, ps_err_t *err) {
  if (w->open) return ps_err_set(err, PS_ESTATE, "%s: tensor '%s' begun before '%s' ended", w->path, name, w->cur_name);
  if (!name[0] || !strcmp(name, "__metadata__"))
    return ps_err_set(err, PS_EFORMAT, "%s: tensor name '%s' is not allowed", w->path, name);
  json_t *js = json_string(name);
  if (!js) return ps_err_set(err, PS_EFORMAT, "%s: tensor name is not valid UTF-8", w->path);
  json_decref(js);
  if (json_object_get(w->tensors, name))
    return ps_err_set(err, PS_EFORMAT, "%s: tensor '%s' added twice", w->path, name);
  if (ndim < 0 || ndim > ST_MAX_DIMS)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %d dimensions (0 .. %d)", w->path, name, ndim, ST_MAX_DIMS);
  if (dtype != ST_F32 && dtype != ST_F16 && dtype != ST_BF16 && dtype != ST_I64)
    return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s': the writer stores F32, F16, BF16 or I64, not %s", w->path, name,
                      st_dtype_name(dtype));
  uint64_t ne = 1;
  json_t *sh = json_array();
  for (int i = 0; i < ndim; i++) {
    if (shape[i] > (uint64_t)INT64_MAX || (shape[i] && ne > (UINT64_MAX >> 4) / shape[i])) {
      json_decref(sh);
      return ps_err_set(err, PS_EDIM, "%s: tensor '%s': shape overflows", w->path, name);
    }
    ne *= shape[i];
    json_array_append_new(sh, json_integer((json_int_t)shape[i]));
  }
  w->cur = json_object();
  json_object_set_new(w->cur, "dtype", json_string(st_dtype_name(dtype)));
  json_object_set_new(w->cur, "shape", sh);
  w->cur_name = ps_xstrdup(name);
  w->cur_dtype = dtype;
  w->cur_need = ne;
  w->cur_done = 0;
  w->cur_begin = w->data_len;
  w->open = 1;
  return 0;
}

static int write_data(st_writer_t *w, const void *p, size_t bytes, ps_err_t *err) {
  errno = 0;
  if (bytes && fwrite(p, 1, bytes, w->data) != bytes) {
    int e = errno ? errno : EIO;
    return ps_err_set(err, -e, "%s: tensor '%s': write at byte %" PRIu64 ": %s", w->data_tmp, w->cur_name, w->data_len,
                      strerror(e));
  }
  w->data_len += bytes;
  return 0;
}

static int append_check(st_writer_t *w, uint64_t count, ps_err_t *err) {
  if (!w->open) return ps_err_set(err, PS_ESTATE, "%s: data appended outside begin/end", w->path);
  if (count > w->cur_need - w->cur_done)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %" PRIu64 " values appended after %" PRIu64 " of %" PRIu64, w->path,
                      w->cur_name, count, w->cur_done, w->cur_need);
  return 0;
}

int st_writer_append_f32(st_writer_t *w, const float *data, uint64_t count, ps_err_t *err) {
  int rc = append_check(w, count, err);
  if (rc < 0) return rc;
  if (w->cur_dtype == ST_I64)
    return ps_err_set(err, PS_ESTATE, "%s: tensor '%s': float data appended to an I64 tensor", w->path, w->cur_name);
  if (w->cur_dtype == ST_F32) {
    if ((rc = write_data(w, data, (size_t)count * 4, err)) < 0) return rc;
  } else {
    size_t per = CONV_BYTES / 2;
    for (uint64_t done = 0; done < count;) {
      size_t k = count - done < per ? (size_t)(count - done) : per;
      for (size_t i = 0; i < k; i++)
        w->conv[i] = w->cur_dtype == ST_F16 ? emb_float_to_half(data[done + i]) : float_to_bf16(data[done + i]);
      if ((rc = write_data(w, w->conv, k * 2, err)) < 0) return rc;
      done += k;
    }
  }
  w->cur_done += count;
  return 0;
}

int st_writer_end(st_writer_t *w, ps_err_t *err) {
  if (!w->open) return ps_err_set(err, PS_ESTATE, "%s: end without begin", w->path);
  if (w->cur_done != w->cur_need)
    return ps_err_set(err, PS_EDIM, "%s: tensor '%s': %" PRIu64 " values written, its shape needs %" PRIu64, w->path,
                      w->cur_name, w->cur_done, w->cur_need);
  json_t *of = json_array();
  json_array_append_new(of, json_integer((json_int_t)w->cur_begin));
  json_array_append_new(of, json_integer((json_int_t)w->data_len));
  json_object_set_new(w->cur, "data_offsets", of);
  json_object_set_new(w->tensors, w->cur_name, w->cur);
  w->cur = NULL;
  free(w->cur_name);
  w->cur_name = NULL;
  w->open = 0;
  w->n++;
  return 0;
}

int st_writer_add_f32(st_writer_t *w, const char *name, st_dtype_t dtype, const uint64_t *shape, int ndim,
                      const float *data, ps_err_t *err) {
  if (dtype == ST_I64) return ps_err_set(err, PS_EUNSUPP, "%s: tensor '%s': use st_writer_add_i64", w->path, name);
  int rc = st_writer_begin(w, name, dtype, shape, ndim, err);
  if (rc < 0) return rc;
  if ((rc = st_writer_append_f32(w, data, w->cur_need, err)) < 0) return rc;
  return st_writer_end(w, err);
}

int st_writer_add_i64(st_writer_t *w, const char *name, const uint64_t *shape, int ndim, const int64_t *data,
                      ps_err_t *err) {
  int rc = st_writer_begin(w, name, ST_I64, shape, ndim, err);
  if (rc < 0) return rc;
  if ((rc = write_data(w, data, (size_t)w->cur_need * 8, err)) < 0) return rc;
  w->cur_done = w->cur_need;
  return st_writer_end(w, err);
}

uint64_t st_writer_count(const st_writer_t *w) { return w ? w->n : 0; }

int st_writer_close(st_writer_t **wp, ps_err_t *err) {
  if (!wp || !*wp) return 0;
  st_writer_t *w = *wp;
  int rc = 0;
  char *hdr = NULL;
  FILE *o = NULL;
  if (w->open) {
    rc = ps_err_set(err, PS_ESTATE, "%s: closed while tensor '%s' is unfinished", w->path, w->cur_name);
    goto fail;
  }
  json_t *root = json_object();
  if (w->meta) json_object_set(root, "__metadata__", w->meta);
  json_object_update(root, w->tensors);
  hdr = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  if (!hdr) {
    rc = ps_err_set(err, PS_ENOMEM, "%s: cannot encode the header", w->path);
    goto fail;
  }
  size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
  if (padded > ST_MAX_HEADER) {
    rc = ps_err_set(err, PS_EDIM, "%s: header of %zu bytes exceeds the %" PRIu64 "-byte limit", w->path, padded,
                    ST_MAX_HEADER);
    goto fail;
  }
  if (fflush(w->data) != 0 || fseeko(w->data, 0, SEEK_SET) != 0) {
    rc = ps_err_set(err, -errno, "%s: %s", w->data_tmp, strerror(errno));
    goto fail;
  }
  if (!(o = fopen(w->tmp, "wb"))) {
    rc = ps_err_set(err, -errno, "%s: cannot create: %s", w->tmp, strerror(errno));
    goto fail;
  }
  uint8_t lenb[8];
  for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));
  errno = 0;
  int ok = fwrite(lenb, 1, 8, o) == 8 && fwrite(hdr, 1, hl, o) == hl;
  for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', o) != EOF;
  uint64_t copied = 0;
  while (ok && copied < w->data_len) {
    size_t k = fread(w->conv, 1, CONV_BYTES, w->data);
    if (k == 0) {
      rc = ps_err_set(err, PS_EIO, "%s: byte %" PRIu64 ": read back failed", w->data_tmp, copied);
      goto fail;
    }
    ok = fwrite(w->conv, 1, k, o) == k;
    copied += k;
  }
  if (!ok || fflush(o) != 0 || fsync(fileno(o)) != 0) {
    int e = errno ? errno : EIO;
    rc = ps_err_set(err, -e, "%s: write: %s", w->tmp, strerror(e));
    goto fail;
  }
  int crc = fclose(o);
  o = NULL;
  if (crc != 0) {
    rc = ps_err_set(err, -errno, "%s: close: %s", w->tmp, strerror(errno));
    goto fail;
  }
  if (rename(w->tmp, w->path) != 0) {
    rc = ps_err_set(err, -errno, "%s: rename from %s: %s", w->path, w->tmp, strerror(errno));
    goto fail;
  }
  (void)ps_fsync_parent(w->path);  // best effort: some file systems refuse fsync on directories
  free(hdr);
  fclose(w->data);
  w->data = NULL;
  unlink(w->data_tmp);
  writer_free(w);
  *wp = NULL;
  return 0;
fail:
  if (o) fclose(o);
  free(hdr);
  st_writer_abort(wp);
  return rc;
}
