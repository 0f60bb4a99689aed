// The annotation sink's logic (stages/annotator/sink.h) driven directly with synthetic
// FeatureBatches and EndOfStreams against a small feature store with complete enrichment (written
// through featstore.h) and a hand-made ontology: output in FASTA order whatever the arrival order,
// duplicates dropped, a missing seq asked for, the end before the batches, a failed proteome,
// restarts after every step (the same bytes), a committed proteome dropped and acked again,
// rejections, and the results read back through annstore.h.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "annot.h"
#include "annstore.h"
#include "featstore.h"
#include "fixture.h"
#include "sink.h"

static const char k_obo[] =
    "format-version: 1.2\n\n"
    "[Term]\nid: GO:0008150\nname: biological_process\nnamespace: biological_process\n\n"
    "[Term]\nid: GO:0003674\nname: molecular_function\nnamespace: molecular_function\n\n"
    "[Term]\nid: GO:0005575\nname: cellular_component\nnamespace: cellular_component\n\n"
    "[Term]\nid: GO:0000001\nname: signalling\nnamespace: biological_process\nis_a: GO:0008150\n\n"
    "[Term]\nid: GO:0000002\nname: kinase signalling\nnamespace: biological_process\nis_a: GO:0000001\n\n"
    "[Term]\nid: GO:0000003\nname: kinase activity\nnamespace: molecular_function\nis_a: GO:0003674\n\n"
    "[Term]\nid: GO:0000004\nname: membrane\nnamespace: cellular_component\nis_a: GO:0005575\n";

#define N_FEAT 8
#define KEY "prot_a.0123456789abcdef"
#define N_PROT 10   // proteins of the proteome, FASTA records 0..9
#define N_BATCH 4   // batches of 3, 3, 2, 2 proteins, in a length order (not the FASTA order)

static char g_db[PATH_MAX], g_obo[PATH_MAX];
static annot_model_t *g_model;
static char *g_ref_tsv, *g_ref_jsonl;  // the expected output: annot_protein in FASTA order

static void hit(fs_term_hit_t *h, const char *go, uint32_t k, uint32_t n) {
  memset(h, 0, sizeof *h);
  snprintf(h->go_id, sizeof h->go_id, "%s", go);
  h->name = strdup(go);
  h->k = k, h->n = n, h->K = 20, h->N = 100;
  h->p = 1e-5, h->q_bh = 1e-3, h->f1 = 0.5f;
}

static void make_store(void) {
  ps_err_t err = {0};
  fs_t *fs = NULL;
  fx_path(g_db, sizeof g_db, "features.db");
  assert_int_equal(fs_open(&fs, g_db, FS_OPEN_CREATE, &err), 0);
  fs_wb_t *wb = fs_wb_new();
  fs_meta_t m = {.format = FS_FORMAT, .n_features = N_FEAT, .top_n = 4, .proteins = 100};
  fs_wb_put_meta(fs, wb, &m);
  static const char *const go[3] = {"GO:0000002", "GO:0000003", "GO:0000004"};
  for (uint32_t f = 0; f < 3; f++) {
    fs_enrich_feat_t e;
    memset(&e, 0, sizeof e);
    e.n_active = 10, e.n_study = 10, e.max_act = 2.0f;
    e.n_hits = 1;
    e.hits = calloc(1, sizeof *e.hits);
    hit(&e.hits[0], go[f], 6 + f, 10);
    fs_wb_put_enrich(fs, wb, f, &e);
    fs_enrich_feat_free(&e);
  }
  const char *ex = "{\"unit\":1,\"kind\":\"feature\",\"explanation\":\"kinases\\tand more\",\"r\":0.5,\"p\":0.01,"
                   "\"scored\":true,\"constant_prediction\":false,\"failure\":\"\",\"mode\":\"offline\",\"attempts\":1}";
  fs_wb_put_interp(fs, wb, 1, ex, strlen(ex));
  fs_wb_put_kv(fs, wb, "enrich/state", "done", 4);
  assert_int_equal(fs_commit(fs, wb, 1, &err), 0);
  fs_wb_free(&wb);
  fs_close(&fs);
}

