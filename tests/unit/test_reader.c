// Reader logic: FASTA id matching, residue-length checks, batching (protein never split), a
// transcoder target's ids,
// split filter, epochs, NaN handling, and resume from a recorded position giving exactly the
// batches of an uninterrupted run; a huge dimension costs the rows read, never batch_rows of
// them, and an absurd one is refused. Inputs are small .npy files written by the test itself.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fixture.h"
#include "reader.h"

// Minimal NPY v1 writer for fixtures (float32 or int64, C order).
static void write_npy(const char *path, const char *descr, const void *data, size_t rows, size_t cols, size_t esz) {
  char hdr[256];
  int n = cols ? snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu, %zu), }", descr, rows, cols)
               : snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%zu,), }", descr, rows);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
  uint16_t hl = (uint16_t)(n + pad + 1);
  pre[8] = (unsigned char)(hl & 0xff);
  pre[9] = (unsigned char)(hl >> 8);
  fwrite(pre, 1, 10, f);
  fwrite(hdr, 1, (size_t)n, f);
  for (int i = 0; i < pad; i++) fputc(' ', f);
  fputc('\n', f);
  fwrite(data, esz, rows * (cols ? cols : 1), f);
  fclose(f);
}

#define NP 50
#define D 6

// A file in the scratch dir (every path buffer here is char[256]).
static void path_of(char *buf, const char *name) { fx_path(buf, 256, name); }

static int setup(void **state) {
  if (fx_setup(state) < 0) return -1;
  char p[256];
  // FASTA: NP proteins, lengths 1 + (i % 7)
  path_of(p, "prot.fasta");
  FILE *f = fopen(p, "w");
  for (int i = 0; i < NP; i++) {
    fprintf(f, ">P%03d some description\n", i);
    for (int k = 0; k < 1 + i % 7; k++) fputc("ACDEFGHIK"[k % 9], f);
    fputc('\n', f);
  }
  fclose(f);
  // protein level: row i = i + col/10
  float x[NP * D];
  for (int i = 0; i < NP; i++)
    for (int j = 0; j < D; j++) x[i * D + j] = (float)i + (float)j / 10.0f;
  path_of(p, "prot.npy");
  write_npy(p, "<f4", x, NP, D, 4);
  // residue level: rows = sum of lengths
  size_t total = 0;
  int64_t off[NP + 1];
  off[0] = 0;
  for (int i = 0; i < NP; i++) off[i + 1] = off[i] + 1 + i % 7;
  total = (size_t)off[NP];
  float *r = malloc(total * D * sizeof(float));
  for (int i = 0; i < NP; i++)
    for (int64_t k = off[i]; k < off[i + 1]; k++)
      for (int j = 0; j < D; j++) r[k * D + j] = (float)i * 100 + (float)(k - off[i]) + (float)j / 10.0f;
  path_of(p, "res.npy");
  write_npy(p, "<f4", r, total, D, 4);
  path_of(p, "res.offsets.npy");
  write_npy(p, "<i8", off, NP + 1, 0, 8);
  // a version with a NaN in protein 7
  x[7 * D + 3] = NAN;
  path_of(p, "nan.npy");
  write_npy(p, "<f4", x, NP, D, 4);
  free(r);
  return 0;
}

static reader_opts_t opts_for(const char *emb, char *pbuf, char *fbuf, emb_level_t level) {
  reader_opts_t o;
  memset(&o, 0, sizeof o);
  path_of(pbuf, emb);
  path_of(fbuf, "prot.fasta");
  o.src.path = pbuf;
  o.src.level = level;
  o.src.layer = -1;
  o.fasta_path = fbuf;
  o.batch_rows = 8;
  o.val_fraction = 0.25;
  o.seed = 3;
  o.epochs = 1;
  return o;
}

