// bench_reader — throughput of the reader stage: in-process (the reader library iterating every
// batch, no ZeroMQ) against the real protsae-reader process streaming over ipc:// to a PULL
// socket in this process. Both read the same generated N x d float32 .npy, in the same command,
// so the ratio reader_ipc_vs_inprocess is the cost of the process boundary + wire format.
// Timed: in-process from reader_new to the last batch; ipc from fork to the EndOfStream (the
// reader's start-up and connect included). The file is hot in the page cache for both.
//
// Usage: bench_reader [--rows N] [--dim D] [--batch-rows B] [--repeat K] [--hwm H]
//                     [--tmpdir DIR] [--reader PATH]
//   Defaults: 1,000,000 x 480 (1.92 GB), batches of 1024, 3 repeats (median reported). When the
//   temporary file system holds less than twice the file (df), --rows shrinks to fit and a note
//   goes to stderr; the `rows:` line says what was measured.
//
// Output (stdout, `key: value`): rows, dim, batch_rows, batches, file_mb, repeats,
// inprocess_rows_per_s, reader_rows_per_s (ipc), reader_ipc_vs_inprocess, reader_mb_per_s (row
// payload over ipc), inprocess_mb_per_s, wire_mb_per_s (envelope bytes), and the seconds of the
// median runs. Every run checks the row count, the batch count against EndOfStream, and one row
// per batch against the generator. The temporary directory is removed at exit (also on
// SIGINT/SIGTERM).
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "hash.h"
#include "io.h"
#include "npy.h"
#include "reader.h"
#include "wire.h"

#ifndef PROTSAE_READER_EXE
#define PROTSAE_READER_EXE "build/stages/reader/protsae-reader"
#endif

// ---- temporary files, removed at exit and on SIGINT/SIGTERM ---------------------------------
static char g_dir[PATH_MAX - 64], g_npy[PATH_MAX], g_npy_tmp[PATH_MAX], g_sock[PATH_MAX], g_log[PATH_MAX];
static volatile pid_t g_child = 0;

static void cleanup(void) {
  if (g_child > 0) {
    kill(g_child, SIGKILL);
    waitpid(g_child, NULL, 0);
    g_child = 0;
  }
  if (g_npy[0]) unlink(g_npy);
  if (g_npy_tmp[0]) unlink(g_npy_tmp);
  if (g_sock[0]) unlink(g_sock);
  if (g_log[0]) unlink(g_log);
  if (g_dir[0]) rmdir(g_dir);
}

static void on_signal(int sig) {
  cleanup();  // unlink/rmdir/kill/waitpid are async-signal-safe
  signal(sig, SIG_DFL);
  raise(sig);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_reader: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  cleanup();
  exit(1);
}

// ---- data: a deterministic, finite value per (row, col) -------------------------------------
static inline float gen(uint64_t row, uint32_t col) {
  uint64_t x = ps_mix64(row * 0x9E3779B97F4A7C15ull ^ (uint64_t)col * 0xC2B2AE3D27D4EB4Full);
  return (float)(int32_t)(x >> 40 & 0xffffff) / 16777216.0f - 0.5f;  // [-0.5, 0.5)
}

// One row per batch is compared with the generator: the batch's first row is record first_record.
static void check_row(const float *row, uint64_t record, uint32_t dim, const char *what) {
  for (uint32_t j = 0; j < dim; j++)
    if (row[j] != gen(record, j))
      die("%s: record %" PRIu64 " column %u is %.9g, expected %.9g", what, record, j, row[j], gen(record, j));
}

static void write_npy(const char *path, uint64_t rows, uint32_t dim) {
  ps_err_t err = {0};
  npy_writer_t *w = NULL;
  if (npy_writer_open(&w, path, NPY_F32, dim, &err) < 0) die("%s", err.msg);
  const uint64_t chunk = 4096;
  float *buf = malloc(chunk * dim * sizeof(float));
  if (!buf) die("out of memory");
  for (uint64_t r0 = 0; r0 < rows; r0 += chunk) {
    uint64_t n = rows - r0 < chunk ? rows - r0 : chunk;
    for (uint64_t r = 0; r < n; r++)
      for (uint32_t j = 0; j < dim; j++) buf[r * dim + j] = gen(r0 + r, j);
    if (npy_writer_append_f32(w, buf, n, &err) < 0) {
      npy_writer_abort(&w);
      free(buf);
      die("%s", err.msg);
    }
  }
  free(buf);
  if (npy_writer_close(&w, &err) < 0) die("%s", err.msg);
}