// Protein r's code: 1-3 features of 0..7, activations from r.
static uint32_t code_of(int r, uint32_t *idx, float *val) {
  uint32_t n = 1 + (uint32_t)(r % 3);
  for (uint32_t j = 0; j < n; j++) {
    idx[j] = (uint32_t)((r + 3 * j) % N_FEAT);
    val[j] = 0.25f * (float)(1 + (r * 7 + (int)j) % 9);
  }
  return n;
}
static void id_of(int r, char *buf, size_t cap) { snprintf(buf, cap, "P%05d", 900 - 7 * r); }

// Batch seq's proteins (FASTA records), in the sender's order.
static const int k_batches[N_BATCH][3] = {{7, 2, 9}, {0, 5, 3}, {8, 1, -1}, {6, 4, -1}};

static int group_setup(void **state) {
  if (fx_setup(state)) return -1;
  make_store();
  fx_path(g_obo, sizeof g_obo, "go.obo");
  fx_write_text(g_obo, k_obo);
  annot_opts_t o = {.sae_dir = NULL, .db = g_db, .obo = g_obo, .conf = ANNOT_CONF_PRECISION, .min_score = 0.01,
                    .max_terms = 100};
  ps_err_t err = {0};
  if (annot_model_load(&g_model, &o, &err) < 0) fail_msg("model: %s", err.msg);
  // the reference output
  char p1[PATH_MAX], p2[PATH_MAX];
  FILE *t = fopen(fx_path(p1, sizeof p1, "ref.tsv"), "w"), *j = fopen(fx_path(p2, sizeof p2, "ref.jsonl"), "w");
  annot_write_header(t);
  annot_stats_t st;
  memset(&st, 0, sizeof st);
  for (int r = 0; r < N_PROT; r++) {
    uint32_t idx[4];
    float val[4];
    char id[32];
    uint32_t n = code_of(r, idx, val);
    id_of(r, id, sizeof id);
    assert_int_equal(annot_protein(g_model, id, idx, val, n, t, j, NULL, NULL, &st, &err), 0);
  }
  fclose(t);
  fclose(j);
  size_t l;
  g_ref_tsv = fx_read_file(p1, &l);
  g_ref_jsonl = fx_read_file(p2, &l);
  assert_non_null(strstr(g_ref_tsv, "kinases and more"));      // an explanation, tab made a space
  assert_non_null(strstr(g_ref_tsv, "\tgo\tGO:0000001\t"));    // an ancestor predicted (closed upward)
  return 0;
}
static int group_teardown(void **state) {
  annot_model_free(&g_model);
  free(g_ref_tsv);
  free(g_ref_jsonl);
  return fx_teardown(state);
}

// ---- messages -----------------------------------------------------------------------------------------
typedef struct msg {
  int eos;           // 0 batch seq, 1 end (batches = seq)
  uint64_t seq;
  const char *reason;
} msg_t;

