// trainer.c — see trainer.h.
#include "trainer.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fsutil.h"
#include "hash.h"
#include "io.h"
#include "log.h"
#include "safetensors.h"

// Paths are built from out_dir (checked to be < 3000 bytes in trainer_run) plus short names, so
// the 4096-byte buffers below cannot truncate; GCC cannot see that bound.
#pragma GCC diagnostic ignored "-Wformat-truncation"

void trainer_opts_default(trainer_opts_t *o) {
  memset(o, 0, sizeof *o);
  sae_cfg_default(&o->cfg);
  o->cfg.d_sae = 4096;
  sae_train_opts_default(&o->train, &o->cfg);
  o->train.k_aux = -1;  // d_in / 2 once the stream gives d_in
  o->batch_rows = 4096;
  o->shuffle_rows = 65536;
  o->eval_every = 100;
  o->ckpt_every = 500;
  o->log_every = 20;
  o->val_max_rows = 16384;
  o->dataset_norm = 1;
  o->b_dec_init = 2;
  o->dec_init_norm = 0.1f;
  o->init_from_data = 0;
  o->resample_until = 0.5;
  o->resample_enc_scale = 0.2;
  o->seed = 1;
  o->keep_ckpts = 1;
}

typedef struct run {
  const trainer_opts_t *o;
  const trainer_hooks_t *h;
  ps_pool_t *pool;
  sae_t *s;
  sae_trainer_t *tr;
  int64_t d, od, w;            // input dim, target dim, row width (d + od, or d for an SAE)
  int has_target;
  float in_scale, out_scale;
  int scale_set;
  float *sbuf;                 // shuffle buffer, cap x w
  int64_t sn, scap;
  float *batch;                // batch_rows x w
  int64_t bn;
  float *val;                  // val_max_rows x w
  int64_t vn;
  float *bx, *by;              // scaled step inputs
  uint64_t rng;
  reader_pos_t pos;            // position of the reader batch being consumed
  int64_t consumed;            // rows of that batch already consumed (checkpoints inside a batch)
  trainer_report_t rep;
  double t0;
  int64_t rows_at_t0;
  sae_losses_t last;
} run_t;

// ---- checkpoints ----------------------------------------------------------------------------------

static int swap_link(const char *out, const char *name, const char *target, ps_err_t *err) {
  char tmp[4096], lnk[4096];
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", out, name);
  snprintf(lnk, sizeof lnk, "%s/%s", out, name);
  unlink(tmp);
  if (symlink(target, tmp) != 0 || rename(tmp, lnk) != 0)
    return ps_err_set(err, -errno, "checkpoint: cannot point %s at %s: %s", lnk, target, strerror(errno));
  return 0;
}

static int link_target(const char *out, const char *name, char *buf, size_t n) {
  char lnk[4096];
  snprintf(lnk, sizeof lnk, "%s/%s", out, name);
  ssize_t r = readlink(lnk, buf, n - 1);
  if (r < 0) return -1;
  buf[r] = 0;
  return 0;
}

// Remove ckpt-* directories other than latest, best and the newest keep-1 before latest; and
// stale *.tmp directories.
static void prune(run_t *r) {
  const char *out = r->o->out_dir;
  char latest[256] = "", best[256] = "";
  link_target(out, "latest", latest, sizeof latest);
  link_target(out, "best", best, sizeof best);
  DIR *dd = opendir(out);
  if (!dd) return;
  struct dirent *e;
  char names[256][64];
  int n = 0;
  while ((e = readdir(dd)) && n < 256) {
    if (strncmp(e->d_name, "ckpt-", 5) || strlen(e->d_name) >= 64) continue;
    snprintf(names[n++], 64, "%s", e->d_name);
  }
  closedir(dd);
  // names sort by step (zero-padded)
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      if (strcmp(names[i], names[j]) > 0) {
        char t[64];
        memcpy(t, names[i], 64);
        memcpy(names[i], names[j], 64);
        memcpy(names[j], t, 64);
      }
  int kept = 0;
  char p[4096];
  for (int i = n - 1; i >= 0; i--) {
    int tmp = strstr(names[i], ".tmp") != NULL;
    int keep = !tmp && (!strcmp(names[i], latest) || !strcmp(names[i], best) ||
                        (strcmp(names[i], latest) < 0 && kept < r->o->keep_ckpts - 1 && ++kept));
    if (!strcmp(names[i], latest)) continue;
    if (keep) continue;
    snprintf(p, sizeof p, "%s/%s", out, names[i]);
    ps_rm_rf(p);
  }
}