// ---- (a) in-process: the reader library ------------------------------------------------------
typedef struct run {
  double secs;
  uint64_t rows, batches, wire_bytes;
} run_t;

static run_t run_inprocess(const char *path, uint32_t batch_rows, uint32_t dim) {
  run_t res = {0};
  ps_err_t err = {0};
  reader_opts_t o;
  memset(&o, 0, sizeof o);
  o.src.path = path;
  o.src.format = "npy";
  o.src.level = EMB_LEVEL_PROTEIN;
  o.src.layer = -1;
  o.batch_rows = batch_rows;
  o.val_fraction = 0.1;  // protsae-reader's defaults
  o.seed = 1;
  o.split = READER_SPLIT_ALL;
  o.epochs = 1;
  double t0 = ps_mono_s();
  reader_t *r = NULL;
  if (reader_new(&r, &o, &err) < 0) die("in-process: %s", err.msg);
  reader_batch_t b;
  int rc;
  while ((rc = reader_next_batch(r, &b, &err)) > 0) {
    if (b.dim != dim) die("in-process: batch of dim %u, expected %u", b.dim, dim);
    check_row(b.rows, b.first_record, dim, "in-process");
    res.rows += b.n_rows;
    res.batches++;
  }
  if (rc < 0) die("in-process: %s", err.msg);
  reader_destroy(&r);
  res.secs = ps_mono_s() - t0;
  return res;
}

// ---- (b) ipc: protsae-reader -> PULL socket here ---------------------------------------------
static void dump_log(void) {
  FILE *f = fopen(g_log, "r");
  if (!f) return;
  char line[1024];
  fprintf(stderr, "bench_reader: protsae-reader log (%s):\n", g_log);
  while (fgets(line, sizeof line, f)) fputs(line, stderr);
  fclose(f);
}

static run_t run_ipc(const char *reader_exe, const char *path, uint32_t batch_rows, uint32_t dim, int hwm) {
  run_t res = {0};
  ps_err_t err = {0};
  char ep_bind[PATH_MAX + 16], ep_conn[PATH_MAX + 16], brs[32], hwms[32];
  snprintf(ep_bind, sizeof ep_bind, "@ipc://%s", g_sock);
  snprintf(ep_conn, sizeof ep_conn, ">ipc://%s", g_sock);
  snprintf(brs, sizeof brs, "%u", batch_rows);
  snprintf(hwms, sizeof hwms, "%d", hwm);
  wire_opts_t wo = WIRE_OPTS_DEFAULT;
  wo.hwm = hwm;
  void *zctx = zmq_ctx_new();
  void *sock = wire_socket(zctx, ZMQ_PULL, ep_bind, &wo, &err);  // bound before the reader starts
  if (!sock) die("ipc: %s", err.msg);

  double t0 = ps_mono_s();
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open(g_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) dup2(fd, 2);
    char *argv[] = {(char *)reader_exe, "--emb", (char *)path, "--format", "npy", "--out", ep_conn,
                    "--batch-rows", brs, "--consumers", "1", "--hwm", hwms, "--run-id", "bench", NULL};
    execv(reader_exe, argv);
    fprintf(stderr, "exec %s: %s\n", reader_exe, strerror(errno));
    _exit(127);
  }
  g_child = pid;
  wire_stats_t st = {0};
  float *row = malloc((size_t)dim * sizeof(float));
  if (!row) die("out of memory");
  uint64_t eos_rows = 0, eos_batches = 0;
  int eos = 0;
  while (!eos) {
    Protsae__Envelope *env = NULL;
    int rc = wire_recv(sock, &env, 60000, NULL, &st, &err);
    if (rc == 0) {
      dump_log();
      die("ipc: no message for 60 s (%" PRIu64 " rows so far)", res.rows);
    }
    if (rc < 0) die("ipc: %s", err.msg);
    if (env->body_case == PROTSAE__ENVELOPE__BODY_EMBEDDING_BATCH) {
      const Protsae__EmbeddingBatch *b = env->embedding_batch;
      if (wire_check_embedding_batch(b, &err) < 0) die("ipc: %s", err.msg);
      if (b->dim != dim) die("ipc: batch of dim %u, expected %u", b->dim, dim);
      if (b->n_rows) {
        memcpy(row, b->rows.data, (size_t)dim * sizeof(float));  // rows.data may be unaligned
        check_row(row, b->first_record, dim, "ipc");
      }
      res.rows += b->n_rows;
      res.batches++;
    } else if (env->body_case == PROTSAE__ENVELOPE__BODY_END_OF_STREAM) {
      eos = 1;
      eos_rows = env->end_of_stream->rows_sent;
      eos_batches = env->end_of_stream->batches_sent;
    }
    wire_free(&env);
  }
  res.secs = ps_mono_s() - t0;
  res.wire_bytes = st.bytes;
  free(row);
  wire_close(&sock);  // hang up first: the reader waits for that before it exits (wire.h)
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) die("waitpid: %s", strerror(errno));
  g_child = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    dump_log();
    die("protsae-reader exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  }
  if (eos_rows != res.rows || eos_batches != res.batches)
    die("ipc: EndOfStream says %" PRIu64 " rows / %" PRIu64 " batches, %" PRIu64 " / %" PRIu64 " arrived", eos_rows,
        eos_batches, res.rows, res.batches);
  wire_close(&sock);
  zmq_ctx_term(zctx);
  return res;
}

