// service.c — see service.h.
#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ask.h"
#include "offline.h"

typedef struct item {
  interp_result_t res;        // res.s rows index ids[]: shown 0..n_shown-1, held n_shown..
  const char **ids;
  int64_t *row_db;
  interp_opts_t o;
} item_t;

static void item_init(item_t *it, const interp_service_t *sv, const Protsae__InterpretRequest *q) {
  it->o = *sv->o;
  it->o.unit_kind = q->neurons ? "neuron" : "feature";
  size_t ns = q->n_shown_ids, nh = q->n_held_ids, tot = ns + nh;
  it->ids = ps_xmalloc((tot ? tot : 1) * sizeof *it->ids);
  it->row_db = ps_xmalloc((tot ? tot : 1) * sizeof *it->row_db);
  for (size_t i = 0; i < ns; i++) it->ids[i] = q->shown_ids[i];
  for (size_t i = 0; i < nh; i++) it->ids[ns + i] = q->held_ids[i];
  for (size_t i = 0; i < tot; i++) it->row_db[i] = interp_db_find(sv->db, it->ids[i]);
  ps_sample_t *s = &it->res.s;
  s->n_active = (size_t)q->n_active;
  s->n_shown = ns;
  s->n_held = nh;
  s->shown = ps_xmalloc((ns ? ns : 1) * sizeof *s->shown);
  s->shown_act = ps_xmalloc((ns ? ns : 1) * sizeof *s->shown_act);
  s->shown_bin = ps_xmalloc((ns ? ns : 1) * sizeof *s->shown_bin);
  s->held = ps_xmalloc((nh ? nh : 1) * sizeof *s->held);
  s->held_act = ps_xmalloc((nh ? nh : 1) * sizeof *s->held_act);
  s->held_bin = ps_xmalloc((nh ? nh : 1) * sizeof *s->held_bin);
  for (size_t i = 0; i < ns; i++) {
    s->shown[i] = (int64_t)i;
    s->shown_act[i] = q->shown_act[i];
    s->shown_bin[i] = i < q->n_shown_bin ? q->shown_bin[i] : 0;
  }
  for (size_t i = 0; i < nh; i++) {
    s->held[i] = (int64_t)(ns + i);
    s->held_act[i] = q->held_act[i];
    s->held_bin[i] = i < q->n_held_bin ? q->held_bin[i] : 0;
  }
}

static void item_free(item_t *it) {
  interp_result_clear(&it->res);
  free(it->ids);
  free(it->row_db);
}

// A request the stage cannot work on (checked before any prompt is built).
static const char *request_problem(const Protsae__InterpretRequest *q) {
  if (q->n_shown_act != q->n_shown_ids || q->n_held_act != q->n_held_ids) return "ids and activations differ in count";
  if (q->n_held_ids < 3) return "fewer than 3 held-out proteins";
  if (q->n_shown_ids + q->n_held_ids > 10000) return "more than 10000 proteins";
  for (size_t i = 0; i < q->n_shown_act; i++)
    if (!(q->shown_act[i] >= 0 && q->shown_act[i] <= 1)) return "a shown activation outside [0, 1]";
  for (size_t i = 0; i < q->n_held_act; i++)
    if (!(q->held_act[i] >= 0 && q->held_act[i] <= 1)) return "a held-out activation outside [0, 1]";
  return NULL;
}

static void offline_one(const interp_service_t *sv, item_t *it) {
  interp_result_t *x = &it->res;
  offline_expl_t ex;  // from the shown proteins only, as a model sees them
  offline_explain(&it->o, sv->db, it->row_db, x->s.shown, x->s.shown_act, x->s.n_shown, &ex);
  x->explanation = ps_xstrdup(ex.text);
  // the predictions go through the same parser as a model's answer
  size_t m = x->s.n_held;
  double *pred = ps_xmalloc((m ? m : 1) * sizeof *pred);
  const char **acc = ps_xmalloc((m ? m : 1) * sizeof *acc);
  for (size_t i = 0; i < m; i++) {
    pred[i] = offline_predict(&ex, &it->o, sv->db, it->row_db[x->s.held[i]]);
    acc[i] = it->ids[x->s.held[i]];
  }
  char *ans = interp_answer_text(pred, m);
  interp_take_predictions(x, ans, acc, "offline answer");
  free(ans);
  free(acc);
  free(pred);
  offline_expl_free(&ex);
}

int interp_service_answer(const interp_service_t *sv, Protsae__InterpretRequest *const *reqs, size_t n,
                          Protsae__InterpretResult *out, ps_err_t *err) {
  item_t *it = ps_xcalloc(n ? n : 1, sizeof *it);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const char *bad = request_problem(reqs[i]);
    if (bad) {
      snprintf(it[i].res.failure, sizeof it[i].res.failure, "bad request: %s", bad);
      continue;
    }
    item_init(&it[i], sv, reqs[i]);
    if (!sv->llm) offline_one(sv, &it[i]);
  }
  if (sv->llm) {  // steps 5-7 for the batch (ask.h); an unparseable answer is asked again later
    interp_job_t *jobs = ps_xcalloc(n ? n : 1, sizeof *jobs);
    for (size_t i = 0; i < n; i++) jobs[i] = (interp_job_t){&it[i].o, it[i].ids, it[i].row_db, &it[i].res};
    rc = interp_ask(sv->llm, sv->db, jobs, n, INTERP_ASK_FORGET_UNPARSED, err);
    free(jobs);
  }
  for (size_t i = 0; i < n; i++) {
    Protsae__InterpretResult *r = &out[i];
    protsae__interpret_result__init(r);
    interp_result_t *x = &it[i].res;
    r->unit = reqs[i]->unit;
    r->neurons = reqs[i]->neurons;
    r->store = ps_xstrdup(reqs[i]->store ? reqs[i]->store : "");
    r->attempt = reqs[i]->attempt;
    r->mode = ps_xstrdup(sv->mode);
    if (rc < 0 && !x->failure[0]) snprintf(x->failure, sizeof x->failure, "interrupted");
    if (!x->failure[0] && !x->scored) snprintf(x->failure, sizeof x->failure, "not scored");
    r->failure = ps_xstrdup(x->failure);
    r->explanation = ps_xstrdup(x->explanation && !x->failure[0] ? x->explanation : "");
    r->answer1 = ps_xstrdup(x->answer1 ? x->answer1 : "");
    r->answer2 = ps_xstrdup(x->answer2 ? x->answer2 : "");
    if (!x->failure[0]) {
      r->n_predictions = x->s.n_held;
      r->predictions = x->pred;
      x->pred = NULL;
      r->r = x->r;
      r->p = x->p;
      r->scored = 1;
      r->constant_prediction = x->constant_pred;
    }
    item_free(&it[i]);
  }
  free(it);
  return rc;
}

void interp_service_result_free(Protsae__InterpretResult *r) {
  free(r->store);
  free(r->mode);
  free(r->failure);
  free(r->explanation);
  free(r->answer1);
  free(r->answer2);
  free(r->predictions);
  protsae__interpret_result__init(r);
}