static void meta_set(st_writer_t *w, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void meta_set(st_writer_t *w, const char *k, const char *fmt, ...) {
  char v[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof v, fmt, ap);
  va_end(ap);
  st_writer_set_metadata(w, k, v, NULL);
}

static int add_rows(st_writer_t *w, const char *name, const float *rows, int64_t n, int64_t width, ps_err_t *err) {
  if (n == 0) return 0;
  uint64_t sh[2] = {(uint64_t)n, (uint64_t)width};
  return st_writer_add_f32(w, name, ST_F32, sh, 2, rows, err);
}


// Matryoshka: record the nested prefix sizes in cfg.json (protsae_matryoshka_prefixes). The saved
// SAE is a plain TopK / BatchTopK SAE for encoding; the prefixes only say how it was trained.
static int cfg_add_matryoshka(const char *dir, const sae_train_opts_t *o, ps_err_t *err) {
  if (o->n_matryoshka <= 0) return 0;
  char path[4200];
  snprintf(path, sizeof path, "%s/cfg.json", dir);
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) return ps_err_set(err, PS_EFORMAT, "%s: %s", path, je.text);
  json_t *a = json_array();
  for (int i = 0; i < o->n_matryoshka; i++) json_array_append_new(a, json_integer(o->matryoshka[i]));
  json_object_set_new(j, "protsae_matryoshka_prefixes", a);
  char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(j);
  if (!txt) return ps_err_set(err, PS_ENOMEM, "%s: cannot serialise", path);
  int rc = ps_write_file_atomic(path, txt, strlen(txt), err);  // inside the checkpoint's tmp directory
  free(txt);
  return rc;
}

static int save_ckpt(run_t *r, int as_best, ps_err_t *err) {
  const char *out = r->o->out_dir;
  int64_t step = sae_trainer_step_count(r->tr);
  char name[64], dir[4096], tmpdir[4096], path[4096];
  snprintf(name, sizeof name, "ckpt-%010" PRId64, step);
  snprintf(dir, sizeof dir, "%s/%s", out, name);
  snprintf(tmpdir, sizeof tmpdir, "%s.tmp", dir);
  struct stat sb;
  if (stat(dir, &sb) == 0) {  // already saved at this step (e.g. eval + final)
    if (as_best) return swap_link(out, "best", name, err);
    return 0;
  }
  ps_rm_rf(tmpdir);
  if (mkdir(tmpdir, 0755) != 0) return ps_err_set(err, -errno, "checkpoint: mkdir %s: %s", tmpdir, strerror(errno));
  int rc = sae_save(r->s, tmpdir, r->in_scale, r->out_scale, err);
  if (!rc) rc = cfg_add_matryoshka(tmpdir, sae_trainer_opts(r->tr), err);
  if (rc) goto fail;
  st_writer_t *w = NULL;
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", tmpdir);
  if ((rc = st_writer_open(&w, path, err))) goto fail;
  size_t np = r->s->n_params;
  uint64_t sh[2] = {np, 0};
  meta_set(w, "step", "%" PRId64, step);
  meta_set(w, "rng", "%" PRIu64, r->rng);
  meta_set(w, "epoch", "%" PRIu32, r->pos.epoch);
  meta_set(w, "record", "%" PRIu64, r->pos.record);
  meta_set(w, "seq", "%" PRIu64, r->pos.seq);
  meta_set(w, "consumed", "%" PRId64, r->consumed);
  meta_set(w, "in_scale", "%a", (double)r->in_scale);
  meta_set(w, "out_scale", "%a", (double)r->out_scale);
  meta_set(w, "scale_set", "%d", r->scale_set);
  meta_set(w, "rows_trained", "%" PRId64, r->rep.rows_trained);
  meta_set(w, "rows_skipped_nonfinite", "%" PRId64, r->rep.rows_skipped_nonfinite);
  meta_set(w, "best_val_mse", "%a", r->rep.best_val_mse);
  meta_set(w, "best_step", "%" PRId64, r->rep.best_step);
  meta_set(w, "width", "%" PRId64, r->w);
  meta_set(w, "shuffle_n", "%" PRId64, r->sn);
  meta_set(w, "batch_n", "%" PRId64, r->bn);
  meta_set(w, "val_n", "%" PRId64, r->vn);
  rc = st_writer_add_f32(w, "params", ST_F32, sh, 1, r->s->params, err);
  if (!rc) rc = st_writer_add_f32(w, "adam_m", ST_F32, sh, 1, sae_trainer_adam_m(r->tr), err);
  if (!rc) rc = st_writer_add_f32(w, "adam_v", ST_F32, sh, 1, sae_trainer_adam_v(r->tr), err);
  sh[0] = (uint64_t)r->s->cfg.d_sae;
  if (!rc) rc = st_writer_add_i64(w, "since_fired", sh, 1, sae_trainer_steps_since_fired(r->tr), err);
  if (!rc) rc = st_writer_add_i64(w, "fire_steps", sh, 1, sae_trainer_fire_steps(r->tr), err);
  if (!rc && r->s->threshold) rc = st_writer_add_f32(w, "threshold", ST_F32, sh, 1, r->s->threshold, err);
  if (!rc && sae_trainer_log_threshold(r->tr)) {  // jumprelu
    rc = st_writer_add_f32(w, "log_threshold", ST_F32, sh, 1, sae_trainer_log_threshold(r->tr), err);
    if (!rc) rc = st_writer_add_f32(w, "log_threshold_adam_m", ST_F32, sh, 1, sae_trainer_log_threshold_adam_m(r->tr), err);
    if (!rc) rc = st_writer_add_f32(w, "log_threshold_adam_v", ST_F32, sh, 1, sae_trainer_log_threshold_adam_v(r->tr), err);
  }
  if (!rc) rc = add_rows(w, "shuffle", r->sbuf, r->sn, r->w, err);
  if (!rc) rc = add_rows(w, "batch", r->batch, r->bn, r->w, err);
  if (!rc) rc = add_rows(w, "val", r->val, r->vn, r->w, err);
  if (rc) {
    st_writer_abort(&w);
    goto fail;
  }
  if ((rc = st_writer_close(&w, err))) goto fail;
  ps_fsync_dir(tmpdir);
  if (rename(tmpdir, dir) != 0) {
    rc = ps_err_set(err, -errno, "checkpoint: rename %s: %s", tmpdir, strerror(errno));
    goto fail;
  }
  ps_fsync_dir(out);
  if ((rc = swap_link(out, "latest", name, err))) return rc;
  if (as_best && (rc = swap_link(out, "best", name, err))) return rc;
  ps_fsync_dir(out);
  prune(r);
  return 0;
fail:
  ps_rm_rf(tmpdir);
  return ps_err_prefix(err, "checkpoint %s: ", dir);
}

