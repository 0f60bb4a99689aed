// The nearest-neighbour GO transfer baseline (common/annot/knn.c): a hand-computed case
// (neighbours, scores, Fmax per namespace), the held-out and unannotated exclusions, block
// boundaries, errors naming file and record, and a numpy reference on a small random set.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fixture.h"

#include <math.h>

#include "annot.h"
#include "hash.h"
#include "knn.h"
#include "npy.h"

static int have_numpy(void) { return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

// name.npy (n x d) and name.ids in the scratch directory; path of the npy into npy.
static void write_emb(const char *name, const float *rows, size_t n, uint32_t d, const char *const *ids, char *npy,
                      char *idp) {
  char b[256];
  ps_err_t err = {0};
  npy_writer_t *w = NULL;
  snprintf(b, sizeof b, "%s.npy", name);
  fx_path(npy, 512, b);
  snprintf(b, sizeof b, "%s.ids", name);
  fx_path(idp, 512, b);
  assert_int_equal(npy_writer_open(&w, npy, NPY_F32, d, &err), 0);
  assert_int_equal(npy_writer_append_f32(w, rows, n, &err), 0);
  assert_int_equal(npy_writer_close(&w, &err), 0);
  FILE *f = fopen(idp, "w");
  assert_non_null(f);
  for (size_t i = 0; i < n; i++) fprintf(f, "%s\n", ids[i]);
  assert_int_equal(fclose(f), 0);
}

static const char hand_obo[] =
    "format-version: 1.2\n\n"
    "[Term]\nid: GO:0008150\nname: biological_process\nnamespace: biological_process\n\n"
    "[Term]\nid: GO:0003674\nname: molecular_function\nnamespace: molecular_function\n\n"
    "[Term]\nid: GO:0005575\nname: cellular_component\nnamespace: cellular_component\n\n"
    "[Term]\nid: GO:0000001\nname: p\nnamespace: biological_process\nis_a: GO:0008150\n\n"
    "[Term]\nid: GO:0000002\nname: a\nnamespace: biological_process\nis_a: GO:0000001\n\n"
    "[Term]\nid: GO:0000003\nname: m\nnamespace: molecular_function\nis_a: GO:0003674\n\n"
    "[Term]\nid: GO:0000004\nname: c\nnamespace: cellular_component\nis_a: GO:0005575\n";
enum { P_ = 3, A_ = 4, M_ = 5, C_ = 6 };  // term indices (file order)

static const char hand_tsv[] =
    "accession\tgo_id\tevidence\taspect\n"
    "T1\tGO:0000002\tEXP\tP\nT2\tGO:0000003\tEXP\tF\nT3\tGO:0000001\tEXP\tP\nT3\tGO:0000004\tEXP\tC\n"
    "T4\tGO:0000003\tEXP\tF\nH1\tGO:0000002\tEXP\tP\nH2\tGO:0000003\tEXP\tF\nH3\tGO:0000004\tEXP\tC\n";

typedef struct hand {
  go_ontology_t *o;
  go_annotations_t *truth;
  char train[512], train_ids[512], held[512], held_ids[512];
} hand_t;

// Training file: T1 (1,0) {a}, T2 (0,1) {m}, T3 (1,1) {p, c}, T4 (-1,0) {m}, U (1,0.1) unannotated,
// and the held-out H1 (1,0) {a}, H2 (0,1) {m}, H3 (-1,-1) {c} themselves (left out as held out).
static void hand_setup(hand_t *h) {
  ps_err_t err = {0};
  char p[512];
  assert_int_equal(go_ontology_parse(&h->o, hand_obo, sizeof hand_obo - 1, "hand.obo", NULL, &err), 0);
  fx_write_text(fx_path(p, sizeof p, "hand.tsv"), hand_tsv);
  assert_int_equal(annot_truth_load(&h->truth, h->o, p, 0, &err), 0);
  const float tr[] = {1, 0, 0, 1, 1, 1, -1, 0, 1, 0.1f, 1, 0, 0, 1, -1, -1};
  const char *tid[] = {"T1", "T2", "T3", "T4", "U", "H1", "H2", "H3"};
  write_emb("hand_train", tr, 8, 2, tid, h->train, h->train_ids);
  write_emb("hand_held", tr + 10, 3, 2, tid + 5, h->held, h->held_ids);
}

static void hand_free(hand_t *h) {
  go_annotations_destroy(&h->truth);
  go_ontology_destroy(&h->o);
}

typedef struct seen {
  const go_annotations_t *truth;
  char line[8][256];
  int n;
} seen_t;

// "H1: T1 1.0000 T3 0.7071 | 3:1.0000 4:0.5858 6:0.4142"
static int record(const annot_knn_pred_t *p, void *ctx, ps_err_t *err) {
  (void)err;
  seen_t *s = ctx;
  assert_true(s->n < 8);
  char *b = s->line[s->n++];
  int o = snprintf(b, 256, "%s:", p->id);
  for (size_t i = 0; i < p->n_nb; i++)
    o += snprintf(b + o, 256 - (size_t)o, " %s %.4f", s->truth->protein_ids[p->nb[i]], p->nb_sim[i]);
  o += snprintf(b + o, 256 - (size_t)o, " |");
  for (size_t i = 0; i < p->n_terms; i++) o += snprintf(b + o, 256 - (size_t)o, " %d:%.4f", p->terms[i], p->scores[i]);
  return 0;
}

static void run_hand(hand_t *h, int64_t k, int64_t block, seen_t *s, annot_fmax_result_t r[ANNOT_N_FM],
                     annot_knn_stats_t *st) {
  ps_err_t err = {0};
  emb_source_opts_t to = emb_source_opts_protein(h->train, h->train_ids), ho = emb_source_opts_protein(h->held, h->held_ids);
  annot_knn_opts_t o = {.k = k, .block_rows = block};
  memset(s, 0, sizeof *s);
  s->truth = h->truth;
  int rc = annot_knn_run(h->o, h->truth, &to, &ho, &o, record, s, r, st, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(rc, 0);
}

// k 2. H1: T1 (cos 1), T3 (0.7071): p (1 + 0.7071) / 1.7071 = 1, a 1 / 1.7071 = 0.5858, c 0.4142.
// H2: T2, T3: m 0.5858, p 0.4142, c 0.4142. H3: T4 (0.7071), then T1 and T2 tie at -0.7071 (the
// earlier record, T1, wins) with weight 0: m 1. U (cos 0.995 to H1) is unannotated: never a neighbour.
// Fmax, all namespaces: tau <= 0.41: pr (2/3 + 1/3 + 0) / 3, rc (1 + 1 + 0) / 3 -> F 4/9;
// 0.42..0.58: pr 2/3 (H3 predicts m, wrong), rc 2/3 -> F 2/3; above: pr (1 + 0) / 2, rc 1/6 -> 1/4.
// So 2/3 at 0.58. BP (H1 only): {p, a} at <= 0.58 -> 1. MF (H2 only): m 0.5858 -> 1 at 0.58. CC
// (H3 only): nothing predicted in CC -> 0.
static void test_hand(void **state) {
  (void)state;
  hand_t h = {0};
  hand_setup(&h);
  seen_t s;
  annot_fmax_result_t r[ANNOT_N_FM];
  annot_knn_stats_t st;
  run_hand(&h, 2, 256, &s, r, &st);
  assert_int_equal(s.n, 3);
  assert_string_equal(s.line[0], "H1: T1 1.0000 T3 0.7071 | 3:1.0000 4:0.5858 6:0.4142");
  assert_string_equal(s.line[1], "H2: T2 1.0000 T3 0.7071 | 3:0.4142 5:0.5858 6:0.4142");
  assert_string_equal(s.line[2], "H3: T4 0.7071 T1 -0.7071 | 5:1.0000");
  assert_int_equal(st.n_train, 4);
  assert_int_equal(st.n_train_held, 3);
  assert_int_equal(st.n_train_unannotated, 1);
  assert_int_equal(st.n_held, 3);
  assert_int_equal(st.n_evaluated, 3);
  assert_float_equal(r[0].fmax, 2.0 / 3.0, 1e-12);
  assert_float_equal(r[0].tau, 0.58, 1e-12);
  assert_float_equal(r[0].precision, 2.0 / 3.0, 1e-12);
  assert_float_equal(r[0].recall, 2.0 / 3.0, 1e-12);
  assert_float_equal(r[1 + GO_NS_BP].fmax, 1.0, 1e-12);
  assert_float_equal(r[1 + GO_NS_BP].tau, 0.58, 1e-12);
  assert_int_equal(r[1 + GO_NS_BP].n_proteins, 1);
  assert_float_equal(r[1 + GO_NS_MF].fmax, 1.0, 1e-12);
  assert_float_equal(r[1 + GO_NS_MF].tau, 0.58, 1e-12);
  assert_float_equal(r[1 + GO_NS_CC].fmax, 0.0, 0);
  assert_int_equal(r[1 + GO_NS_CC].n_proteins, 1);
  // blocks of 1 and 2 rows give the same
  for (int64_t b = 1; b <= 2; b++) {
    seen_t s2;
    annot_fmax_result_t r2[ANNOT_N_FM];
    run_hand(&h, 2, b, &s2, r2, NULL);
    for (int i = 0; i < 3; i++) assert_string_equal(s2.line[i], s.line[i]);
    for (int f = 0; f < ANNOT_N_FM; f++) assert_float_equal(r2[f].fmax, r[f].fmax, 0);
  }
  // k 1: H1 T1 {p, a}, H2 T2 {m}, H3 T4 {m}: pr 2/3, rc 2/3 at every tau -> 2/3 at 1.00
  run_hand(&h, 1, 256, &s, r, NULL);
  assert_string_equal(s.line[0], "H1: T1 1.0000 | 3:1.0000 4:1.0000");
  assert_float_equal(r[0].fmax, 2.0 / 3.0, 1e-12);
  assert_float_equal(r[0].tau, 1.0, 1e-12);
  // k larger than the training set: every training protein is a neighbour
  run_hand(&h, 50, 256, &s, r, NULL);
  assert_string_equal(s.line[2], "H3: T4 0.7071 T1 -0.7071 T2 -0.7071 T3 -1.0000 | 5:1.0000");
  // a tie for the last place: X (-1,1) is at 0.7071 of T2 and of T4; with k 1 the earlier record
  // (T2) stays. X is not annotated: predicted, not evaluated.
  const float xx[] = {-1, 1};
  const char *xid[] = {"X"};
  write_emb("tie", xx, 1, 2, xid, h.held, h.held_ids);
  annot_knn_stats_t st2;
  run_hand(&h, 1, 256, &s, r, &st2);
  assert_string_equal(s.line[0], "X: T2 0.7071 | 5:1.0000");
  assert_int_equal(st2.n_train, 7);  // no held-out id among the training records now: H1-H3 train
  assert_int_equal(st2.n_evaluated, 0);
  assert_int_equal(r[0].n_proteins, 0);
  hand_free(&h);
}

// Errors name the file and the record: a held-out dimension other than the training one, NaN,
// no annotated training protein.
static void test_errors(void **state) {
  (void)state;
  hand_t h = {0};
  hand_setup(&h);
  ps_err_t err = {0};
  char npy[512], ids[512];
  const float x3[] = {1, 2, 3, 4, 5, 6};
  const char *hid[] = {"H1", "H2"};
  write_emb("dim3", x3, 2, 3, hid, npy, ids);
  emb_source_opts_t to = emb_source_opts_protein(h.train, h.train_ids), ho = emb_source_opts_protein(npy, ids);
  assert_int_equal(annot_knn_run(h.o, h.truth, &to, &ho, NULL, NULL, NULL, NULL, NULL, &err), PS_EDIM);
  assert_non_null(strstr(err.msg, npy));
  assert_non_null(strstr(err.msg, "record 0 (id H1)"));
  assert_non_null(strstr(err.msg, "dimension 3"));
  const float xn[] = {1, 0, 0, NAN};
  write_emb("nan", xn, 2, 2, hid, npy, ids);
  ho = emb_source_opts_protein(npy, ids);
  ho.allow_nonfinite = 1;  // overridden: NaN is always an error
  assert_int_equal(annot_knn_run(h.o, h.truth, &to, &ho, NULL, NULL, NULL, NULL, NULL, &err), PS_ENAN);
  assert_non_null(strstr(err.msg, npy));
  assert_non_null(strstr(err.msg, "record 1 (id H2)"));
  const float xu[] = {1, 0};
  const char *uid[] = {"U"};
  write_emb("only_u", xu, 1, 2, uid, npy, ids);
  to = emb_source_opts_protein(npy, ids);
  ho = emb_source_opts_protein(h.held, h.held_ids);
  assert_int_equal(annot_knn_run(h.o, h.truth, &to, &ho, NULL, NULL, NULL, NULL, NULL, &err), PS_EFORMAT);
  assert_non_null(strstr(err.msg, npy));
  assert_non_null(strstr(err.msg, "no annotated training protein"));
  hand_free(&h);
}

// ---- numpy reference -------------------------------------------------------------------------
static const char ref_py[] =
    "import sys, numpy as np\n"
    "d, K = sys.argv[1], int(sys.argv[2])\n"
    "def ids(p): return [l.strip() for l in open(p) if l.strip()]\n"
    "T, tid = np.load(d + '/rand_train.npy').astype(np.float64), ids(d + '/rand_train.ids')\n"
    "H, hid = np.load(d + '/rand_held.npy').astype(np.float64), ids(d + '/rand_held.ids')\n"
    "truth = {}\n"
    "for l in open(d + '/truth.txt'):\n"
    "    a = l.rstrip('\\n').split('\\t'); truth[a[0]] = set(int(x) for x in a[1].split(',') if x)\n"
    "ns = [int(x) for x in open(d + '/ns.txt').read().split()]\n"
    "roots = set(int(x) for x in open(d + '/roots.txt').read().split())\n"
    "hs = set(hid)\n"
    "keep = [i for i, x in enumerate(tid) if x not in hs and truth.get(x)]\n"
    "tk = [tid[i] for i in keep]\n"
    "def unit(X):\n"
    "    n = np.linalg.norm(X, axis=1, keepdims=True); n[n == 0] = 1; return X / n\n"
    "S = unit(H) @ unit(T[keep]).T\n"
    "acc = [dict(p=np.zeros(101), np_=np.zeros(101), r=np.zeros(101), n=0) for _ in range(4)]\n"
    "out = open(d + '/expected.txt', 'w')\n"
    "for i, h in enumerate(hid):\n"
    "    order = np.argsort(-S[i], kind='stable')[:K]\n"
    "    out.write(h + ':' + ''.join(' ' + tk[j] for j in order) + '\\n')\n"
    "    w = np.maximum(S[i, order], 0); W = w.sum(); sc = {}\n"
    "    for j, wj in zip(order, w):\n"
    "        if wj > 0:\n"
    "            for t in truth[tk[j]] - roots: sc[t] = sc.get(t, 0) + wj\n"
    "    pred = {}\n"
    "    for t, v in sc.items():\n"
    "        v = np.floor(np.float32(v / W) * np.float32(1e4) + np.float32(0.5)) / np.float32(1e4)\n"
    "        if v > 0: pred[t] = float(v)\n"
    "    for k in range(4):\n"
    "        tru = {t for t in truth.get(h, set()) - roots if k == 0 or ns[t] == k - 1}\n"
    "        if not tru: continue\n"
    "        a = acc[k]; a['n'] += 1\n"
    "        for b in range(1, 101):\n"
    "            P = {t for t, v in pred.items() if (k == 0 or ns[t] == k - 1) and np.floor(v * 100 + 1e-4) >= b}\n"
    "            if P: a['p'][b] += len(P & tru) / len(P); a['np_'][b] += 1\n"
    "            a['r'][b] += len(P & tru) / len(tru)\n"
    "for k in range(4):\n"
    "    a = acc[k]; best = (0.0, 0.0)\n"
    "    for b in range(1, 101):\n"
    "        if not a['np_'][b]: continue\n"
    "        pr, rc = a['p'][b] / a['np_'][b], a['r'][b] / a['n']\n"
    "        f = 2 * pr * rc / (pr + rc) if pr + rc > 0 else 0\n"
    "        if f >= best[0] and f > 0: best = (f, b / 100)\n"
    "    out.write('fmax %d %.12f %.2f %d\\n' % (k, best[0], best[1], a['n']))\n";

static double gauss(uint64_t *s) {
  double u = ps_unit53(ps_splitmix64(s)), v = ps_unit53(ps_splitmix64(s));
  return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

typedef struct nbs {
  const go_annotations_t *truth;
  FILE *f;
} nbs_t;

static int write_nbs(const annot_knn_pred_t *p, void *ctx, ps_err_t *err) {
  (void)err;
  nbs_t *x = ctx;
  fprintf(x->f, "%s:", p->id);
  for (size_t i = 0; i < p->n_nb; i++) fprintf(x->f, " %s", x->truth->protein_ids[p->nb[i]]);
  fprintf(x->f, "\n");
  return 0;
}

// 150 proteins (d 12; 40 held out, all also in the training file; ~15% unannotated) over a random
// DAG of 3 x 25 terms; k 7, blocks of 16 rows. numpy computes the neighbours and the four Fmax.
static void test_numpy_reference(void **state) {
  (void)state;
  if (!have_numpy()) {
    fprintf(stderr, "test_annot_knn: /usr/bin/python3 has no numpy: the reference comparison is skipped\n");
    skip();
  }
  enum { NP = 150, NH = 40, D = 12, NT = 25, K = 7 };
  uint64_t rng = 17;
  char p[512], cmd[2048];
  // ontology: the roots, then per namespace NT terms, each is_a a random earlier term (or the root), some twice
  FILE *f = fopen(fx_path(p, sizeof p, "rand.obo"), "w");
  const char *root[3] = {"GO:0008150", "GO:0003674", "GO:0005575"};
  const char *nsn[3] = {"biological_process", "molecular_function", "cellular_component"};
  fprintf(f, "format-version: 1.2\n");
  for (int n = 0; n < 3; n++) fprintf(f, "\n[Term]\nid: %s\nname: %s\nnamespace: %s\n", root[n], nsn[n], nsn[n]);
  for (int n = 0; n < 3; n++)
    for (int j = 0; j < NT; j++) {
      fprintf(f, "\n[Term]\nid: GO:%07d\nname: t%d_%d\nnamespace: %s\n", 1000 * (n + 1) + j, n, j, nsn[n]);
      int a = (int)(ps_splitmix64(&rng) % (uint64_t)(j + 1)), b = (int)(ps_splitmix64(&rng) % (uint64_t)(j + 1));
      if (a == j) fprintf(f, "is_a: %s\n", root[n]);
      else fprintf(f, "is_a: GO:%07d\n", 1000 * (n + 1) + a);
      if (b != a && b != j) fprintf(f, "is_a: GO:%07d\n", 1000 * (n + 1) + b);
    }
  assert_int_equal(fclose(f), 0);
  ps_err_t err = {0};
  go_ontology_t *o = NULL;
  assert_int_equal(go_ontology_load(&o, p, NULL, &err), 0);
  // annotations: 1-3 random terms a protein, ~15% none
  char ids[NP][16];
  const char *idp[NP];
  f = fopen(fx_path(p, sizeof p, "rand.tsv"), "w");
  fprintf(f, "accession\tgo_id\tevidence\taspect\n");
  for (int i = 0; i < NP; i++) {
    snprintf(ids[i], sizeof ids[i], "P%03d", i);
    idp[i] = ids[i];
    if (ps_splitmix64(&rng) % 100 < 15) continue;
    int nt = 1 + (int)(ps_splitmix64(&rng) % 3);
    for (int j = 0; j < nt; j++) {
      int n = (int)(ps_splitmix64(&rng) % 3), t = (int)(ps_splitmix64(&rng) % NT);
      fprintf(f, "%s\tGO:%07d\tEXP\t%c\n", ids[i], 1000 * (n + 1) + t, "PFC"[n]);
    }
  }
  assert_int_equal(fclose(f), 0);
  go_annotations_t *truth = NULL;
  assert_int_equal(annot_truth_load(&truth, o, p, 0, &err), 0);
  // the propagated truth, namespaces and roots for numpy
  f = fopen(fx_path(p, sizeof p, "truth.txt"), "w");
  for (size_t i = 0; i < truth->n_proteins; i++) {
    fprintf(f, "%s\t", truth->protein_ids[i]);
    for (uint32_t j = 0; j < truth->n_terms[i]; j++) fprintf(f, "%s%d", j ? "," : "", truth->terms[i][j]);
    fprintf(f, "\n");
  }
  assert_int_equal(fclose(f), 0);
  f = fopen(fx_path(p, sizeof p, "ns.txt"), "w");
  for (size_t t = 0; t < go_n_terms(o); t++) fprintf(f, "%d\n", (int)go_term(o, (int32_t)t)->ns);
  assert_int_equal(fclose(f), 0);
  f = fopen(fx_path(p, sizeof p, "roots.txt"), "w");
  for (int n = 0; n < 3; n++) fprintf(f, "%d\n", go_lookup(o, root[n]));
  assert_int_equal(fclose(f), 0);
  // embeddings: everyone in the training file, every third of the first 120 (40) held out
  static float x[NP * D], xh[NH * D];
  const char *hid[NH];
  for (int i = 0; i < NP * D; i++) x[i] = (float)gauss(&rng);
  for (int i = 0; i < NH; i++) {
    memcpy(xh + i * D, x + 3 * i * D, D * sizeof *x);
    hid[i] = ids[3 * i];
  }
  char tn[512], ti[512], hn[512], hi[512];
  write_emb("rand_train", x, NP, D, idp, tn, ti);
  write_emb("rand_held", xh, NH, D, hid, hn, hi);
  f = fopen(fx_path(p, sizeof p, "ref.py"), "w");
  fputs(ref_py, f);
  assert_int_equal(fclose(f), 0);
  assert_true(snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %d", p, fx_dir, K) < (int)sizeof cmd);
  assert_int_equal(system(cmd), 0);
  // ours: neighbours into got.txt, Fmax compared with the reference's
  nbs_t nx = {.truth = truth, .f = fopen(fx_path(p, sizeof p, "got.txt"), "w")};
  emb_source_opts_t to = emb_source_opts_protein(tn, ti), ho = emb_source_opts_protein(hn, hi);
  annot_knn_opts_t ko = {.k = K, .block_rows = 16};
  annot_fmax_result_t r[ANNOT_N_FM];
  annot_knn_stats_t st;
  int rc = annot_knn_run(o, truth, &to, &ho, &ko, write_nbs, &nx, r, &st, &err);
  if (rc) fprintf(stderr, "%s\n", err.msg);
  assert_int_equal(rc, 0);
  assert_int_equal(fclose(nx.f), 0);
  assert_int_equal(st.n_held, NH);
  assert_int_equal(st.n_train_held, NH);
  assert_int_equal(st.n_train + st.n_train_held + st.n_train_unannotated, NP);
  char *want = fx_read_file(fx_path(p, sizeof p, "expected.txt"), NULL);
  char *got = fx_read_file(fx_path(p, sizeof p, "got.txt"), NULL);
  char *fm = strstr(want, "fmax ");
  assert_non_null(fm);
  assert_int_equal(strncmp(want, got, (size_t)(fm - want)), 0);  // the same neighbours, in the same order
  assert_int_equal(strlen(got), (size_t)(fm - want));
  for (int k = 0; k < ANNOT_N_FM; k++) {
    int kk, n;
    double fv, tau;
    assert_int_equal(sscanf(fm, "fmax %d %lf %lf %d", &kk, &fv, &tau, &n), 4);
    assert_int_equal(kk, k);
    fprintf(stderr, "  [%d] fmax %.6f (numpy %.6f) tau %.2f (%.2f) n %lld (%d)\n", k, r[k].fmax, fv, r[k].tau, tau,
            (long long)r[k].n_proteins, n);
    assert_true(fv > 0);
    assert_float_equal(r[k].fmax, fv, 1e-9);
    assert_float_equal(r[k].tau, tau, 1e-9);
    assert_int_equal(r[k].n_proteins, n);
    fm = strchr(fm, '\n') + 1;
  }
  free(want);
  free(got);
  go_annotations_destroy(&truth);
  go_ontology_destroy(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_numpy_reference),
  };
  return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