// ---- main ------------------------------------------------------------------------------------
static int cmp_secs(const void *a, const void *b) {
  double x = ((const run_t *)a)->secs, y = ((const run_t *)b)->secs;
  return (x > y) - (x < y);
}

static uint64_t parse_u64(const char *flag, const char *v, uint64_t lo, uint64_t hi) {
  char *end = NULL;
  errno = 0;
  unsigned long long x = v ? strtoull(v, &end, 10) : 0;
  if (!v || errno || !end || *end || v[0] == '-' || x < lo || x > hi)
    die("%s needs an integer in [%" PRIu64 ", %" PRIu64 "], not '%s'", flag, lo, hi, v ? v : "");
  return (uint64_t)x;
}

static void usage(FILE *f) {
  fputs("usage: bench_reader [--rows N] [--dim D] [--batch-rows B] [--repeat K] [--hwm H]\n"
        "                    [--tmpdir DIR] [--reader PATH]\n"
        "  --rows 1000000 --dim 480: the generated float32 .npy (rows shrink when the disk is short)\n"
        "  --batch-rows 1024         rows per batch (both paths)\n"
        "  --repeat 3                runs of each path, interleaved; the median is reported\n"
        "  --hwm 16                  high-water mark of both sockets\n"
        "  --tmpdir $TMPDIR or /tmp  where the .npy and the ipc socket live (removed at exit)\n"
        "  --reader " PROTSAE_READER_EXE "\n",
        f);
}