static const char *meta_get(st_file_t *f, const char *k, const char *path, ps_err_t *err, int *rc) {
  const char *v = st_metadata(f, k);
  if (!v && !*rc) *rc = ps_err_set(err, PS_EFORMAT, "%s: metadata %s missing", path, k);
  return v ? v : "0";
}

static int read_rows(st_file_t *f, const char *name, float *dst, int64_t n, int64_t w, const char *path,
                     ps_err_t *err) {
  if (n == 0) return 0;
  const st_tensor_info_t *t = st_tensor_find(f, name);
  if (!t || t->ndim != 2 || t->shape[0] != (uint64_t)n || t->shape[1] != (uint64_t)w)
    return ps_err_set(err, PS_EDIM, "%s: tensor %s missing or not [%lld, %lld]", path, name, (long long)n, (long long)w);
  return st_read_f32(f, name, dst, (uint64_t)(n * w), err);
}

// ---- run --------------------------------------------------------------------------------------

static int setup_model(run_t *r, int64_t d, int64_t od, ps_err_t *err) {
  trainer_opts_t *o = (trainer_opts_t *)r->o;
  sae_cfg_t c = o->cfg;
  c.d_in = d;
  c.d_out = od;
  c.transcoder = r->has_target;
  c.target_delta = r->has_target && o->target_delta;
  c.apply_b_dec_to_input = !r->has_target && c.apply_b_dec_to_input;
  int rc = sae_new(&r->s, &c, err);
  if (rc) return rc;
  sae_init_weights(r->s, o->seed, o->dec_init_norm);
  sae_train_opts_t to = o->train;
  if (to.k_aux < 0) to.k_aux = (c.arch == SAE_TOPK || c.arch == SAE_BATCHTOPK) ? (int32_t)(d / 2) : 0;
  if (to.k_aux > c.d_sae) to.k_aux = (int32_t)c.d_sae;
  if ((rc = sae_trainer_new(&r->tr, r->s, &to, r->pool, err))) return rc;
  r->d = d;
  r->od = od;
  r->w = r->has_target ? d + od : d;
  r->scap = o->shuffle_rows;
  r->sbuf = r->scap ? malloc((size_t)(r->scap * r->w) * sizeof(float)) : NULL;
  r->batch = malloc((size_t)(o->batch_rows * r->w) * sizeof(float));
  r->val = o->val_max_rows ? malloc((size_t)(o->val_max_rows * r->w) * sizeof(float)) : NULL;
  r->bx = malloc((size_t)(o->batch_rows * d) * sizeof(float));
  r->by = r->has_target ? malloc((size_t)(o->batch_rows * od) * sizeof(float)) : NULL;
  if ((r->scap && !r->sbuf) || !r->batch || (o->val_max_rows && !r->val) || !r->bx || (r->has_target && !r->by))
    return ps_err_set(err, PS_ENOMEM, "trainer: cannot allocate buffers (shuffle %lld rows, batch %lld, val %lld)",
                      (long long)r->scap, (long long)o->batch_rows, (long long)o->val_max_rows);
  r->in_scale = r->out_scale = 1.0f;
  r->rng = o->seed * 0x9E3779B97F4A7C15ULL + 17;
  return 0;
}

