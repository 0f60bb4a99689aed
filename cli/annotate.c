// protsae annotate — continuous annotation of new proteomes dropped into a directory.
//
// Drop-directory convention: a proteome NAME is NAME.fasta (or .fa, .fasta.gz, .fa.gz) beside its
// embeddings NAME.npy (or NAME.safetensors / NAME.h5; any layout the reader takes; a per-residue
// NAME.npy with NAME.offsets.npy is mean-pooled) and optionally NAME.ids (the embeddings' ids, one
// per line; else the FASTA order). It is taken when NAME.ready exists, or when its files have not
// changed for --settle-ms (with --once 1: at once). Files whose names start with '.' are ignored
// (copy to .NAME.npy, then rename).
//
// The model: the SAE (--sae) and its feature store (--db), whose GO enrichment must be complete
// (the scorer's, featstore.h) and whose explanations are shown beside the features.
// Per proteome (annot.h does the work): OUT/NAME.tsv and OUT/NAME.jsonl (+ OUT/NAME.eval.txt with
// --evaluate 1), written under OUT/.tmp, fsynced and renamed; then the ledger entry
// OUT/ledger/NAME.HASH (HASH = 64-bit FNV-1a of the input files' bytes) is written the same way,
// and the inputs move to DROP/done/. A proteome whose (name, hash) is in the ledger is skipped
// (moved to done/, not written again). A kill at any point redoes at most the proteome in hand,
// and its output is a function of the inputs only: a restart writes the same bytes.
// Bad input (no embeddings, wrong dimension, NaN, ids not in the FASTA) moves the inputs to
// DROP/failed/ with NAME.error naming the file and record; the watcher goes on. A fault of the
// OUTPUT (disk full, read-only or missing output directory: any write, fsync or rename under OUT)
// is not the proteome's: it is reported with the output path and errno, the inputs stay in DROP
// (a restart redoes them), and the watcher stops with status 1.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "annot.h"
#include "cli.h"
#include "config.h"
#include "godata.h"
#include "io.h"
#include "log.h"
#include "signals.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const ps_config_entry_t table[] = {
    {"watch", NULL, "drop directory: NAME.fasta[.gz] + NAME.npy|.safetensors|.h5 [+ NAME.ids] [+ NAME.ready]"},
    {"out", NULL, "output directory: NAME.tsv, NAME.jsonl, ledger/ (default: WATCH/annotated)"},
    {"sae", NULL, "trained SAE (checkpoint / SAELens directory)"},
    {"db", NULL, "the SAE's feature store with complete GO enrichment (and explanations): protsae-scorer --db"},
    {"data", NULL, "data directory: go*.obo[.gz] (and go_annotations.tsv[.gz] or a GAF for --evaluate); default the shared human data"},
    {"once", "0", "1: process what is in the drop directory and exit (status 1 when a proteome failed)"},
    {"interval-ms", "2000", "polling interval of the drop directory"},
    {"settle-ms", "1000", "a proteome without NAME.ready is taken when its files are this old"},
    {"missing-after", "60", "seconds after which a FASTA without embeddings (or the reverse) fails"},
    {"batch-rows", "256", "proteins encoded at a time (bounds memory)"},
    {"min-score", "0.01", "GO terms scoring below are not written"},
    {"max-terms", "100", "at most this many GO terms a protein, best first (0 = all)"},
    {"scale-activation", "1", "1: score = min(1, activation / the feature's max) x confidence; 0: confidence alone"},
    {"confidence", "precision", "confidence of a feature -> term pair: precision (k/n of the enrichment) | f1 | 1-q"},
    {"evaluate", "0", "1: Fmax of the predictions against the data's GO annotations (propagated), per proteome"},
    {"pace-ms", "0", "sleep after each batch (tests)"},
    {NULL, NULL, NULL},
};

static int stop_requested(void) { return ps_signals_stop_requested(); }

static double file_age_s(const char *p) {
  struct stat st;
  if (stat(p, &st) != 0) return -1;
  return difftime(time(NULL), st.st_mtime);
}
static int exists(const char *p) { return access(p, F_OK) == 0; }