int main(int argc, char **argv) {
  uint64_t rows = 1000000, dim = 480, batch_rows = 1024, repeat = 3, hwm = 16;
  const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  const char *reader_exe = PROTSAE_READER_EXE;
  int rows_given = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(a, "--rows")) rows = parse_u64(a, v, 1, UINT32_MAX), rows_given = 1;
    else if (!strcmp(a, "--dim")) dim = parse_u64(a, v, 1, 1 << 16);
    else if (!strcmp(a, "--batch-rows")) batch_rows = parse_u64(a, v, 1, 1 << 24);
    else if (!strcmp(a, "--repeat")) repeat = parse_u64(a, v, 1, 100);
    else if (!strcmp(a, "--hwm")) hwm = parse_u64(a, v, 1, 1 << 20);
    else if (!strcmp(a, "--tmpdir")) tmpdir = v ? v : "";
    else if (!strcmp(a, "--reader")) reader_exe = v ? v : "";
    else {
      usage(stderr);
      fprintf(stderr, "bench_reader: unknown option '%s'\n", a);
      return 2;
    }
    i++;
  }
  if ((uint64_t)batch_rows * dim * sizeof(float) > ((uint64_t)1 << 30)) die("--batch-rows x --dim is over 1 GiB a batch");
  if (access(reader_exe, X_OK) != 0) die("%s: not an executable (build first, or pass --reader)", reader_exe);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  char tmpl[sizeof g_dir];
  if (snprintf(tmpl, sizeof tmpl, "%s/protsae-bench.XXXXXX", tmpdir) >= (int)sizeof tmpl) die("--tmpdir too long");
  if (!mkdtemp(tmpl)) die("%s: cannot make a directory: %s", tmpl, strerror(errno));
  memcpy(g_dir, tmpl, sizeof g_dir);
  snprintf(g_npy, sizeof g_npy, "%s/emb.npy", g_dir);
  snprintf(g_npy_tmp, sizeof g_npy_tmp, "%s/emb.npy.tmp", g_dir);
  snprintf(g_sock, sizeof g_sock, "%s/reader.ipc", g_dir);
  snprintf(g_log, sizeof g_log, "%s/reader.log", g_dir);
  if (strlen(g_sock) + 6 >= 108) die("%s: too long for an ipc:// endpoint (use a shorter --tmpdir)", g_sock);

  // df: keep the file under half of the free space (the rest is the system's).
  const uint64_t row_bytes = dim * sizeof(float);
  struct statvfs vfs;
  if (statvfs(g_dir, &vfs) == 0) {
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    if (rows * row_bytes + 4096 > avail / 2) {
      uint64_t fit = (avail / 2) / row_bytes;
      if (fit < batch_rows) die("%s: only %" PRIu64 " MB free", g_dir, avail >> 20);
      fprintf(stderr, "bench_reader: %s has %" PRIu64 " MB free: %s%" PRIu64 " rows instead of %" PRIu64 "\n",
              g_dir, avail >> 20, rows_given ? "--rows too large, " : "", fit, rows);
      rows = fit;
    }
  }

  double tg = ps_mono_s();
  write_npy(g_npy, rows, (uint32_t)dim);
  fprintf(stderr, "bench_reader: wrote %" PRIu64 " x %" PRIu64 " float32 (%.0f MB) in %.1f s; %" PRIu64
                  " runs of each path\n", rows, dim, (double)rows * row_bytes / 1e6, ps_mono_s() - tg, repeat);

  run_t *inp = calloc(repeat, sizeof *inp), *ipc = calloc(repeat, sizeof *ipc);
  if (!inp || !ipc) die("out of memory");
  // Interleaved (in-process first: it also warms the page cache the ipc run reads).
  for (uint64_t k = 0; k < repeat; k++) {
    inp[k] = run_inprocess(g_npy, (uint32_t)batch_rows, (uint32_t)dim);
    ipc[k] = run_ipc(reader_exe, g_npy, (uint32_t)batch_rows, (uint32_t)dim, (int)hwm);
    if (inp[k].rows != rows || ipc[k].rows != rows)
      die("rows: in-process %" PRIu64 ", ipc %" PRIu64 ", expected %" PRIu64, inp[k].rows, ipc[k].rows, rows);
    if (inp[k].batches != ipc[k].batches)
      die("batches: in-process %" PRIu64 ", ipc %" PRIu64, inp[k].batches, ipc[k].batches);
    fprintf(stderr, "bench_reader: run %" PRIu64 ": in-process %.3f s, ipc %.3f s\n", k + 1, inp[k].secs, ipc[k].secs);
  }
  qsort(inp, repeat, sizeof *inp, cmp_secs);
  qsort(ipc, repeat, sizeof *ipc, cmp_secs);
  const run_t mi = inp[repeat / 2], mp = ipc[repeat / 2];
  const double payload_mb = (double)rows * row_bytes / 1e6;
  const double inproc_rps = (double)rows / mi.secs, ipc_rps = (double)rows / mp.secs;

  printf("rows: %" PRIu64 "\n", rows);
  printf("dim: %" PRIu64 "\n", dim);
  printf("batch_rows: %" PRIu64 "\n", batch_rows);
  printf("batches: %" PRIu64 "\n", mp.batches);
  printf("file_mb: %.1f\n", payload_mb);
  printf("repeats: %" PRIu64 "\n", repeat);
  printf("inprocess_rows_per_s: %.0f\n", inproc_rps);
  printf("inprocess_mb_per_s: %.1f\n", payload_mb / mi.secs);
  printf("inprocess_seconds: %.3f\n", mi.secs);
  printf("reader_rows_per_s: %.0f\n", ipc_rps);
  printf("reader_mb_per_s: %.1f\n", payload_mb / mp.secs);
  printf("wire_mb_per_s: %.1f\n", (double)mp.wire_bytes / 1e6 / mp.secs);
  printf("reader_seconds: %.3f\n", mp.secs);
  printf("reader_ipc_vs_inprocess: %.3f\n", ipc_rps / inproc_rps);
  free(inp);
  free(ipc);
  cleanup();
  return 0;
}