static void send_msg(sink_t *s, const char *key, const msg_t *m, int64_t now, int expect) {
  ps_err_t err = {0};
  int rc;
  if (m->eos) {
    Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
    e.proteome = (char *)key;
    e.source_producer = (char *)"reader-0";
    e.source_next_seq = m->seq;
    e.proteins_sent = N_PROT;
    e.residues_sent = 1234;
    e.proteins_skipped = 1;
    e.reason = (char *)(m->reason ? m->reason : "done");
    rc = sink_eos(s, &e, "enc-1", now, &err);
  } else {
    const int *b = k_batches[m->seq];
    Protsae__FeatureBatch fb = PROTSAE__FEATURE_BATCH__INIT;
    char ids[3][32], *idp[3];
    uint32_t indptr[4] = {0}, idx[12];
    float val[12];
    uint64_t src[3];
    size_t n = 0;
    for (int i = 0; i < 3 && b[i] >= 0; i++, n++) {
      id_of(b[i], ids[n], sizeof ids[n]);
      idp[n] = ids[n];
      indptr[n + 1] = indptr[n] + code_of(b[i], idx + indptr[n], val + indptr[n]);
      src[n] = (uint64_t)b[i];
    }
    fb.n_protein_ids = n, fb.protein_ids = idp;
    fb.n_rows = (uint32_t)n, fb.n_features = N_FEAT;
    fb.n_indptr = n + 1, fb.indptr = indptr;
    fb.n_indices = fb.n_values = indptr[n], fb.indices = idx, fb.values = val;
    fb.source_seq = m->seq, fb.source_producer = (char *)"reader-0";
    fb.proteome = (char *)key;
    fb.n_source_index = n, fb.source_index = src;
    rc = sink_batch(s, &fb, now, &err);
  }
  if (rc != expect) fail_msg("%s %llu: got %d, want %d (%s)", m->eos ? "eos" : "batch", (unsigned long long)m->seq, rc,
                             expect, err.msg);
}

// What the sink sent back.
typedef struct sent {
  int n, acks;
  char producer[64], proteome[64];
  uint64_t seqs[16];
  size_t n_seqs;
  int finished;
} sent_t;
static void on_send(void *ctx, const char *producer, const char *proteome, const uint64_t *seqs, size_t n, int finished) {
  sent_t *x = ctx;
  x->n++;
  x->acks += finished;
  snprintf(x->producer, sizeof x->producer, "%s", producer);
  snprintf(x->proteome, sizeof x->proteome, "%s", proteome);
  x->n_seqs = n < 16 ? n : 16;
  if (n) memcpy(x->seqs, seqs, x->n_seqs * sizeof *seqs);
  x->finished = finished;
}