static int load_state(run_t *r, ps_err_t *err) {
  const char *out = r->o->out_dir;
  char name[256], dir[4096], path[4096];
  if (link_target(out, "latest", name, sizeof name)) return 0;  // nothing to resume
  snprintf(dir, sizeof dir, "%s/%s", out, name);
  sae_t *ls = NULL;
  int rc = sae_load(&ls, dir, err);
  if (rc) return ps_err_prefix(err, "resume: ");
  const sae_cfg_t *a = &ls->cfg, *b = &r->s->cfg;
  int uses_k = b->arch == SAE_TOPK || b->arch == SAE_BATCHTOPK;  // relu / jumprelu files carry no k
  if (a->arch != b->arch || a->d_in != b->d_in || a->d_sae != b->d_sae || a->d_out != b->d_out ||
      (uses_k && a->k != b->k)) {
    rc = ps_err_set(err, PS_EMISMATCH, "resume: %s is a %s SAE %lld->%lld->%lld k=%d; the options ask for %s "
                                       "%lld->%lld->%lld k=%d", dir, sae_arch_name(a->arch), (long long)a->d_in,
                    (long long)a->d_sae, (long long)a->d_out, a->k, sae_arch_name(b->arch), (long long)b->d_in,
                    (long long)b->d_sae, (long long)b->d_out, b->k);
    sae_free(&ls);
    return rc;
  }
  if (a->target_delta != b->target_delta) {
    rc = ps_err_set(err, PS_EMISMATCH, "resume: %s was trained on the %s target; the options ask for --target-mode %s",
                    dir, a->target_delta ? "delta" : "raw", b->target_delta ? "delta" : "raw");
    sae_free(&ls);  // a points into it
    return rc;
  }
  sae_free(&ls);
  snprintf(path, sizeof path, "%s/trainer_state.safetensors", dir);
  st_file_t *f = NULL;
  if ((rc = st_open(&f, path, err))) return rc;
  int mrc = 0;
  int64_t step = strtoll(meta_get(f, "step", path, err, &mrc), NULL, 10);
  r->rng = strtoull(meta_get(f, "rng", path, err, &mrc), NULL, 10);
  r->pos.epoch = (uint32_t)strtoul(meta_get(f, "epoch", path, err, &mrc), NULL, 10);
  r->pos.record = strtoull(meta_get(f, "record", path, err, &mrc), NULL, 10);
  r->pos.seq = strtoull(meta_get(f, "seq", path, err, &mrc), NULL, 10);
  r->consumed = strtoll(meta_get(f, "consumed", path, err, &mrc), NULL, 10);
  r->in_scale = (float)strtod(meta_get(f, "in_scale", path, err, &mrc), NULL);
  r->out_scale = (float)strtod(meta_get(f, "out_scale", path, err, &mrc), NULL);
  r->scale_set = atoi(meta_get(f, "scale_set", path, err, &mrc));
  r->rep.rows_trained = strtoll(meta_get(f, "rows_trained", path, err, &mrc), NULL, 10);
  r->rep.rows_skipped_nonfinite = strtoll(meta_get(f, "rows_skipped_nonfinite", path, err, &mrc), NULL, 10);
  r->rep.best_val_mse = strtod(meta_get(f, "best_val_mse", path, err, &mrc), NULL);
  r->rep.best_step = strtoll(meta_get(f, "best_step", path, err, &mrc), NULL, 10);
  int64_t width = strtoll(meta_get(f, "width", path, err, &mrc), NULL, 10);
  r->sn = strtoll(meta_get(f, "shuffle_n", path, err, &mrc), NULL, 10);
  r->bn = strtoll(meta_get(f, "batch_n", path, err, &mrc), NULL, 10);
  r->vn = strtoll(meta_get(f, "val_n", path, err, &mrc), NULL, 10);
  rc = mrc;
  if (!rc && (width != r->w || r->sn < 0 || r->sn > r->scap || r->bn < 0 || r->bn >= r->o->batch_rows || r->vn < 0 ||
              r->vn > r->o->val_max_rows))
    rc = ps_err_set(err, PS_EMISMATCH, "%s: buffers (width %lld, shuffle %lld, batch %lld, val %lld) do not fit the "
                                       "options (width %lld, shuffle %lld, batch %lld, val %lld)", path,
                    (long long)width, (long long)r->sn, (long long)r->bn, (long long)r->vn, (long long)r->w,
                    (long long)r->scap, (long long)r->o->batch_rows, (long long)r->o->val_max_rows);
  size_t np = r->s->n_params;
  if (!rc) rc = st_read_f32(f, "params", r->s->params, np, err);
  if (!rc) rc = st_read_f32(f, "adam_m", sae_trainer_adam_m(r->tr), np, err);
  if (!rc) rc = st_read_f32(f, "adam_v", sae_trainer_adam_v(r->tr), np, err);
  if (!rc && r->s->threshold) rc = st_read_f32(f, "threshold", r->s->threshold, (uint64_t)r->s->cfg.d_sae, err);
  if (!rc && sae_trainer_log_threshold(r->tr)) {
    uint64_t n = (uint64_t)r->s->cfg.d_sae;
    rc = st_read_f32(f, "log_threshold", sae_trainer_log_threshold(r->tr), n, err);
    if (!rc) rc = st_read_f32(f, "log_threshold_adam_m", sae_trainer_log_threshold_adam_m(r->tr), n, err);
    if (!rc) rc = st_read_f32(f, "log_threshold_adam_v", sae_trainer_log_threshold_adam_v(r->tr), n, err);
    if (!rc) sae_trainer_sync_threshold(r->tr);
  }
  if (!rc) {
    const st_tensor_info_t *t = st_tensor_find(f, "since_fired");
    if (!t || t->n_elems != (uint64_t)r->s->cfg.d_sae || t->dtype != ST_I64)
      rc = ps_err_set(err, PS_EFORMAT, "%s: since_fired missing or malformed", path);
    else
      rc = st_read_raw(f, t, 0, t->nbytes, sae_trainer_steps_since_fired(r->tr), err);
  }
  if (!rc) {  // absent in checkpoints of earlier versions: counts start again from 0
    const st_tensor_info_t *t = st_tensor_find(f, "fire_steps");
    if (t && (t->n_elems != (uint64_t)r->s->cfg.d_sae || t->dtype != ST_I64))
      rc = ps_err_set(err, PS_EFORMAT, "%s: fire_steps malformed", path);
    else if (t)
      rc = st_read_raw(f, t, 0, t->nbytes, sae_trainer_fire_steps(r->tr), err);
  }
  if (!rc) rc = read_rows(f, "shuffle", r->sbuf, r->sn, r->w, path, err);
  if (!rc) rc = read_rows(f, "batch", r->batch, r->bn, r->w, path, err);
  if (!rc) rc = read_rows(f, "val", r->val, r->vn, r->w, path, err);
  st_close(&f);
  if (rc) return ps_err_prefix(err, "resume: ");
  sae_trainer_set_step_count(r->tr, step);
  r->rep.resumed_from_step = (int)step;
  PS_INFO("trainer: resumed from %s (step %lld, epoch %u, record %llu)", dir, (long long)step, r->pos.epoch,
              (unsigned long long)r->pos.record);
  return 1;
}