static int fsync_close(FILE *f) {
  int rc = 0;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = -errno;
  if (fclose(f) != 0 && !rc) rc = -errno;
  return rc;
}

// Write text to path atomically (tmp + fsync + rename + fsync of the directory).
static int write_atomic(const char *dir, const char *name, const char *text, ps_err_t *err) {
  char tmp[PATH_MAX], path[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(tmp, "w");
  if (!f) return ps_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
  fputs(text, f);
  if (fsync_close(f) < 0 || rename(tmp, path) != 0 || ps_fsync_dir(dir) < 0)
    return ps_err_set(err, PS_EIO, "%s: cannot write: %s", path, strerror(errno));
  return 0;
}

static int hash_file(const char *p, uint64_t *h, ps_err_t *err) {
  FILE *f = fopen(p, "rb");
  if (!f) return ps_err_set(err, -errno, "%s: cannot open: %s", p, strerror(errno));
  static unsigned char buf[1 << 16];
  size_t n;
  uint64_t x = *h;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    for (size_t i = 0; i < n; i++) x = (x ^ buf[i]) * 1099511628211ULL;
  int bad = ferror(f);
  fclose(f);
  if (bad) return ps_err_set(err, PS_EIO, "%s: read error", p);
  x = (x ^ 0xff) * 1099511628211ULL;  // file separator
  *h = x;
  return 0;
}

typedef struct proteome {
  char name[256];
  char fasta[PATH_MAX], emb[PATH_MAX], ids[PATH_MAX], offsets[PATH_MAX], ready[PATH_MAX];
  int has_fasta, has_emb, has_ids, has_offsets, has_ready;
} proteome_t;

static const char *const fasta_ext[] = {".fasta.gz", ".fa.gz", ".fasta", ".fa", NULL};
static const char *const emb_ext[] = {".npy", ".safetensors", ".h5", NULL};

static int has_suffix(const char *s, const char *suf) {
  size_t l = strlen(s), k = strlen(suf);
  return l > k && !strcmp(s + l - k, suf);
}

// The stem of a drop-directory file, or 0 when it is not one of ours.
static int file_stem(const char *n, char *stem, size_t cap) {
  static const char *const all[] = {".offsets.npy", ".fasta.gz", ".fa.gz", ".fasta", ".fa", ".npy", ".safetensors",
                                    ".h5", ".ids", ".ready", NULL};
  if (n[0] == '.') return 0;
  for (int i = 0; all[i]; i++)
    if (has_suffix(n, all[i])) {
      size_t l = strlen(n) - strlen(all[i]);
      if (l >= cap) return 0;
      memcpy(stem, n, l);
      stem[l] = 0;
      return 1;
    }
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void describe(const char *dir, const char *name, proteome_t *p) {
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  for (int i = 0; fasta_ext[i] && !p->has_fasta; i++) {
    snprintf(p->fasta, sizeof p->fasta, "%s/%s%s", dir, name, fasta_ext[i]);
    p->has_fasta = exists(p->fasta);
  }
  for (int i = 0; emb_ext[i] && !p->has_emb; i++) {
    snprintf(p->emb, sizeof p->emb, "%s/%s%s", dir, name, emb_ext[i]);
    p->has_emb = exists(p->emb);
  }
  snprintf(p->ids, sizeof p->ids, "%s/%s.ids", dir, name);
  p->has_ids = exists(p->ids);
  snprintf(p->offsets, sizeof p->offsets, "%s/%s.offsets.npy", dir, name);
  p->has_offsets = exists(p->offsets);
  snprintf(p->ready, sizeof p->ready, "%s/%s.ready", dir, name);
  p->has_ready = exists(p->ready);
}

// Move the proteome's files into dir/sub/ (created).
static void move_inputs(const char *dir, const proteome_t *p, const char *sub) {
  char d[PATH_MAX + 16], to[PATH_MAX * 2];
  snprintf(d, sizeof d, "%s/%s", dir, sub);
  mkdir(d, 0755);
  const char *files[5] = {p->has_fasta ? p->fasta : NULL, p->has_emb ? p->emb : NULL, p->has_ids ? p->ids : NULL,
                          p->has_offsets ? p->offsets : NULL, p->has_ready ? p->ready : NULL};
  for (int i = 0; i < 5; i++) {
    if (!files[i]) continue;
    const char *b = strrchr(files[i], '/');
    snprintf(to, sizeof to, "%s/%s", d, b ? b + 1 : files[i]);
    if (rename(files[i], to) != 0) PS_WARN("cannot move file=%s to=%s: %s", files[i], to, strerror(errno));
  }
  ps_fsync_dir(d);
  ps_fsync_dir(dir);
}

typedef struct ctx {
  annot_model_t *model;
  go_annotations_t *truth;
  const char *drop, *out;
  char tmpdir[PATH_MAX], ledger[PATH_MAX];
  int pace_ms, evaluate;
  int n_done, n_skipped, n_failed;
  int lock_fd;                // the output directory lock (closed in isolation children)
} ctx_t;

static void fail_proteome(ctx_t *c, const proteome_t *p, const char *msg) {
  fprintf(stderr, "protsae annotate: %s: FAILED: %s\n", p->name, msg);
  PS_ERROR("proteome failed name=%s error=\"%s\"", p->name, msg);
  move_inputs(c->drop, p, "failed");
  char d[PATH_MAX + 16], nm[300], txt[2048];
  snprintf(d, sizeof d, "%s/failed", c->drop);
  snprintf(nm, sizeof nm, "%s.error", p->name);
  snprintf(txt, sizeof txt, "%s\n", msg);
  ps_err_t e = {0};
  write_atomic(d, nm, txt, &e);
  c->n_failed++;
}

// An output fault: report it (path, errno), leave the inputs in place. Returns 2 (see process).
static int output_fault(const proteome_t *p, const char *path, int e, const char *what) {
  fprintf(stderr, "protsae annotate: %s: cannot write the output %s: %s: %s (the input stays in place; stopping)\n",
          p->name, path, what, strerror(e ? e : EIO));
  PS_ERROR("output write failed name=%s path=%s error=\"%s\"", p->name, path, strerror(e ? e : EIO));
  return 2;
}

// ---- isolation ----------------------------------------------------------------------------------
// A proteome is read and encoded in a forked child: parsers of third-party formats (libhdf5) can
// abort the process on a corrupt file, and the watcher must survive that. The child writes the
// TSV / JSONL through the parent's open files (flushed before it exits) and sends its figures back
// on a pipe: status, error message, counts, the Fmax accumulators and the evaluated ids. A child
// killed by a signal fails the proteome, naming its input files. Memory: the child shares the
// loaded model copy-on-write.
#define ISOLATED_CRASH (-20001)

// All n bytes through the pipe (write when out, read otherwise), retrying short transfers and
// EINTR. 0, or -1 on an error or end of file.
static int pipe_all(int fd, void *b, size_t n, int out) {
  char *p = b;
  while (n) {
    ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k, n -= (size_t)k;
  }
  return 0;
}
static int write_all(int fd, const void *b, size_t n) { return pipe_all(fd, (void *)b, n, 1); }
static int read_all(int fd, void *b, size_t n) { return pipe_all(fd, b, n, 0); }

typedef struct child_head {
  int rc, code;
  char msg[sizeof(((ps_err_t *)0)->msg)];
  int64_t n_proteins, n_fasta, n_with_go, n_active_sum;
  uint64_t n_eval;
} child_head_t;

static int isolated_proteome(ctx_t *c, proteome_t *p, FILE *ft, FILE *fj, annot_fmax_t *fm, annot_stats_t *st,
                             int *out_errno, ps_err_t *err) {
  *out_errno = 0;
  fflush(ft), fflush(fj), fflush(stdout), fflush(stderr);
  int pfd[2];
  if (pipe(pfd) != 0) return ps_err_set(err, -errno, "pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(pfd[0]), close(pfd[1]);
    return ps_err_set(err, -errno, "fork: %s", strerror(errno));
  }
  if (pid == 0) {  // the child: do the work, report, exit without running the parent's atexit handlers
    close(pfd[0]);
    if (c->lock_fd >= 0) close(c->lock_fd);   // the lock is the watcher's, not the child's
    prctl(PR_SET_PDEATHSIG, SIGKILL);         // a watcher killed -9 takes its child with it
    if (getppid() == 1) _exit(4);
    ps_err_t e = {0};
    int rc = annot_proteome(c->model, p->fasta, p->emb, p->has_ids ? p->ids : NULL, ft, fj, c->truth, fm, c->pace_ms,
                            stop_requested, st, &e);
    int ok = fflush(ft) == 0 && fflush(fj) == 0;
    child_head_t h;
    memset(&h, 0, sizeof h);
    h.rc = rc;
    h.code = ok ? 0 : errno ? errno : EIO;
    memcpy(h.msg, e.msg, sizeof h.msg);
    h.n_proteins = st->n_proteins, h.n_fasta = st->n_fasta, h.n_with_go = st->n_with_go;
    h.n_active_sum = st->n_active_sum, h.n_eval = st->n_eval;
    int w = write_all(pfd[1], &h, sizeof h) | write_all(pfd[1], fm, ANNOT_N_FM * sizeof *fm);
    for (size_t i = 0; i < st->n_eval && !w; i++) {
      uint32_t l = (uint32_t)strlen(st->eval_ids[i]);
      w |= write_all(pfd[1], &l, 4) | write_all(pfd[1], st->eval_ids[i], l);
    }
    _exit(w ? 3 : 0);
  }
  close(pfd[1]);
  // wait for the report; a stop request (SIGTERM) is passed on: the child stops between batches
  int forwarded = 0;
  for (;;) {
    struct pollfd pf = {pfd[0], POLLIN, 0};
    int pr = poll(&pf, 1, 100);
    if (pr > 0) break;
    if (pr < 0 && errno != EINTR) break;
    if (!forwarded && stop_requested()) {
      kill(pid, SIGTERM);
      forwarded = 1;
    }
  }
  child_head_t h;
  int got = read_all(pfd[0], &h, sizeof h) == 0 && read_all(pfd[0], fm, ANNOT_N_FM * sizeof *fm) == 0;
  for (uint64_t i = 0; got && i < h.n_eval; i++) {
    uint32_t l = 0;
    if (read_all(pfd[0], &l, 4) != 0 || l > 1 << 20) {
      got = 0;
      break;
    }
    char *id = ps_xmalloc((size_t)l + 1);
    if (read_all(pfd[0], id, l) != 0) {
      free(id);
      got = 0;
      break;
    }
    id[l] = 0;
    if (st->n_eval == st->cap_eval) {
      st->cap_eval = st->cap_eval ? 2 * st->cap_eval : 256;
      st->eval_ids = ps_xrealloc(st->eval_ids, st->cap_eval * sizeof *st->eval_ids);
    }
    st->eval_ids[st->n_eval++] = id;
  }
  close(pfd[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // the child wrote through our FILEs' descriptors: move their positions to the end, so the
  // parent's own checks (ferror, fsync) see the files as they are
  fseeko(ft, 0, SEEK_END), fseeko(fj, 0, SEEK_END);
  if (WIFSIGNALED(status) || !got) {
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return ps_err_set(err, ISOLATED_CRASH,
                      "reading the proteome crashed (%s%s%s): inputs %s, %s%s%s - a corrupt file? (moved aside; the "
                      "service goes on)",
                      sig ? "signal " : "exit without a report", sig ? strsignal(sig) : "", "", p->emb, p->fasta,
                      p->has_ids ? ", " : "", p->has_ids ? p->ids : "");
  }
  st->n_proteins = h.n_proteins, st->n_fasta = h.n_fasta, st->n_with_go = h.n_with_go;
  st->n_active_sum = h.n_active_sum;
  *out_errno = h.code;  // an output write failed in the child: the parent's ferror cannot see it
  if (h.rc < 0) {
    memcpy(err->msg, h.msg, sizeof err->msg);
    err->msg[sizeof err->msg - 1] = 0;
    err->code = h.rc;
  }
  return h.rc;
}

// 0 done or skipped, 1 failed (input moved to failed/), 2 the output cannot be written (input left
// in place), -1 stopped by a signal (nothing written).
static int process(ctx_t *c, proteome_t *p) {
  ps_err_t err = {0};
  uint64_t h = 1469598103934665603ULL;
  const char *in[4] = {p->fasta, p->emb, p->has_ids ? p->ids : NULL, p->has_offsets ? p->offsets : NULL};
  for (int i = 0; i < 4; i++)
    if (in[i] && hash_file(in[i], &h, &err) < 0) {
      fail_proteome(c, p, err.msg);
      return 1;
    }
  char key[300], lpath[PATH_MAX * 2];
  snprintf(key, sizeof key, "%s.%016llx", p->name, (unsigned long long)h);
  snprintf(lpath, sizeof lpath, "%s/%s", c->ledger, key);
  if (exists(lpath)) {
    printf("%s: skipped: already annotated (ledger %s)\n", p->name, key);
    fflush(stdout);
    PS_INFO("proteome skipped name=%s ledger=%s", p->name, key);
    move_inputs(c->drop, p, "done");
    c->n_skipped++;
    return 0;
  }
  PS_INFO("proteome start name=%s fasta=%s emb=%s", p->name, p->fasta, p->emb);
  char t_tsv[PATH_MAX * 2], t_js[PATH_MAX * 2], o_tsv[PATH_MAX * 2], o_js[PATH_MAX * 2];
  snprintf(t_tsv, sizeof t_tsv, "%s/%s.tsv", c->tmpdir, p->name);
  snprintf(t_js, sizeof t_js, "%s/%s.jsonl", c->tmpdir, p->name);
  snprintf(o_tsv, sizeof o_tsv, "%s/%s.tsv", c->out, p->name);
  snprintf(o_js, sizeof o_js, "%s/%s.jsonl", c->out, p->name);
  FILE *ft = fopen(t_tsv, "w"), *fj = fopen(t_js, "w");
  if (!ft || !fj) {
    int e = errno;
    if (ft) fclose(ft);
    if (fj) fclose(fj);
    unlink(t_tsv), unlink(t_js);
    return output_fault(p, ft ? t_js : t_tsv, e, "create");
  }
  annot_fmax_t fm[ANNOT_N_FM];
  for (int k = 0; k < ANNOT_N_FM; k++) annot_fmax_init(&fm[k]);
  annot_stats_t st = {0};
  int child_out_errno = 0;
  int rc = isolated_proteome(c, p, ft, fj, fm, &st, &child_out_errno, &err);
  if (rc == ISOLATED_CRASH) {  // a parser died (libhdf5 aborts on some corrupt files): this input's fault
    fclose(ft), fclose(fj);
    unlink(t_tsv), unlink(t_js);
    annot_stats_free(&st);
    fail_proteome(c, p, err.msg);
    return 1;
  }
  int bad_t = ferror(ft) || child_out_errno, bad_j = ferror(fj), e_out = child_out_errno ? child_out_errno
                                                                  : rc < 0 && rc > -4096 ? -rc : 0;
  int rt = fsync_close(ft), rj = fsync_close(fj);
  if (bad_t || bad_j || rt < 0 || rj < 0) {
    annot_stats_free(&st);
    unlink(t_tsv), unlink(t_js);
    int tsv_side = bad_t || (!bad_j && rt < 0);
    int e = tsv_side && rt < 0 ? -rt : !tsv_side && rj < 0 ? -rj : e_out;
    return output_fault(p, tsv_side ? t_tsv : t_js, e, "write");
  }
  if (rc == PS_EINTR) {
    annot_stats_free(&st);
    unlink(t_tsv), unlink(t_js);
    return -1;
  }
  if (rc < 0) {
    annot_stats_free(&st);
    unlink(t_tsv), unlink(t_js);
    fail_proteome(c, p, err.msg);
    return 1;
  }
  annot_eval_t ev;
  memset(&ev, 0, sizeof ev);
  if (c->evaluate) annot_eval_finish(c->model, c->truth, fm, &st, &ev);
  const annot_fmax_result_t *fa = ev.fm, *nva = ev.naive;
  annot_fmax_result_t fr = fa[0], nv = nva[0];
  annot_stats_free(&st);
  char text[2048];
  if (c->evaluate) {
    char nm[300];
    snprintf(nm, sizeof nm, "%s.eval.txt", p->name);
    int o = snprintf(text, sizeof text,
             "proteins: %lld\nproteins_evaluated: %lld\nfmax: %.4f\nthreshold: %.2f\nprecision: %.4f\nrecall: %.4f\n"
             "naive_fmax: %.4f\nnaive_threshold: %.2f\n",
             (long long)st.n_proteins, (long long)fr.n_proteins, fr.fmax, fr.tau, fr.precision, fr.recall, nv.fmax,
             nv.tau);
    static const char *const nsn[] = {"bp", "mf", "cc"};
    for (int k = 1; k < ANNOT_N_FM && o > 0 && (size_t)o < sizeof text; k++)
      o += snprintf(text + o, sizeof text - (size_t)o,
                    "proteins_evaluated_%s: %lld\nfmax_%s: %.4f\nthreshold_%s: %.2f\nnaive_fmax_%s: %.4f\n", nsn[k - 1],
                    (long long)fa[k].n_proteins, nsn[k - 1], fa[k].fmax, nsn[k - 1], fa[k].tau, nsn[k - 1], nva[k].fmax);
    if (write_atomic(c->out, nm, text, &err) < 0) {
      fprintf(stderr, "protsae annotate: %s: %s\n", p->name, err.msg);
      unlink(t_tsv), unlink(t_js);
      return output_fault(p, c->out, err.code < 0 && err.code > -4096 ? -err.code : EIO, nm);
    }
  }
  if (rename(t_tsv, o_tsv) != 0 || rename(t_js, o_js) != 0 || ps_fsync_dir(c->out) < 0) {
    int e = errno;
    unlink(t_tsv), unlink(t_js);
    return output_fault(p, o_tsv, e, "rename into place");
  }
  snprintf(text, sizeof text, "name\t%s\nfasta\t%s\nembeddings\t%s\nproteins\t%lld\nwith_go\t%lld\ntsv\t%s\njsonl\t%s\n",
           p->name, p->fasta, p->emb, (long long)st.n_proteins, (long long)st.n_with_go, o_tsv, o_js);
  if (write_atomic(c->ledger, key, text, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s: ledger: %s\n", p->name, err.msg);
    return output_fault(p, lpath, EIO, "ledger");
  }
  move_inputs(c->drop, p, "done");
  printf("%s: %lld proteins (of %lld in the FASTA), %.1f active features each, %lld with GO terms -> %s, %s",
         p->name, (long long)st.n_proteins, (long long)st.n_fasta,
         st.n_proteins ? (double)st.n_active_sum / (double)st.n_proteins : 0.0, (long long)st.n_with_go, o_tsv, o_js);
  if (c->evaluate)
    printf("; Fmax %.4f at %.2f (precision %.4f, recall %.4f, %lld proteins with GO annotations; naive baseline %.4f;"
           " BP %.4f, MF %.4f, CC %.4f, naive %.4f, %.4f, %.4f)",
           fr.fmax, fr.tau, fr.precision, fr.recall, (long long)fr.n_proteins, nv.fmax, fa[1].fmax, fa[2].fmax,
           fa[3].fmax, nva[1].fmax, nva[2].fmax, nva[3].fmax);
  printf("\n");
  fflush(stdout);
  PS_INFO("proteome done name=%s proteins=%lld ledger=%s", p->name, (long long)st.n_proteins, key);
  c->n_done++;
  return 0;
}

// One pass over the drop directory. -1 when stopped by a signal, -2 when the output cannot be
// written (the pass stops at that proteome).
static int poll_once(ctx_t *c, int once, double settle_s, double missing_s) {
  DIR *dh = opendir(c->drop);
  if (!dh) {
    fprintf(stderr, "protsae annotate: %s: cannot open: %s\n", c->drop, strerror(errno));
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(dh))) {
    char stem[256], p[PATH_MAX * 2];
    if (!file_stem(de->d_name, stem, sizeof stem)) continue;
    snprintf(p, sizeof p, "%s/%s", c->drop, de->d_name);
    struct stat st;
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (n == cap) names = ps_xrealloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
    names[n++] = ps_xstrdup(stem);
  }
  closedir(dh);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  int rc = 0;
  for (size_t i = 0; i < n && rc >= 0; i++) {
    if (i && !strcmp(names[i], names[i - 1])) continue;
    proteome_t p;
    describe(c->drop, names[i], &p);
    double age = 1e30;
    const char *fs[4] = {p.has_fasta ? p.fasta : NULL, p.has_emb ? p.emb : NULL, p.has_ids ? p.ids : NULL,
                         p.has_offsets ? p.offsets : NULL};
    for (int k = 0; k < 4; k++)
      if (fs[k]) {
        double a = file_age_s(fs[k]);
        if (a < age) age = a;
      }
    if (!p.has_fasta || !p.has_emb) {
      if (once || p.has_ready || age >= missing_s) {
        char msg[PATH_MAX + 256];
        if (!p.has_fasta && !p.has_emb)
          snprintf(msg, sizeof msg, "%s/%s.*: neither a FASTA nor embeddings", c->drop, p.name);
        else if (!p.has_emb)
          snprintf(msg, sizeof msg, "%s: missing embeddings (%s.npy, %s.safetensors or %s.h5 beside it)", p.fasta,
                   p.name, p.name, p.name);
        else
          snprintf(msg, sizeof msg, "%s: missing FASTA (%s.fasta[.gz] or %s.fa[.gz] beside it)", p.emb, p.name, p.name);
        fail_proteome(c, &p, msg);
      }
      continue;
    }
    if (!once && !p.has_ready && age * 1000.0 < settle_s * 1000.0) continue;  // still arriving
    int prc = process(c, &p);
    if (prc < 0) rc = -1;
    if (prc == 2) rc = -2;
    if (stop_requested() && rc == 0) rc = -1;
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int cli_annotate(int argc, char **argv) {
  ps_err_t err = {0};
  ps_config_t *cfg = NULL;
  int crc = ps_config_cli(&cfg, table, "protsae annotate", argc, argv);
  if (crc >= 0) return crc;
  int status = 2, once = 0, lock_fd = -1;
  ctx_t c = {0};
  c.lock_fd = -1;
  int64_t interval = 2000, settle = 1000, missing = 60, batch = 256, pace = 0, max_terms = 100;
  double min_score = 0.01;
  char outbuf[PATH_MAX], dd[PATH_MAX];
  ps_godata_t gd;
  const char *conf_s = ps_config_str(cfg, "confidence");
  annot_opts_t ao = {0};
  ao.sae_dir = ps_config_str(cfg, "sae");
  ao.db = ps_config_str(cfg, "db");
  c.drop = ps_config_str(cfg, "watch");
  if (!c.drop || !ao.sae_dir || !ao.db) {
    fprintf(stderr, "protsae annotate: --watch, --sae and --db are required (--help)\n");
    goto out;
  }
  int scale_act = 1;
  const ps_config_bind_t opts[] = {
      PS_CFG_BOOL("once", &once),           PS_CFG_BOOL("evaluate", &c.evaluate),
      PS_CFG_I64("interval-ms", &interval), PS_CFG_I64("settle-ms", &settle),
      PS_CFG_I64("missing-after", &missing), PS_CFG_I64("batch-rows", &batch),
      PS_CFG_I64("pace-ms", &pace),         PS_CFG_I64("max-terms", &max_terms),
      PS_CFG_F64("min-score", &min_score),  PS_CFG_BOOL("scale-activation", &scale_act),
      {0}};
  if (ps_config_read(cfg, opts, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  ao.no_scaling = !scale_act;
  if (!strcmp(conf_s, "f1")) ao.conf = ANNOT_CONF_F1;
  else if (!strcmp(conf_s, "precision")) ao.conf = ANNOT_CONF_PRECISION;
  else if (!strcmp(conf_s, "1-q")) ao.conf = ANNOT_CONF_ONE_MINUS_Q;
  else {
    fprintf(stderr, "protsae annotate: --confidence must be f1, precision or 1-q (got '%s')\n", conf_s);
    goto out;
  }
  if (batch < 1 || batch > 1 << 20 || interval < 1 || min_score < 0 || min_score > 1) {
    fprintf(stderr, "protsae annotate: --batch-rows, --interval-ms or --min-score out of range\n");
    goto out;
  }
  ao.min_score = min_score;
  ao.batch_rows = batch;
  ao.max_terms = max_terms < 0 ? 0 : max_terms;
  c.pace_ms = (int)pace;
  const char *data = ps_config_str(cfg, "data");
  if (!data) data = ps_godata_default_dir(dd, sizeof dd);
  if (!data) {
    fprintf(stderr, "protsae annotate: no GO ontology: --data DIR with go*.obo[.gz] (or PROTSAE_DATA)\n");
    goto out;
  }
  if (ps_godata_find(data, PS_GODATA_NEED_ONTOLOGY | (c.evaluate ? PS_GODATA_NEED_ANNOTATIONS : 0), &gd, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  ao.obo = gd.obo;
  c.out = ps_config_str(cfg, "out");
  if (!c.out) {
    snprintf(outbuf, sizeof outbuf, "%s/annotated", c.drop);
    c.out = outbuf;
  }
  struct stat sd;
  if (stat(c.drop, &sd) != 0 || !S_ISDIR(sd.st_mode)) {
    fprintf(stderr, "protsae annotate: %s: not a directory\n", c.drop);
    goto out;
  }
  mkdir(c.out, 0755);
  snprintf(c.tmpdir, sizeof c.tmpdir, "%s/.tmp", c.out);
  snprintf(c.ledger, sizeof c.ledger, "%s/ledger", c.out);
  if ((mkdir(c.tmpdir, 0755) != 0 && errno != EEXIST) || (mkdir(c.ledger, 0755) != 0 && errno != EEXIST)) {
    fprintf(stderr, "protsae annotate: %s: cannot create: %s\n", c.out, strerror(errno));
    goto out;
  }
  // one annotate per output directory (two would write the same temporary files); the kernel
  // drops the lock with the process, also after kill -9
  char lockp[PATH_MAX + 16];
  snprintf(lockp, sizeof lockp, "%s/.lock", c.out);
  lock_fd = c.lock_fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "protsae annotate: another protsae annotate is using %s (%s)\n", c.out,
            lock_fd < 0 ? strerror(errno) : "locked");
    goto out;
  }
  ps_config_print(cfg);
  status = 1;
  if (annot_model_load(&c.model, &ao, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  if (c.evaluate && annot_truth_load(&c.truth, annot_model_onto(c.model), gd.annotations, gd.annotations_gaf, &err) < 0) {
    fprintf(stderr, "protsae annotate: %s\n", err.msg);
    goto out;
  }
  PS_INFO("annotate ready features_with_go=%lld watch=%s out=%s", (long long)annot_model_n_with_terms(c.model), c.drop,
          c.out);
  int out_fault = 0;
  for (;;) {
    int rc = poll_once(&c, once, (double)settle / 1000.0, (double)missing);
    out_fault = rc == -2;
    if (rc < 0 || once || stop_requested()) break;
    for (int64_t w = 0; w < interval && !stop_requested(); w += 50) usleep(50 * 1000);
    if (stop_requested()) break;
  }
  printf("annotated: %d, skipped: %d, failed: %d%s\n", c.n_done, c.n_skipped, c.n_failed,
         out_fault ? ", stopped: the output cannot be written" : "");
  status = out_fault || (c.n_failed && once) ? 1 : 0;
out:
  annot_model_free(&c.model);
  go_annotations_destroy(&c.truth);
  if (lock_fd >= 0) close(lock_fd);
  ps_config_destroy(&cfg);
  return status;
}