// A transcoder's target .npy takes ids like the input: by default the input's --ids file (no FASTA
// needed), or its own; a target whose ids disagree is refused naming it, the record and both ids.
static void test_target_own_ids(void **state) {
  (void)state;
  char p[256], ids[256], tp[256], tids[256], bad[256];
  float y[NP * 4];
  for (int i = 0; i < NP; i++)
    for (int j = 0; j < 4; j++) y[i * 4 + j] = -(float)i - (float)j / 10.0f;
  path_of(tp, "target.npy");
  write_npy(tp, "<f4", y, NP, 4, 4);
  path_of(ids, "prot.ids");
  path_of(tids, "target.ids");
  path_of(bad, "bad.ids");
  FILE *f = fopen(ids, "w"), *g = fopen(tids, "w"), *h = fopen(bad, "w");
  for (int i = 0; i < NP; i++) {
    fprintf(f, "P%03d\n", i);
    fprintf(g, "P%03d\n", i);
    fprintf(h, "P%03d\n", i == 17 ? 99 : i);
  }
  fclose(f), fclose(g), fclose(h);
  for (int variant = 0; variant < 3; variant++) {
    reader_opts_t o;
    memset(&o, 0, sizeof o);
    path_of(p, "prot.npy");
    o.src.path = p;
    o.src.level = EMB_LEVEL_PROTEIN;
    o.src.layer = -1;
    o.src.ids_path = ids;  // no FASTA
    o.target_path = tp;
    o.target_layer = -1;
    o.target_ids_path = variant == 0 ? NULL : variant == 1 ? tids : bad;
    o.batch_rows = 8;
    o.epochs = 1;
    reader_t *r = NULL;
    ps_err_t err = {0};
    assert_int_equal(reader_new(&r, &o, &err), 0);
    reader_batch_t b;
    int rc, seen = 0;
    while ((rc = reader_next_batch(r, &b, &err)) > 0) {
      assert_int_equal(b.target_dim, 4);
      for (uint32_t i = 0; i < b.n_proteins; i++, seen++) assert_true(b.target[i * 4 + 1] == -(float)seen - 0.1f);
    }
    if (variant < 2) {
      assert_int_equal(rc, 0);
      assert_int_equal(seen, NP);
    } else {
      assert_true(rc < 0);
      assert_non_null(strstr(err.msg, "target.npy"));
      assert_non_null(strstr(err.msg, "P099"));
      assert_non_null(strstr(err.msg, "record 17"));
    }
    reader_destroy(&r);
  }
}

static void test_protein_batches(void **state) {
  (void)state;
  char p[256], fa[256];
  reader_opts_t o = opts_for("prot.npy", p, fa, EMB_LEVEL_PROTEIN);
  reader_t *r = NULL;
  ps_err_t err = {0};
  assert_int_equal(reader_new(&r, &o, &err), 0);
  reader_batch_t b;
  int rc, seen = 0, batches = 0, val = 0;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    assert_int_equal(b.seq, (uint64_t)batches);
    assert_int_equal(b.dim, D);
    assert_true(b.n_rows == 8 || (batches == NP / 8 && b.n_rows == NP % 8));
    for (uint32_t i = 0; i < b.n_proteins; i++, seen++) {
      char want[16];
      snprintf(want, sizeof want, "P%03d", seen);
      assert_string_equal(b.ids[i], want);
      assert_true(b.rows[i * D + 2] == (float)seen + 0.2f);
      assert_int_equal(b.is_val[i], reader_is_validation(want, 3, 0.25));
      val += b.is_val[i];
    }
    batches++;
  }
  assert_int_equal(rc, 0);
  assert_int_equal(seen, NP);
  assert_true(val > 0 && val < NP);
  assert_int_equal(reader_counts(r)->rows, NP);
  reader_destroy(&r);
  assert_null(r);
}

static void test_residue_batches_keep_proteins_whole(void **state) {
  (void)state;
  char p[256], fa[256];
  reader_opts_t o = opts_for("res.npy", p, fa, EMB_LEVEL_RESIDUE);
  reader_t *r = NULL;
  ps_err_t err = {0};
  assert_int_equal(reader_new(&r, &o, &err), 0);
  reader_batch_t b;
  int seen = 0, rc;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    assert_true(b.n_rows >= 8 || seen + (int)b.n_proteins == NP);
    for (uint32_t i = 0; i < b.n_proteins; i++, seen++) {
      uint32_t len = b.offsets[i + 1] - b.offsets[i];
      assert_int_equal(len, 1 + seen % 7);
      // last row of protein `seen`: value seen*100 + (len-1)
      assert_true(b.rows[(size_t)(b.offsets[i + 1] - 1) * D] == (float)seen * 100 + (float)(len - 1));
    }
    assert_int_equal(b.offsets[0], 0);
    assert_int_equal(b.offsets[b.n_proteins], b.n_rows);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(seen, NP);
  reader_destroy(&r);
  // protein level from the residue file: mean over residues
  o.src.level = EMB_LEVEL_PROTEIN;
  assert_int_equal(reader_new(&r, &o, &err), 0);
  assert_int_equal(reader_next_batch(r, &b, &err), 1);
  // protein 3 has 4 residues: values 300 + {0,1,2,3} -> mean 301.5 at column 0
  assert_true(fabsf(b.rows[3 * D] - 301.5f) < 1e-4f);
  reader_destroy(&r);
}