static void eval_val(run_t *r, double *mse, double *fvu, double *l0) {
  *mse = *fvu = *l0 = NAN;
  if (r->vn == 0) return;
  int64_t d = r->d, od = r->od, n = r->vn;
  float *x = malloc((size_t)(n * d) * sizeof(float)), *y = malloc((size_t)(n * od) * sizeof(float));
  float *yh = malloc((size_t)(n * od) * sizeof(float));
  if (!x || !y || !yh) {  // validation is a measurement, not the training: skip it, say so
    PS_WARN("validation skipped: cannot allocate %lld x (%lld + 2 x %lld) floats", (long long)n, (long long)d,
            (long long)od);
    free(x), free(y), free(yh);
    return;
  }
  for (int64_t i = 0; i < n; i++) {
    const float *row = r->val + i * r->w;
    for (int64_t k = 0; k < d; k++) x[i * d + k] = row[k] * r->in_scale;
    const float *t = r->has_target ? row + d : row;
    for (int64_t k = 0; k < od; k++) y[i * od + k] = t[k] * r->out_scale;
    if (r->s->cfg.normalize_per_sample) sae_normalize_row(y + i * od, od, NULL, NULL);
  }
  sae_enc_t *e = NULL;
  sae_codes_t codes = {0};
  ps_err_t err = {0};
  if (sae_enc_new(&e, r->s, r->pool, 1024, &err) == 0 && sae_enc_run(e, x, n, &codes, &err) == 0) {
    sae_decode(r->s, &codes, yh);
    double se = 0, var = 0;
    double *mu = ps_xcalloc((size_t)od, sizeof(double));
    for (int64_t i = 0; i < n; i++)
      for (int64_t k = 0; k < od; k++) mu[k] += y[i * od + k];
    for (int64_t k = 0; k < od; k++) mu[k] /= (double)n;
    for (int64_t i = 0; i < n * od; i++) {
      double df = yh[i] - y[i], dv = y[i] - mu[i % od];
      se += df * df;
      var += dv * dv;
    }
    free(mu);
    *mse = se / (double)n;
    *fvu = var > 0 ? se / var : NAN;
    *l0 = (double)codes.indptr[n] / (double)n;
  }
  sae_codes_free(&codes);
  sae_enc_free(&e);
  free(x);
  free(y);
  free(yh);
}

// One line of metrics.jsonl, strict JSON: a value that is not finite (the validation figures
// when there are no validation rows, an FVU without variance) is written as null.
static void write_metrics(run_t *r, const char *kind) {
  char path[4096];
  snprintf(path, sizeof path, "%s/metrics.jsonl", r->o->out_dir);
  FILE *f = fopen(path, "a");
  if (!f) return;
  const sae_losses_t *L = &r->last;
  const struct {
    const char *key, *fmt;
    double v;
  } nums[] = {
      {"rows_per_s", "%.1f", r->rep.rows_per_s},
      {"loss", "%.6g", L->loss},
      {"mse", "%.6g", L->mse},
      {"aux", "%.6g", L->aux},
      {"l1", "%.6g", L->l1},
      {"l0", "%.3f", L->l0},
      {"fvu", "%.6g", L->var > 0 ? L->mse / L->var : NAN},
      {"lr", "%.6g", L->lr},
      {"dead_fraction", "%.6f", r->rep.dead_fraction},
      {"val_mse", "%.6g", r->rep.last_val_mse},
      {"val_fvu", "%.6g", r->rep.last_val_fvu},
      {"val_l0", "%.3f", r->rep.last_val_l0},
      {"best_val_mse", "%.6g", r->rep.best_val_mse},
  };
  fprintf(f, "{\"kind\":\"%s\",\"step\":%lld,\"rows\":%lld", kind, (long long)r->rep.steps,
          (long long)r->rep.rows_trained);
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    fprintf(f, ",\"%s\":", nums[i].key);
    if (isfinite(nums[i].v)) fprintf(f, nums[i].fmt, nums[i].v);
    else fputs("null", f);
  }
  fprintf(f, ",\"best_step\":%lld}\n", (long long)r->rep.best_step);
  fclose(f);
}

static int do_eval(run_t *r, ps_err_t *err) {
  double mse, fvu, l0;
  eval_val(r, &mse, &fvu, &l0);
  r->rep.last_val_mse = mse;
  r->rep.last_val_fvu = fvu;
  r->rep.last_val_l0 = l0;
  r->rep.dead_fraction = (double)sae_trainer_n_dead(r->tr) / (double)r->s->cfg.d_sae;
  int best = isfinite(mse) && (!isfinite(r->rep.best_val_mse) || mse < r->rep.best_val_mse);
  if (best) {
    r->rep.best_val_mse = mse;
    r->rep.best_step = sae_trainer_step_count(r->tr);
  }
  PS_INFO("trainer: step %lld val mse %.5g fvu %.4f L0 %.1f dead %.1f%%%s", (long long)r->rep.steps, mse, fvu,
              l0, 100 * r->rep.dead_fraction, best ? " (best)" : "");
  write_metrics(r, "eval");
  if (best && r->o->out_dir) return save_ckpt(r, 1, err);
  return 0;
}

