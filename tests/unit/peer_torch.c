// peer_torch DIR — the C side of unit_sae_peer (peer_torch.sh): loads each checkpoint
// peer_torch.py wrote into DIR (an InterPLM / dictionary_learning ae.pt, the reference study's
// Lightning .ckpt, dictionary_learning's TopK state_dict) with sae_load, encodes the rows and compares with PyTorch's codes (dense
// [rows, d_sae], tolerance 1e-5 absolute + 1e-5 relative); then the failures: a mis-shaped and a
// missing tensor (the error names the file and the tensor), a TopK checkpoint without k (refused
// naming PROTSAE_SAE_K, then loaded with it). Exit 0 when all hold, 1 otherwise.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sae.h"

static int fails;
#define CHECK(c, ...)                                  \
  do {                                                 \
    if (!(c)) {                                        \
      fprintf(stderr, "peer_torch: FAIL: " __VA_ARGS__); \
      fputc('\n', stderr);                             \
      fails++;                                         \
    }                                                  \
  } while (0)

static float *read_f32(const char *dir, const char *name, const char *ext, size_t n) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s.%s.f32", dir, name, ext);
  FILE *f = fopen(p, "rb");
  float *v = malloc(n * sizeof(float));
  if (!f || fread(v, sizeof(float), n, f) != n) {
    fprintf(stderr, "peer_torch: cannot read %s\n", p);
    exit(1);
  }
  fclose(f);
  return v;
}

// Encode the case's rows with the SAE at path; compare with PyTorch's codes.
static void compare(const char *dir, const char *name, const char *path, long rows, long d, long n) {
  ps_err_t err = {0};
  sae_t *s = NULL;
  if (sae_load(&s, path, &err) < 0) {
    CHECK(0, "%s: sae_load: %s", name, err.msg);
    return;
  }
  CHECK(s->cfg.d_in == d && s->cfg.d_sae == n && s->cfg.d_out == d, "%s: dims %lld %lld %lld", name,
        (long long)s->cfg.d_in, (long long)s->cfg.d_sae, (long long)s->cfg.d_out);
  float *x = read_f32(dir, name, "x", (size_t)(rows * d)), *want = read_f32(dir, name, "codes", (size_t)(rows * n));
  float *got = calloc((size_t)(rows * n), sizeof(float));
  sae_enc_t *e = NULL;
  sae_codes_t c = {0};
  if (sae_enc_new(&e, s, NULL, 7, &err) || sae_enc_run(e, x, rows, &c, &err)) {
    CHECK(0, "%s: encode: %s", name, err.msg);
  } else {
    for (long r = 0; r < rows; r++)
      for (int64_t q = c.indptr[r]; q < c.indptr[r + 1]; q++) got[r * n + c.indices[q]] = c.values[q];
    double worst = 0;
    long active = 0;
    for (long i = 0; i < rows * n; i++) {
      double diff = fabs((double)got[i] - want[i]), tol = 1e-5 + 1e-5 * fabs(want[i]);
      if (diff / tol > worst) worst = diff / tol;
      active += want[i] > 0;
      if (diff > tol) {
        CHECK(0, "%s: row %ld latent %ld: C %.8g, PyTorch %.8g", name, i / n, i % n, got[i], want[i]);
        break;
      }
    }
    printf("%s: %ld rows, %ld active codes, arch %s k %d, worst |diff| / tol %.3g\n", name, rows, active,
           sae_arch_name(s->cfg.arch), s->cfg.k, worst);
    CHECK(active > rows, "%s: too few active codes (%ld) for a meaningful comparison", name, active);
  }
  sae_codes_free(&c);
  sae_enc_free(&e);
  free(x);
  free(want);
  free(got);
  sae_free(&s);
}

static void expect_error(const char *dir, const char *file, int code, const char *needle) {
  char p[4096];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  ps_err_t err = {0};
  sae_t *s = NULL;
  int rc = sae_load(&s, p, &err);
  CHECK(rc == code, "%s: rc %d, %d expected (%s)", file, rc, code, err.msg);
  CHECK(strstr(err.msg, p) && strstr(err.msg, needle), "%s: message '%s' lacks the file or '%s'", file, err.msg,
        needle);
  CHECK(s == NULL, "%s: an SAE was returned with the error", file);
  printf("%s: refused: %s\n", file, err.msg);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: peer_torch DIR\n");
    return 2;
  }
  const char *dir = argv[1];
  char p[4096], name[64], file[256];
  snprintf(p, sizeof p, "%s/cases.txt", dir);
  FILE *f = fopen(p, "r");
  if (!f) return 1;
  long rows, d, n;
  int ncases = 0;
  while (fscanf(f, "%63s %255s %ld %ld %ld", name, file, &rows, &d, &n) == 5) {
    snprintf(p, sizeof p, "%s/%s", dir, file);
    compare(dir, name, p, rows, d, n);
    ncases++;
  }
  fclose(f);
  CHECK(ncases == 3, "cases.txt lists %d cases, 3 expected", ncases);
  expect_error(dir, "ae_badshape.pt", PS_EDIM, "'decoder.weight'");
  expect_error(dir, "ae_nobias.pt", PS_ENOTFOUND, "'bias' missing");
  unsetenv(SAE_K_ENV);
  expect_error(dir, "study_nok.ckpt", PS_ECONFIG, SAE_K_ENV);
  setenv(SAE_K_ENV, "6", 1);
  snprintf(p, sizeof p, "%s/study_nok.ckpt", dir);
  compare(dir, "study", p, 30, 12, 48);
  unsetenv(SAE_K_ENV);
  if (!fails) printf("peer_torch: every peer checkpoint encodes as PyTorch does\n");
  return fails ? 1 : 0;
}