static void test_resume_equals_uninterrupted(void **state) {
  (void)state;
  char p[256], fa[256];
  reader_opts_t o = opts_for("res.npy", p, fa, EMB_LEVEL_RESIDUE);
  o.epochs = 2;
  reader_t *r = NULL;
  ps_err_t err = {0};
  assert_int_equal(reader_new(&r, &o, &err), 0);
  reader_batch_t b;
  double sums[64];
  uint64_t seqs[64];
  reader_pos_t at5 = {0, 0, 0};
  int n = 0;
  while (reader_next_batch(r, &b, &err) > 0) {
    double s = 0;
    for (size_t k = 0; k < (size_t)b.n_rows * D; k++) s += b.rows[k] * (double)(k % 5 + 1);
    sums[n] = s;
    seqs[n] = b.seq;
    if (n == 5) at5 = b.next;
    n++;
  }
  assert_true(n > 8);
  reader_destroy(&r);
  assert_int_equal(reader_new(&r, &o, &err), 0);
  assert_int_equal(reader_seek(r, &at5, &err), 0);
  int m = 6;
  while (reader_next_batch(r, &b, &err) > 0) {
    double s = 0;
    for (size_t k = 0; k < (size_t)b.n_rows * D; k++) s += b.rows[k] * (double)(k % 5 + 1);
    assert_int_equal(b.seq, seqs[m]);
    assert_true(s == sums[m]);
    m++;
  }
  assert_int_equal(m, n);
  reader_destroy(&r);
}

static void test_errors_name_input(void **state) {
  (void)state;
  char p[256], fa[256];
  ps_err_t err = {0};
  reader_t *r = NULL;
  reader_batch_t b;
  // NaN: error names the file, the record and the column
  reader_opts_t o = opts_for("nan.npy", p, fa, EMB_LEVEL_PROTEIN);
  assert_int_equal(reader_new(&r, &o, &err), 0);
  int rc;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) {
  }
  assert_int_equal(rc, PS_ENAN);
  assert_non_null(strstr(err.msg, "nan.npy"));
  assert_non_null(strstr(err.msg, "P007"));
  assert_non_null(strstr(err.msg, "column 3"));
  reader_destroy(&r);
  // ... or is skipped and counted
  o.skip_nonfinite = 1;
  assert_int_equal(reader_new(&r, &o, &err), 0);
  int seen = 0;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) seen += (int)b.n_proteins;
  assert_int_equal(rc, 0);
  assert_int_equal(seen, NP - 1);
  assert_int_equal(reader_counts(r)->skipped_nonfinite, 1);
  reader_destroy(&r);
  // residue rows that disagree with the sequence length: give the protein-level file as residue
  // level with the FASTA of other lengths -> offsets file missing is a clear error too
  o = opts_for("prot.npy", p, fa, EMB_LEVEL_RESIDUE);
  rc = reader_new(&r, &o, &err);
  if (rc == 0) {
    while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    }
    reader_destroy(&r);
  }
  assert_true(rc < 0);
  assert_non_null(strstr(err.msg, "prot"));
  // ids not in the FASTA: a FASTA with other ids
  char other[256];
  path_of(other, "other.fasta");
  FILE *f = fopen(other, "w");
  for (int i = 0; i < NP; i++) fprintf(f, ">Q%03d\nMA\n", i);
  fclose(f);
  o = opts_for("prot.npy", p, fa, EMB_LEVEL_PROTEIN);
  o.fasta_path = other;
  o.src.ids_path = NULL;
  char ids[256];
  path_of(ids, "prot.ids");
  f = fopen(ids, "w");
  for (int i = 0; i < NP; i++) fprintf(f, "P%03d\n", i);
  fclose(f);
  o.src.ids_path = ids;
  assert_int_equal(reader_new(&r, &o, &err), 0);
  rc = reader_next_batch(r, &b, &err);
  assert_int_equal(rc, PS_EMISMATCH);
  assert_non_null(strstr(err.msg, "P000"));
  assert_non_null(strstr(err.msg, "other.fasta"));
  reader_destroy(&r);
}

// A header-only npy of `rows` x `dim` float32, made whole with a sparse tail (zeros, no disk).
static void write_sparse_npy(const char *path, size_t rows, size_t dim) {
  write_npy(path, "<f4", NULL, 0, dim, 4);
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  char hdr[256];
  assert_int_equal(fread(hdr, 1, 10, f), 10);
  long data = 10 + (unsigned char)hdr[8] + 256L * (unsigned char)hdr[9];
  fclose(f);
  // the header says (0, dim): patch in `rows` (the padding absorbs the longer number)
  char fix[256];
  int n = snprintf(fix, sizeof fix, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, dim);
  assert_true(n > 0 && 10 + n < data);
  f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 10, SEEK_SET);
  fwrite(fix, 1, (size_t)n, f);
  for (long i = 10 + n; i < data - 1; i++) fputc(' ', f);
  fclose(f);
  assert_int_equal(truncate(path, data + (off_t)(rows * dim * 4)), 0);
}