static void estimate_scales(run_t *r) {
  r->scale_set = 1;
  if (!r->o->dataset_norm || r->s->cfg.normalize_per_sample) return;
  // rows available now: the shuffle buffer and the pending batch
  double sx = 0, sy = 0;
  int64_t n = 0;
  const float *srcs[2] = {r->sbuf, r->batch};
  int64_t ns[2] = {r->sn, r->bn};
  for (int s = 0; s < 2; s++)
    for (int64_t i = 0; i < ns[s]; i++) {
      const float *row = srcs[s] + i * r->w;
      double a = 0, b = 0;
      for (int64_t k = 0; k < r->d; k++) a += (double)row[k] * row[k];
      if (r->has_target)
        for (int64_t k = 0; k < r->od; k++) b += (double)row[r->d + k] * row[r->d + k];
      sx += sqrt(a);
      sy += r->has_target ? sqrt(b) : sqrt(a);
      n++;
    }
  if (n == 0 || sx <= 0 || sy <= 0) return;
  r->in_scale = (float)(sqrt((double)r->d) / (sx / (double)n));
  r->out_scale = (float)(sqrt((double)r->od) / (sy / (double)n));
  PS_INFO("trainer: dataset normalisation: inputs x %.6g, targets x %.6g (E||x|| = sqrt(d) over %lld rows)",
              (double)r->in_scale, (double)r->out_scale, (long long)n);
}

// The rows at hand (the shuffle buffer's residents and the pending batch), scaled like a batch:
// *x (n x d) and *y (n x od, per-sample normalised when the model is; *y == *x for an SAE whose
// rows are not normalised). Free *y (when != *x) and *x.
static int64_t rows_at_hand(run_t *r, float **xo, float **yo) {
  int64_t n = r->sn + r->bn, d = r->d, od = r->od;
  float *x = ps_xmalloc((size_t)(n * d + 1) * sizeof(float));
  float *y = r->has_target ? ps_xmalloc((size_t)(n * od + 1) * sizeof(float)) : x;
  for (int64_t i = 0; i < n; i++) {
    const float *row = i < r->sn ? r->sbuf + i * r->w : r->batch + (i - r->sn) * r->w;
    for (int64_t k = 0; k < d; k++) x[i * d + k] = row[k] * r->in_scale;
    if (r->has_target)
      for (int64_t k = 0; k < od; k++) y[i * od + k] = row[d + k] * r->out_scale;
  }
  *xo = x;
  *yo = y;
  return n;
}

// Decoder rows from the rows at hand at step 0 (per-sample normalised when the model is).
static void init_rows_from_data(run_t *r) {
  float *x, *y;
  int64_t n = rows_at_hand(r, &x, &y), od = r->od;
  if (r->s->cfg.normalize_per_sample)
    for (int64_t i = 0; i < n; i++) sae_normalize_row(y + i * od, od, NULL, NULL);
  sae_init_rows_from_data(r->s, x, y, n, r->o->seed, r->o->dec_init_norm);
  if (y != x) free(y);
  free(x);
  PS_INFO("trainer: decoder rows initialised from %lld data rows", (long long)n);
}

// Dead latents toward the worst-reconstructed rows at hand, every resample_every steps until
// resample_until of the planned steps. Seeded by the run's seed and the step (resume stays exact).
static int resample_dead(run_t *r, int64_t step, ps_err_t *err) {
  const trainer_opts_t *o = r->o;
  if (!o->resample_every || step % o->resample_every) return 0;
  int64_t total = sae_trainer_opts(r->tr)->total_steps;
  if (o->resample_until > 0 && total > 0 && (double)step > o->resample_until * (double)total) return 0;
  float *x, *y;
  int64_t n = rows_at_hand(r, &x, &y), done = 0;
  int rc = sae_trainer_resample(r->tr, x, r->has_target ? y : NULL, n, ps_mix64(o->seed ^ ps_mix64((uint64_t)step)),
                                o->resample_dead_steps, o->resample_enc_scale, &done, err);
  if (y != x) free(y);
  free(x);
  if (!rc) PS_INFO("trainer: step %lld: %lld dead latents resampled from %lld rows", (long long)step,
                   (long long)done, (long long)n);
  return rc;
}

