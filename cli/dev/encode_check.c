// protsae encode-check (developer tool) — the feature store's codes against a direct in-process
// encode of the same rows: batches of the reader's size, so BLAS sees the same shapes and the codes
// must be bitwise equal. Prints proteins_checked, missing, mismatches, max_abs_diff; exit status 1
// when a code is missing or differs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "dev.h"
#include "emb.h"
#include "featstore.h"
#include "sae.h"

static const ps_config_entry_t check_table[] = {
    {"db", "protsae-features.db", "feature store (protsae-scorer --db), protein level"},
    {"sae", NULL, "the SAE the encoders used"},
    {"emb", NULL, "the embeddings the reader streamed (any format the reader takes)"},
    {"ids", NULL, "ids file (npy)"},
    {"batch-rows", "1024", "the reader's --batch-rows (same BLAS shapes: codes must be bitwise equal)"},
    {NULL, NULL, NULL},
};

int cli_encode_check(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, check_table, "protsae encode-check", argc, argv);
  if (crc >= 0) return crc;
  if (!ps_config_str(cfg, "sae") || !ps_config_str(cfg, "emb"))
    return ps_config_cli_bad(&cfg, check_table, "protsae encode-check", "needs --sae and --emb");
  fs_t *fs = NULL;
  fs_meta_t m;
  sae_t *s = NULL;
  sae_enc_t *enc = NULL;
  emb_source_t *src = NULL;
  sae_codes_t codes = {0};
  int status = 1;
  uint64_t checked = 0, mismatches = 0, missing = 0;
  float *x = NULL;
  char **ids = NULL;
  int64_t br_alloc = 0;
  double max_diff = 0;
  if (cli_store_open(ps_config_str(cfg, "db"), &fs, &m, &err) < 0) goto out;
  if (sae_load(&s, ps_config_str(cfg, "sae"), &err) < 0) goto out;
  if (sae_enc_new(&enc, s, NULL, 1024, &err) < 0) goto out;
  emb_source_opts_t eo = {0};
  eo.path = ps_config_str(cfg, "emb");
  eo.ids_path = ps_config_str(cfg, "ids");
  eo.layer = -1;
  if (emb_source_open(&src, &eo, &err) < 0) goto out;
  // Batches of the reader's size (protein level: exactly batch-rows), so BLAS sees the same shapes
  // and the codes must be bitwise equal; values are also compared with a tolerance.
  int64_t br;
  if (ps_config_i64(cfg, "batch-rows", &br, &err) < 0) goto out;
  if (br < 1) br = 1;
  int64_t d = s->cfg.d_in, nb = 0;
  x = ps_xmalloc((size_t)(br * d) * sizeof(float));
  ids = ps_xcalloc((size_t)br, sizeof(char *));
  br_alloc = br;
  emb_record_t rec;
  int g;
  for (;;) {
    g = emb_source_next(src, &rec, &err);
    if (g < 0) goto out;
    if (g == 1) {
      if (rec.dim != d || rec.n_rows != 1) {
        ps_err_set(&err, PS_EDIM, "%s: record %llu: %u x %u, the SAE takes 1 x %lld (protein level)", eo.path,
                   (unsigned long long)rec.index, rec.n_rows, rec.dim, (long long)d);
        goto out;
      }
      memcpy(x + nb * d, rec.rows, (size_t)d * sizeof(float));
      free(ids[nb]);
      ids[nb++] = ps_xstrdup(rec.id);
    }
    if (nb == br || (g == 0 && nb)) {
      if (sae_enc_run(enc, x, nb, &codes, &err) < 0) goto out;
      for (int64_t r = 0; r < nb; r++) {
        uint32_t nnz, *idx;
        float *val;
        int got = fs_code_get(fs, ids[r], &nnz, &idx, &val, &err);
        if (got < 0) goto out;
        checked++;
        if (!got) {
          missing++;
          continue;
        }
        int64_t a = codes.indptr[r], n = codes.indptr[r + 1] - a;
        int same = (int64_t)nnz == n;
        for (int64_t j = 0; same && j < n; j++) {
          same = idx[j] == (uint32_t)codes.indices[a + j];
          double diff = fabs((double)val[j] - codes.values[a + j]);
          if (diff > max_diff) max_diff = diff;
          if (memcmp(&val[j], &codes.values[a + j], sizeof(float))) same = 0;
        }
        if (!same && mismatches++ < 5) fprintf(stderr, "mismatch: %s\n", ids[r]);
        free(idx);
        free(val);
      }
      nb = 0;
    }
    if (g == 0) break;
  }
  printf("proteins_checked: %llu\nmissing: %llu\nmismatches: %llu\nmax_abs_diff: %g\n", (unsigned long long)checked,
         (unsigned long long)missing, (unsigned long long)mismatches, max_diff);
  status = mismatches || missing ? 1 : 0;
out:
  if (status && err.msg[0]) fprintf(stderr, "protsae encode-check: %s\n", err.msg);
  sae_codes_free(&codes);
  if (ids)
    for (int64_t i = 0; i < br_alloc; i++) free(ids[i]);
  free(ids);
  free(x);
  emb_source_destroy(&src);
  sae_enc_free(&enc);
  sae_free(&s);
  fs_close(&fs);
  ps_config_destroy(&cfg);
  return status;
}