// Run fn in a child whose address space may grow by at most 1 GiB: an allocation sized by a
// guess rather than by the file aborts the child (ps_xmalloc) instead of the test machine.
// Returns the child's exit status (-signal when killed).
static int run_limited(int (*fn)(void)) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%lu", &pages) != 1) _exit(90);
    fclose(f);
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)1 << 30);
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(91);
    _exit(fn());
  }
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static int read_wide(void) {  // 4 rows of 2^20 floats (16 MiB) with the default 1024-row batch
  char p[256];
  path_of(p, "wide.npy");
  reader_opts_t o;
  memset(&o, 0, sizeof o);
  o.src.path = p;
  o.src.layer = -1;
  reader_t *r = NULL;
  ps_err_t err = {0};
  if (reader_new(&r, &o, &err) != 0) return fprintf(stderr, "open: %s\n", err.msg), 10;
  reader_batch_t b;
  int rc, rows = 0;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    if (b.dim != EMB_MAX_DIM) return fprintf(stderr, "dim %u, want %u\n", b.dim, EMB_MAX_DIM), 11;
    rows += (int)b.n_rows;
  }
  reader_destroy(&r);
  if (rc != 0) return fprintf(stderr, "read: %s\n", err.msg), 12;
  return rows == 4 ? 0 : (fprintf(stderr, "rows %d, want 4\n", rows), 13);
}

static int open_absurd(void) {  // 4 rows of 2^28 floats: refused at open, naming the file
  char p[256];
  path_of(p, "absurd.npy");
  reader_opts_t o;
  memset(&o, 0, sizeof o);
  o.src.path = p;
  o.src.layer = -1;
  reader_t *r = NULL;
  ps_err_t err = {0};
  int rc = reader_new(&r, &o, &err);
  if (rc == 0) {
    reader_batch_t b;
    while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    }
    reader_destroy(&r);
  }
  if (rc != PS_EDIM || !strstr(err.msg, "absurd.npy") || !strstr(err.msg, "268435456"))
    return fprintf(stderr, "rc %d (want PS_EDIM), message '%s'\n", rc, err.msg), 20;
  return 0;
}

static void test_huge_dim_bounded(void **state) {
  (void)state;
#if defined(__SANITIZE_ADDRESS__)
  skip();  // ASan reserves terabytes of shadow: an address-space limit cannot apply
#endif
  char p[256];
  path_of(p, "wide.npy");
  write_sparse_npy(p, 4, EMB_MAX_DIM);
  path_of(p, "absurd.npy");
  write_sparse_npy(p, 4, (size_t)1 << 28);
  assert_int_equal(run_limited(read_wide), 0);
  assert_int_equal(run_limited(open_absurd), 0);
}

static void test_split_filter_and_epochs(void **state) {
  (void)state;
  char p[256], fa[256];
  ps_err_t err = {0};
  reader_t *r = NULL;
  reader_batch_t b;
  int counts[3] = {0, 0, 0};
  for (int s = 0; s < 3; s++) {
    reader_opts_t o = opts_for("prot.npy", p, fa, EMB_LEVEL_PROTEIN);
    o.split = (reader_split_t)s;
    o.epochs = 3;
    assert_int_equal(reader_new(&r, &o, &err), 0);
    while (reader_next_batch(r, &b, &err) > 0) {
      for (uint32_t i = 0; i < b.n_proteins; i++) {
        if (s == READER_SPLIT_TRAIN) assert_int_equal(b.is_val[i], 0);
        if (s == READER_SPLIT_VAL) assert_int_equal(b.is_val[i], 1);
      }
      counts[s] += (int)b.n_proteins;
    }
    reader_destroy(&r);
  }
  assert_int_equal(counts[0], 3 * NP);
  assert_int_equal(counts[1] + counts[2], 3 * NP);
  assert_true(counts[2] > 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protein_batches),
      cmocka_unit_test(test_residue_batches_keep_proteins_whole),
      cmocka_unit_test(test_resume_equals_uninterrupted),
      cmocka_unit_test(test_errors_name_input),
      cmocka_unit_test(test_split_filter_and_epochs),
      cmocka_unit_test(test_huge_dim_bounded),
      cmocka_unit_test(test_target_own_ids),
  };
  return cmocka_run_group_tests(tests, setup, fx_teardown);
}