static int train_batch(run_t *r, ps_err_t *err) {
  const trainer_opts_t *o = r->o;
  int64_t n = r->bn, d = r->d, od = r->od;
  if (n == 0) return 0;
  if (!r->scale_set) estimate_scales(r);
  for (int64_t i = 0; i < n; i++) {
    const float *row = r->batch + i * r->w;
    for (int64_t k = 0; k < d; k++) r->bx[i * d + k] = row[k] * r->in_scale;
    if (r->has_target)
      for (int64_t k = 0; k < od; k++) r->by[i * od + k] = row[d + k] * r->out_scale;
  }
  if (sae_trainer_step_count(r->tr) == 0 && o->b_dec_init) {
    float *t = ps_xmalloc((size_t)(n * od) * sizeof(float));
    memcpy(t, r->has_target ? r->by : r->bx, (size_t)(n * od) * sizeof(float));
    if (r->s->cfg.normalize_per_sample)
      for (int64_t i = 0; i < n; i++) sae_normalize_row(t + i * od, od, NULL, NULL);
    sae_init_b_dec(r->s, t, n, o->b_dec_init == 2 ? 50 : 0);
    free(t);
  }
  if (sae_trainer_step_count(r->tr) == 0 && o->init_from_data) init_rows_from_data(r);
  int rc = sae_trainer_step(r->tr, r->bx, r->has_target ? r->by : NULL, n, &r->last, err);
  if (rc) return rc;
  r->bn = 0;
  r->rep.steps = sae_trainer_step_count(r->tr);
  r->rep.rows_trained += n;
  int64_t step = r->rep.steps;
  if (o->log_every && step % o->log_every == 0) {
    double dt = ps_mono_s() - r->t0;
    r->rep.rows_per_s = dt > 0 ? (double)(r->rep.rows_trained - r->rows_at_t0) / dt : 0;
    r->rep.dead_fraction = (double)r->last.n_dead / (double)r->s->cfg.d_sae;
    PS_INFO("trainer: step %lld rows %lld (%.0f rows/s) loss %.5g mse %.5g aux %.3g L0 %.1f dead %.1f%% lr %.3g",
                (long long)step, (long long)r->rep.rows_trained, r->rep.rows_per_s, r->last.loss, r->last.mse,
                r->last.aux, r->last.l0, 100 * r->rep.dead_fraction, r->last.lr);
    if (o->out_dir) write_metrics(r, "train");
    if (r->h->progress) r->h->progress(r->h->progress_ctx, &r->rep, &r->last);
  }
  if ((rc = resample_dead(r, step, err))) return rc;
  if (o->eval_every && step % o->eval_every == 0 && (rc = do_eval(r, err))) return rc;
  if (o->out_dir && o->ckpt_every && step % o->ckpt_every == 0 && (rc = save_ckpt(r, 0, err))) return rc;
  return 0;
}

static int add_train_row(run_t *r, const float *row, ps_err_t *err) {
  float *dst;
  if (r->scap == 0) {
    dst = r->batch + r->bn * r->w;
    memcpy(dst, row, (size_t)r->w * sizeof(float));
  } else if (r->sn < r->scap) {
    memcpy(r->sbuf + r->sn * r->w, row, (size_t)r->w * sizeof(float));
    r->sn++;
    return 0;
  } else {
    int64_t j = (int64_t)(ps_splitmix64(&r->rng) % (uint64_t)r->scap);
    memcpy(r->batch + r->bn * r->w, r->sbuf + j * r->w, (size_t)r->w * sizeof(float));
    memcpy(r->sbuf + j * r->w, row, (size_t)r->w * sizeof(float));
  }
  if (++r->bn == r->o->batch_rows) return train_batch(r, err);
  return 0;
}

static int stop_now(run_t *r) {
  if (r->h->stop && *r->h->stop) return 1;
  return r->o->max_steps && r->rep.steps >= r->o->max_steps;
}