static void open_sink(sink_t **s, const char *tag, sent_t *sent) {
  char st[PATH_MAX], out[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
  snprintf(a, sizeof a, "%s.state", tag);
  snprintf(b, sizeof b, "%s.out", tag);
  sink_opts_t o = {fx_path(st, sizeof st, a), fx_path(out, sizeof out, b), g_model, NULL, 1000, 0};
  ps_err_t err = {0};
  if (sink_open(s, &o, on_send, sent, &err) < 0) fail_msg("open: %s", err.msg);
}

static void assert_output(const char *tag, const char *name) {
  char p[PATH_MAX], rel[PATH_MAX];
  size_t l;
  snprintf(rel, sizeof rel, "%s.out/%s.tsv", tag, name);
  char *t = fx_read_file(fx_path(p, sizeof p, rel), &l);
  snprintf(rel, sizeof rel, "%s.out/%s.jsonl", tag, name);
  char *j = fx_read_file(fx_path(p, sizeof p, rel), &l);
  assert_string_equal(t, g_ref_tsv);
  assert_string_equal(j, g_ref_jsonl);
  free(t);
  free(j);
}

static void assert_result(const char *tag, const char *key, as_status_t status, const char *error_has) {
  char st[PATH_MAX], a[PATH_MAX];
  snprintf(a, sizeof a, "%s.state", tag);
  as_t *as = NULL;
  ps_err_t err = {0};
  if (as_open(&as, fx_path(st, sizeof st, a), AS_OPEN_READONLY, &err) < 0) fail_msg("%s", err.msg);
  as_result_t r;
  assert_int_equal(as_result_get(as, key, &r, &err), 1);
  assert_int_equal(r.status, status);
  assert_string_equal(r.key, key);
  assert_string_equal(r.name, "prot_a");
  assert_string_equal(r.producer, "reader-0");
  if (status == AS_STATUS_DONE) {
    assert_int_equal(r.proteins, N_PROT);
    assert_int_equal(r.skipped, 1);
    assert_int_equal(r.residues, 1234);
    assert_true(r.with_go > 0 && r.with_go <= N_PROT);
    assert_float_equal(r.mean_active, 1.9, 1e-9);  // codes of 1, 2, 3 features: (4 + 2 x 3 + 3 x 3) / 10
    assert_non_null(strstr(r.tsv, "/prot_a.tsv"));
    assert_string_equal(r.error, "");
  } else {
    assert_non_null(strstr(r.error, error_has));
    assert_string_equal(r.tsv, "");
  }
  assert_true(r.t_done >= r.t_first && r.t_first > 1e9);
  as_result_free(&r);
  assert_int_equal(as_result_get(as, "other.0123456789abcdef", &r, &err), 0);
  as_close(&as);
}

// Feed msgs; with restart_each, the sink is closed and reopened (the store too) before every message.
static void run(const char *tag, const msg_t *msgs, const int *expect, size_t n, int restart_each, sent_t *sent) {
  sink_t *s = NULL;
  open_sink(&s, tag, sent);
  for (size_t i = 0; i < n; i++) {
    if (restart_each && i) {
      sink_close(&s);
      open_sink(&s, tag, sent);
      ps_err_t err = {0};
      assert_int_equal(sink_poll(s, 0, &err), 0);
    }
    send_msg(s, KEY, &msgs[i], 0, expect[i]);
  }
  sink_close(&s);
}

// ---- tests --------------------------------------------------------------------------------------------
static void test_in_order(void **state) {
  (void)state;
  const msg_t m[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {1, 4, 0}};
  const int ex[] = {1, 1, 1, 1, 1};
  sent_t sent = {0};
  run("inorder", m, ex, 5, 0, &sent);
  assert_output("inorder", "prot_a");
  assert_result("inorder", KEY, AS_STATUS_DONE, NULL);
  assert_int_equal(sent.n, 1);
  assert_int_equal(sent.acks, 1);
  assert_string_equal(sent.producer, "reader-0");
  assert_string_equal(sent.proteome, KEY);
  // nothing left in .tmp
  char p[PATH_MAX];
  assert_int_not_equal(access(fx_path(p, sizeof p, "inorder.out/.tmp/" KEY ".tsv"), F_OK), 0);
}

static void test_out_of_order_duplicates_eos_first(void **state) {
  (void)state;
  const msg_t m[] = {{1, 4, 0}, {0, 2, 0}, {0, 0, 0}, {0, 2, 0}, {1, 4, 0}, {0, 3, 0}, {0, 0, 0}, {0, 1, 0}};
  const int ex[] = {1, 1, 1, 0, 0, 1, 0, 1};
  sent_t sent = {0};
  sink_t *s = NULL;
  open_sink(&s, "ooo", &sent);
  for (size_t i = 0; i < 8; i++) send_msg(s, KEY, &m[i], 0, ex[i]);
  assert_int_equal(sink_counts(s)->duplicates, 3);
  assert_int_equal(sink_counts(s)->done, 1);
  assert_int_equal(sink_in_flight(s), 0);
  sink_close(&s);
  assert_output("ooo", "prot_a");
  assert_result("ooo", KEY, AS_STATUS_DONE, NULL);
}

static void test_missing_seq_resend(void **state) {
  (void)state;
  sent_t sent = {0};
  sink_t *s = NULL;
  ps_err_t err = {0};
  open_sink(&s, "miss", &sent);
  const msg_t m[] = {{0, 0, 0}, {0, 3, 0}};
  send_msg(s, KEY, &m[0], 0, 1);
  send_msg(s, KEY, &m[1], 10, 1);
  // batches but no end: after resend-after-ms (1000) without progress, the end is asked for
  assert_int_equal(sink_poll(s, 500, &err), 0);
  assert_int_equal(sent.n, 0);
  assert_int_equal(sink_poll(s, 1010, &err), 0);
  assert_int_equal(sent.n, 1);
  assert_int_equal(sent.n_seqs, 0);
  assert_int_equal(sent.finished, 0);
  assert_string_equal(sent.proteome, KEY);
  assert_int_equal(sink_poll(s, 1500, &err), 0);  // not again before another interval
  assert_int_equal(sent.n, 1);
  const msg_t e = {1, 4, 0};
  send_msg(s, KEY, &e, 2000, 1);
  // end known, seqs 1 and 2 missing: asked for after an interval without progress
  assert_int_equal(sink_poll(s, 2500, &err), 0);
  assert_int_equal(sent.n, 1);
  assert_int_equal(sink_poll(s, 3000, &err), 0);
  assert_int_equal(sent.n, 2);
  assert_int_equal(sent.n_seqs, 2);
  assert_int_equal(sent.seqs[0], 1);
  assert_int_equal(sent.seqs[1], 2);
  assert_int_equal(sent.finished, 0);
  assert_int_equal(sink_counts(s)->resends, 2);
  // also after a restart: the reopened sink starts its clock at its first poll
  sink_close(&s);
  open_sink(&s, "miss", &sent);
  assert_int_equal(sink_in_flight(s), 1);
  assert_int_equal(sink_poll(s, 50000, &err), 0);
  assert_int_equal(sent.n, 2);
  assert_int_equal(sink_poll(s, 51000, &err), 0);
  assert_int_equal(sent.n, 3);
  assert_int_equal(sent.n_seqs, 2);
  assert_int_equal(sent.seqs[0], 1);
  const msg_t r1 = {0, 1, 0}, r2 = {0, 2, 0};
  send_msg(s, KEY, &r2, 51100, 1);
  send_msg(s, KEY, &r1, 51200, 1);
  assert_int_equal(sent.acks, 1);
  assert_int_equal(sink_in_flight(s), 0);
  sink_close(&s);
  assert_output("miss", "prot_a");
}

static void test_failed_proteome(void **state) {
  (void)state;
  sent_t sent = {0};
  sink_t *s = NULL;
  open_sink(&s, "fail", &sent);
  const msg_t b = {0, 0, 0}, e = {1, 0, "error: prot_a.fasta: record 3 (id X): invalid residue 'J' at position 7"};
  send_msg(s, KEY, &b, 0, 1);  // something staged before the failure: dropped with it
  send_msg(s, KEY, &e, 0, 1);
  assert_int_equal(sent.acks, 1);
  assert_int_equal(sink_counts(s)->failed, 1);
  assert_int_equal(sink_in_flight(s), 0);
  send_msg(s, KEY, &e, 0, 0);  // again: a duplicate, acked again
  assert_int_equal(sent.acks, 2);
  sink_close(&s);
  assert_result("fail", KEY, AS_STATUS_FAILED, "prot_a.fasta: record 3 (id X): invalid residue");
  char p[PATH_MAX];
  assert_int_not_equal(access(fx_path(p, sizeof p, "fail.out/prot_a.tsv"), F_OK), 0);
}

// Restarts (close + reopen of the sink and its store) before every message, for several arrival
// orders with duplicates: the same bytes as the undisturbed run.
static void test_restart_each_step(void **state) {
  (void)state;
  const msg_t orders[3][7] = {
      {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {1, 4, 0}, {0, 0, 0}, {1, 4, 0}},
      {{1, 4, 0}, {0, 3, 0}, {0, 3, 0}, {0, 1, 0}, {0, 2, 0}, {0, 1, 0}, {0, 0, 0}},
      {{0, 2, 0}, {0, 0, 0}, {1, 4, 0}, {1, 4, 0}, {0, 1, 0}, {0, 0, 0}, {0, 3, 0}},
  };
  const int ex[3][7] = {{1, 1, 1, 1, 1, 0, 0}, {1, 1, 0, 1, 1, 0, 1}, {1, 1, 1, 0, 1, 0, 1}};
  for (int o = 0; o < 3; o++) {
    char tag[32];
    snprintf(tag, sizeof tag, "restart%d", o);
    sent_t sent = {0};
    run(tag, orders[o], ex[o], 7, 1, &sent);
    assert_output(tag, "prot_a");
    assert_result(tag, KEY, AS_STATUS_DONE, NULL);
    assert_true(sent.acks >= 1);
  }
}

// A committed proteome: its batches and ends are dropped and the ack is sent again; the output is
// not written again.
static void test_already_done(void **state) {
  (void)state;
  const msg_t m[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {1, 4, 0}};
  const int ex[] = {1, 1, 1, 1, 1};
  sent_t sent = {0};
  run("done", m, ex, 5, 0, &sent);
  char p[PATH_MAX];
  fx_path(p, sizeof p, "done.out/prot_a.tsv");
  assert_int_equal(unlink(p), 0);
  sink_t *s = NULL;
  open_sink(&s, "done", &sent);
  send_msg(s, KEY, &m[0], 0, 0);  // seq 0: acked again
  assert_int_equal(sent.acks, 2);
  send_msg(s, KEY, &m[2], 0, 0);  // other seqs: dropped silently
  assert_int_equal(sent.acks, 2);
  send_msg(s, KEY, &m[4], 0, 0);  // the end: acked again
  assert_int_equal(sent.acks, 3);
  assert_int_equal(sink_counts(s)->duplicates, 3);
  assert_int_equal(sink_in_flight(s), 0);
  ps_err_t err = {0};
  assert_int_equal(sink_poll(s, 100000, &err), 0);
  sink_close(&s);
  assert_int_not_equal(access(p, F_OK), 0);
}

// Same NAME, other content: another key, which replaces NAME.tsv; both results listed.
static int count_cb(const as_result_t *r, void *ctx) {
  (*(int *)ctx)++;
  assert_string_equal(r->name, "prot_a");
  return 0;
}
static void test_same_name_other_key(void **state) {
  (void)state;
  sent_t sent = {0};
  sink_t *s = NULL;
  open_sink(&s, "two", &sent);
  const char *k2 = "prot_a.fedcba9876543210";
  const msg_t e1 = {1, 1, 0}, b0 = {0, 0, 0};
  send_msg(s, k2, &b0, 0, 1);
  send_msg(s, k2, &e1, 0, 1);
  const msg_t m[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {1, 4, 0}};
  for (int i = 0; i < 5; i++) send_msg(s, KEY, &m[i], 0, 1);
  assert_int_equal(sink_counts(s)->done, 2);
  // a reader (protsae status) opens the store read-only while the sink runs
  as_t *as = NULL;
  ps_err_t err = {0};
  char st[PATH_MAX];
  assert_int_equal(as_open(&as, fx_path(st, sizeof st, "two.state"), AS_OPEN_READONLY, &err), 0);
  int n = 0;
  assert_int_equal(as_result_each(as, count_cb, &n, &err), 0);
  assert_int_equal(n, 2);
  as_close(&as);
  sink_close(&s);
  assert_output("two", "prot_a");
}

static void test_rejected(void **state) {
  (void)state;
  sent_t sent = {0};
  sink_t *s = NULL;
  open_sink(&s, "rej", &sent);
  const msg_t b0 = {0, 0, 0}, b3 = {0, 3, 0}, e2 = {1, 2, 0}, sig = {1, 4, "signal"};
  send_msg(s, "noHash", &b0, 0, PS_EPROTO);
  send_msg(s, ".hidden.0123456789abcdef", &b0, 0, PS_EPROTO);
  send_msg(s, "a/b.0123456789abcdef", &b0, 0, PS_EPROTO);
  send_msg(s, "prot_a.0123456789ABCDEF", &b0, 0, PS_EPROTO);
  send_msg(s, KEY, &sig, 0, PS_EPROTO);   // not a proteome's end
  send_msg(s, KEY, &b3, 0, 1);
  send_msg(s, KEY, &e2, 0, PS_EPROTO);    // an end below a staged seq
  assert_int_equal(sink_counts(s)->rejected, 6);
  // a batch with another feature count, a NaN, a feature id out of range
  Protsae__FeatureBatch fb = PROTSAE__FEATURE_BATCH__INIT;
  char *ids[1] = {(char *)"P1"};
  uint32_t indptr[2] = {0, 1}, idx[1] = {2};
  float val[1] = {NAN};
  uint64_t src[1] = {0};
  fb.n_protein_ids = 1, fb.protein_ids = ids, fb.n_rows = 1, fb.n_features = N_FEAT + 1;
  fb.n_indptr = 2, fb.indptr = indptr, fb.n_indices = fb.n_values = 1, fb.indices = idx, fb.values = val;
  fb.source_seq = 1, fb.source_producer = (char *)"reader-0", fb.proteome = (char *)KEY;
  fb.n_source_index = 1, fb.source_index = src;
  ps_err_t err = {0};
  assert_int_equal(sink_batch(s, &fb, 0, &err), PS_EPROTO);
  assert_non_null(strstr(err.msg, "features"));
  fb.n_features = N_FEAT;
  assert_int_equal(sink_batch(s, &fb, 0, &err), PS_EPROTO);
  assert_non_null(strstr(err.msg, "finite"));
  fb.n_source_index = 0;
  val[0] = 1;
  assert_int_equal(sink_batch(s, &fb, 0, &err), PS_EPROTO);
  assert_non_null(strstr(err.msg, "source_index"));
  fb.n_source_index = 1;
  fb.source_producer = (char *)"";
  assert_int_equal(sink_batch(s, &fb, 0, &err), PS_EPROTO);
  assert_int_equal(sink_counts(s)->rejected, 10);
  assert_int_equal(sink_counts(s)->staged, 1);
  sink_close(&s);
}

// The output cannot be written (OUT is a file): the sink stops with an error naming the path, the
// proteome stays staged; once OUT is fixed, the reopened sink finishes it at its first poll.
static void test_output_fault_then_restart(void **state) {
  (void)state;
  char out[PATH_MAX];
  fx_write_text(fx_path(out, sizeof out, "fault.out"), "not a directory\n");
  sent_t sent = {0};
  sink_t *s = NULL;
  open_sink(&s, "fault", &sent);
  const msg_t m[] = {{0, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 3, 0}, {1, 4, 0}};
  for (int i = 0; i < 4; i++) send_msg(s, KEY, &m[i], 0, 1);
  ps_err_t err = {0};
  Protsae__EndOfStream e = PROTSAE__END_OF_STREAM__INIT;
  e.proteome = (char *)KEY, e.source_producer = (char *)"reader-0", e.source_next_seq = 4, e.reason = (char *)"done";
  e.proteins_sent = N_PROT, e.residues_sent = 1234, e.proteins_skipped = 1;
  int rc = sink_eos(s, &e, "enc-1", 0, &err);
  assert_true(rc < 0 && rc != PS_EPROTO);
  assert_non_null(strstr(err.msg, "fault.out"));
  assert_int_equal(sent.acks, 0);
  sink_close(&s);
  assert_int_equal(unlink(out), 0);
  open_sink(&s, "fault", &sent);
  assert_int_equal(sink_in_flight(s), 1);
  assert_int_equal(sink_poll(s, 0, &err), 0);
  assert_int_equal(sink_in_flight(s), 0);
  assert_int_equal(sent.acks, 1);
  sink_close(&s);
  assert_output("fault", "prot_a");
  assert_result("fault", KEY, AS_STATUS_DONE, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_in_order),
      cmocka_unit_test(test_out_of_order_duplicates_eos_first),
      cmocka_unit_test(test_missing_seq_resend),
      cmocka_unit_test(test_failed_proteome),
      cmocka_unit_test(test_restart_each_step),
      cmocka_unit_test(test_already_done),
      cmocka_unit_test(test_same_name_other_key),
      cmocka_unit_test(test_rejected),
      cmocka_unit_test(test_output_fault_then_restart),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
