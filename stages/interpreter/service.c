// service.c — see service.h.
#include "service.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "offline.h"

typedef struct item {
  interp_sample_t s;          // rows index ids[]: shown 0..n_shown-1, held n_shown..
  const char **ids;
  int64_t *row_db;
  interp_opts_t o;
  char failure[256];
  char *explanation, *answer1, *answer2;
  double *pred;
  double r, p;
  int scored, constant;
} item_t;

static void item_init(item_t *it, const interp_service_t *sv, const Protsae__InterpretRequest *q) {
  memset(it, 0, sizeof *it);
  it->o = *sv->o;
  it->o.unit_kind = q->neurons ? "neuron" : "feature";
  size_t ns = q->n_shown_ids, nh = q->n_held_ids, tot = ns + nh;
  it->ids = ps_xmalloc((tot ? tot : 1) * sizeof *it->ids);
  it->row_db = ps_xmalloc((tot ? tot : 1) * sizeof *it->row_db);
  for (size_t i = 0; i < ns; i++) it->ids[i] = q->shown_ids[i];
  for (size_t i = 0; i < nh; i++) it->ids[ns + i] = q->held_ids[i];
  for (size_t i = 0; i < tot; i++) it->row_db[i] = interp_db_find(sv->db, it->ids[i]);
  interp_sample_t *s = &it->s;
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
  interp_sample_free(&it->s);
  free(it->ids);
  free(it->row_db);
  free(it->explanation);
  free(it->answer1);
  free(it->answer2);
  free(it->pred);
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

static void score(item_t *it) {
  size_t m = it->s.n_held;
  double *truth = ps_xmalloc((m ? m : 1) * sizeof *truth);
  for (size_t i = 0; i < m; i++) truth[i] = it->s.held_act[i];
  int rc = interp_pearson(it->pred, truth, m, &it->r, &it->p);
  if (rc == 0) {
    it->scored = 1;
  } else if (rc == PS_ENAN && m >= 3) {
    it->scored = 1;  // constant predictions: no correlation
    it->constant = 1;
    it->r = 0;
    it->p = 1;
  } else {
    snprintf(it->failure, sizeof it->failure, "cannot score: %zu held-out proteins", m);
  }
  free(truth);
}

static void parse_pred(item_t *it, const char *text, const char *what) {
  size_t m = it->s.n_held;
  const char **acc = ps_xmalloc((m ? m : 1) * sizeof *acc);
  for (size_t k = 0; k < m; k++) acc[k] = it->ids[it->s.held[k]];
  it->pred = ps_xmalloc((m ? m : 1) * sizeof *it->pred);
  char why[160];
  if (interp_parse_predictions(text, strlen(text), m, acc, it->pred, why, sizeof why) < 0) {
    snprintf(it->failure, sizeof it->failure, "%s: %s", what, why);
    free(it->pred);
    it->pred = NULL;
  } else {
    score(it);
  }
  free(acc);
}

static void offline_one(const interp_service_t *sv, const Protsae__InterpretRequest *q, item_t *it) {
  size_t nt = q->n_terms;
  const char **go = ps_xmalloc((nt ? nt : 1) * sizeof *go);
  double *p = ps_xmalloc((nt ? nt : 1) * sizeof *p), *fold = ps_xmalloc((nt ? nt : 1) * sizeof *fold);
  uint32_t *k = ps_xmalloc((nt ? nt : 1) * sizeof *k), *n = ps_xmalloc((nt ? nt : 1) * sizeof *n);
  for (size_t i = 0; i < nt; i++) {
    go[i] = q->terms[i]->go_id ? q->terms[i]->go_id : "";
    p[i] = q->terms[i]->p;
    fold[i] = q->terms[i]->fold;
    k[i] = q->terms[i]->k;
    n[i] = q->terms[i]->n;
  }
  offline_expl_t ex;
  offline_explain_terms(sv->db, go, p, fold, k, n, nt, it->o.unit_kind, &ex);
  it->explanation = ps_xstrdup(ex.text);
  // the predictions go through the same parser as a model's answer
  size_t m = it->s.n_held, cap = 32 * (m + 1), o = 0;
  char *ans = ps_xmalloc(cap);
  ans[0] = 0;
  for (size_t i = 0; i < m; i++)
    o += (size_t)snprintf(ans + o, cap - o, "%zu: %.4f\n", i + 1, offline_predict(&ex, sv->db, it->row_db[it->s.held[i]]));
  parse_pred(it, ans, "offline answer");
  free(ans);
  offline_expl_free(&ex);
  free(go);
  free(p);
  free(fold);
  free(k);
  free(n);
}

int interp_service_answer(const interp_service_t *sv, Protsae__InterpretRequest *const *reqs, size_t n,
                          Protsae__InterpretResult *out, ps_err_t *err) {
  item_t *it = ps_xcalloc(n ? n : 1, sizeof *it);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    const char *bad = request_problem(reqs[i]);
    if (bad) {
      memset(&it[i], 0, sizeof it[i]);
      snprintf(it[i].failure, sizeof it[i].failure, "bad request: %s", bad);
      continue;
    }
    item_init(&it[i], sv, reqs[i]);
    if (!sv->llm) offline_one(sv, reqs[i], &it[i]);
  }
  if (sv->llm) {
    llm_call_t *calls = ps_xcalloc(n ? n : 1, sizeof *calls);
    char **prompts = ps_xcalloc(n ? n : 1, sizeof *prompts);
    size_t *which = ps_xmalloc((n ? n : 1) * sizeof *which), m = 0;
    for (size_t i = 0; i < n; i++) {  // call 1: the explanation
      if (it[i].failure[0]) continue;
      prompts[m] = interp_prompt_explain(&it[i].o, sv->db, it[i].ids, it[i].row_db, &it[i].s);
      calls[m].prompt = prompts[m];
      which[m++] = i;
    }
    rc = llm_run(sv->llm, calls, m, err);
    for (size_t j = 0; j < m && rc == 0; j++) {
      item_t *x = &it[which[j]];
      if (calls[j].rc < 0) {
        snprintf(x->failure, sizeof x->failure, "explain request: %s", calls[j].error);
        continue;
      }
      x->answer1 = ps_xstrdup(calls[j].text);
      char why[160];
      if (interp_parse_explanation(calls[j].text, &x->explanation, why, sizeof why) < 0) {
        snprintf(x->failure, sizeof x->failure, "explain answer: %s", why);
        if (rc == 0) rc = llm_forget(sv->llm, prompts[j], err);  // the retry asks the model again
      }
    }
    llm_calls_free(calls, m);
    for (size_t j = 0; j < m; j++) free(prompts[j]);
    m = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {  // call 2: predictions on the held-out half
      if (it[i].failure[0] || !it[i].explanation) continue;
      prompts[m] = interp_prompt_predict(&it[i].o, sv->db, it[i].ids, it[i].row_db, &it[i].s, it[i].explanation);
      memset(&calls[m], 0, sizeof calls[m]);
      calls[m].prompt = prompts[m];
      which[m++] = i;
    }
    if (rc == 0) rc = llm_run(sv->llm, calls, m, err);
    for (size_t j = 0; j < m && rc == 0; j++) {
      item_t *x = &it[which[j]];
      if (calls[j].rc < 0) {
        snprintf(x->failure, sizeof x->failure, "predict request: %s", calls[j].error);
        continue;
      }
      x->answer2 = ps_xstrdup(calls[j].text);
      parse_pred(x, calls[j].text, "predict answer");
      if (!x->pred && rc == 0) rc = llm_forget(sv->llm, prompts[j], err);
    }
    llm_calls_free(calls, m);
    for (size_t j = 0; j < m; j++) free(prompts[j]);
    free(prompts);
    free(calls);
    free(which);
  }
  for (size_t i = 0; i < n; i++) {
    Protsae__InterpretResult *r = &out[i];
    protsae__interpret_result__init(r);
    item_t *x = &it[i];
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
      r->constant_prediction = x->constant;
    }
    item_free(x);
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