int trainer_run(const trainer_opts_t *o, const trainer_hooks_t *h, ps_pool_t *pool, trainer_report_t *rep,
                ps_err_t *err) {
  if (o->batch_rows <= 0) return ps_err_set(err, PS_ECONFIG, "trainer: batch_rows must be > 0");
  if (o->resample_every < 0 || (o->resample_every > 0 && o->cfg.arch != SAE_TOPK && o->cfg.arch != SAE_BATCHTOPK))
    return ps_err_set(err, PS_ECONFIG, "trainer: --resample-every %lld: needs >= 0 and, when on, --arch topk or "
                      "batchtopk", (long long)o->resample_every);
  if (o->out_dir && strlen(o->out_dir) > 3000) return ps_err_set(err, PS_ECONFIG, "trainer: output path too long");
  run_t r = {0};
  r.o = o;
  r.h = h;
  r.pool = pool;
  r.rep.best_val_mse = NAN;
  r.rep.last_val_mse = NAN;
  r.rep.resumed_from_step = -1;
  r.rep.best_step = -1;
  int rc = 0, resumed = 0;
  float *row = NULL;
  if (o->out_dir && mkdir(o->out_dir, 0755) != 0 && errno != EEXIST)
    return ps_err_set(err, -errno, "trainer: mkdir %s: %s", o->out_dir, strerror(errno));
  reader_batch_t b;
  int got = h->next(h->src_ctx, &b, err);
  if (got < 0) return got;
  if (got == 0) return ps_err_set(err, PS_ETRUNC, "trainer: the stream is empty");
  r.has_target = b.target != NULL && b.target_dim > 0;
  if (r.has_target && o->target_delta && b.dim != b.target_dim) {
    rc = ps_err_set(err, PS_EDIM, "trainer: --target-mode delta (target - input) needs equal dimensions: input %s "
                    "has %u, target %s has %u (--target-mode raw trains on the target as it is)",
                    o->input_name ? o->input_name : "(stream)", b.dim, o->target_name ? o->target_name : "(stream)",
                    b.target_dim);
    goto out;
  }
  if ((rc = setup_model(&r, b.dim, r.has_target ? b.target_dim : b.dim, err))) goto out;
  if (o->resume && o->out_dir) {
    if ((rc = load_state(&r, err)) < 0) goto out;
    resumed = rc;
    rc = 0;
    if (resumed) {
      if (!h->seek) {
        rc = ps_err_set(err, PS_EUNSUPP, "trainer: this source cannot resume at epoch %u record %llu", r.pos.epoch,
                        (unsigned long long)r.pos.record);
        goto out;
      }
      if ((rc = h->seek(h->src_ctx, &r.pos, err))) goto out;
      got = h->next(h->src_ctx, &b, err);
      if (got < 0) {
        rc = got;
        goto out;
      }
    }
  }
  if (!resumed && o->out_dir) {  // never mix a fresh run into an old run's checkpoints
    char lt[256];
    if (link_target(o->out_dir, "latest", lt, sizeof lt) == 0) {
      rc = ps_err_set(err, PS_ESTATE, "trainer: %s already holds a run (latest -> %s); resume it (--resume 1) or "
                                      "choose another --out", o->out_dir, lt);
      goto out;
    }
  }
  r.t0 = ps_mono_s();
  r.rows_at_t0 = r.rep.rows_trained;
  row = ps_xmalloc((size_t)r.w * sizeof(float));
  int64_t skip = resumed ? r.consumed : 0;  // rows of the first batch consumed before the checkpoint
  r.consumed = 0;
  while (got == 1 && !stop_now(&r)) {
    if (b.dim != r.d || (r.has_target && b.target_dim != r.od)) {
      rc = ps_err_set(err, PS_EDIM, "trainer: batch seq %llu has dim %u (target %u); the stream started with %lld "
                                    "(%lld)", (unsigned long long)b.seq, b.dim, b.target_dim, (long long)r.d,
                      (long long)r.od);
      goto out;
    }
    for (uint32_t p = 0; p < b.n_proteins && !rc; p++) {
      uint32_t r0 = b.offsets ? b.offsets[p] : p, r1 = b.offsets ? b.offsets[p + 1] : p + 1;
      int is_val = b.is_val && b.is_val[p];
      if (is_val && b.epoch > 0) continue;
      for (uint32_t i = r0; i < r1 && !rc; i++) {
        if ((int64_t)i < skip) continue;
        r.consumed = (int64_t)i + 1;
        memcpy(row, b.rows + (size_t)i * r.d, (size_t)r.d * sizeof(float));
        if (r.has_target) memcpy(row + r.d, b.target + (size_t)i * r.od, (size_t)r.od * sizeof(float));
        if (r.has_target && o->target_delta)
          for (int64_t k = 0; k < r.d; k++) row[r.d + k] -= row[k];
        int finite = 1;
        for (int64_t k = 0; k < r.w; k++) finite &= isfinite(row[k]) != 0;
        if (!finite) {
          r.rep.rows_skipped_nonfinite++;
          continue;
        }
        if (is_val) {
          if (r.vn < o->val_max_rows) memcpy(r.val + r.vn++ * r.w, row, (size_t)r.w * sizeof(float));
          continue;
        }
        rc = add_train_row(&r, row, err);
      }
    }
    if (rc) break;
    r.pos = b.next;
    r.consumed = 0;
    skip = 0;
    got = h->next(h->src_ctx, &b, err);
  }
  if (rc == PS_ENAN) {
    PS_ERROR("trainer: %s; stopping with the last good checkpoint kept", err->msg);
    r.rep.stopped = 2;
    goto out;
  }
  if (rc) goto out;
  if (got < 0) {
    rc = got;
    goto out;
  }
  if (got == 0 && !stop_now(&r)) {  // end of stream: drain the shuffle buffer in random order
    while (r.sn > 0 && !rc && !stop_now(&r)) {
      int64_t j = (int64_t)(ps_splitmix64(&r.rng) % (uint64_t)r.sn);
      memcpy(r.batch + r.bn * r.w, r.sbuf + j * r.w, (size_t)r.w * sizeof(float));
      memmove(r.sbuf + j * r.w, r.sbuf + (r.sn - 1) * r.w, (size_t)r.w * sizeof(float));
      r.sn--;
      if (++r.bn == o->batch_rows) rc = train_batch(&r, err);
    }
    if (!rc && r.bn > 0 && !stop_now(&r)) rc = train_batch(&r, err);
    if (rc == PS_ENAN) {
        r.rep.stopped = 2;
      PS_ERROR("trainer: %s; stopping with the last good checkpoint kept", err->msg);
      goto out;
    }
    if (rc) goto out;
  }
  if (h->stop && *h->stop) r.rep.stopped = 1;
  if (r.rep.steps == 0 && !resumed) {
    rc = ps_err_set(err, PS_ETRUNC, "trainer: the stream ended before one batch of %lld training rows",
                    (long long)o->batch_rows);
    goto out;
  }
  if (!r.rep.stopped && (rc = do_eval(&r, err))) goto out;
  if (o->out_dir && (rc = save_ckpt(&r, 0, err))) goto out;
  if (o->out_dir) write_metrics(&r, "final");
out:
  r.rep.val_rows = r.vn;
  if (rep) *rep = r.rep;
  free(row);
  free(r.sbuf);
  free(r.batch);
  free(r.val);
  free(r.bx);
  free(r.by);
  sae_trainer_free(&r.tr);
  sae_free(&r.s);
  return rc;
}
