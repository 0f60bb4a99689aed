// ask.c — see ask.h.
#include "ask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void score(interp_result_t *res) {
  size_t m = res->s.n_held;
  double *truth = ps_xmalloc((m ? m : 1) * sizeof *truth);
  for (size_t i = 0; i < m; i++) truth[i] = res->s.held_act[i];
  int rc = interp_pearson(res->pred, truth, m, &res->r, &res->p);
  if (rc == 0) {
    res->scored = 1;
  } else if (rc == PS_ENAN && m >= 3) {
    res->scored = 1;  // constant predictions (or, never, constant truth): no correlation
    res->constant_pred = 1;
    res->r = 0;
    res->p = 1;
  } else {
    snprintf(res->failure, sizeof res->failure, "cannot score: %zu held-out proteins", m);
  }
  free(truth);
}

void interp_take_predictions(interp_result_t *res, const char *text, const char *const *acc, const char *what) {
  size_t m = res->s.n_held;
  res->pred = ps_xmalloc((m ? m : 1) * sizeof *res->pred);
  char why[160];
  if (interp_parse_predictions(text, strlen(text), m, acc, res->pred, why, sizeof why) < 0) {
    snprintf(res->failure, sizeof res->failure, "%s: %s", what, why);
    free(res->pred);
    res->pred = NULL;
  } else {
    score(res);
  }
}

char *interp_answer_text(const double *pred, size_t m) {
  size_t cap = 32 * (m + 1), n = 0;
  char *s = ps_xmalloc(cap);
  s[0] = 0;
  for (size_t i = 0; i < m; i++) {
    int k = snprintf(NULL, 0, "%zu: %.4f\n", i + 1, pred[i]);
    if (k < 0) break;
    if (n + (size_t)k >= cap) s = ps_xrealloc(s, cap = (n + (size_t)k + 1) * 2);
    n += (size_t)snprintf(s + n, cap - n, "%zu: %.4f\n", i + 1, pred[i]);
  }
  return s;
}

// One round of calls: prompts[j] for jobs[which[j]], j < m. The answers are in calls[].
static int run_round(llm_client_t *llm, llm_call_t *calls, char *const *prompts, size_t m, ps_err_t *err) {
  for (size_t j = 0; j < m; j++) {
    memset(&calls[j], 0, sizeof calls[j]);
    calls[j].prompt = prompts[j];
  }
  return llm_run(llm, calls, m, err);
}

int interp_ask(llm_client_t *llm, const interp_db_t *db, interp_job_t *jobs, size_t n, int flags, ps_err_t *err) {
  llm_call_t *calls = ps_xcalloc(n ? n : 1, sizeof *calls);
  char **prompts = ps_xcalloc(n ? n : 1, sizeof *prompts);
  size_t *which = ps_xmalloc((n ? n : 1) * sizeof *which), m = 0;
  const char *kind = n ? jobs[0].o->unit_kind : "";
  // call 1: the explanations
  for (size_t i = 0; i < n; i++) {
    interp_job_t *q = &jobs[i];
    if (q->res->failure[0]) continue;
    prompts[m] = interp_prompt_explain(q->o, db, q->ids, q->row_db, &q->res->s);
    which[m++] = i;
  }
  if (flags & INTERP_ASK_LOG) PS_INFO("interpreter call 1 (explain) kind=%s units=%zu", kind, m);
  int rc = run_round(llm, calls, prompts, m, err);
  for (size_t j = 0; j < m && rc == 0; j++) {
    interp_result_t *x = jobs[which[j]].res;
    if (calls[j].rc < 0) {
      snprintf(x->failure, sizeof x->failure, "explain request: %s", calls[j].error);
      continue;
    }
    x->answer1 = ps_xstrdup(calls[j].text);
    char why[160];
    if (interp_parse_explanation(calls[j].text, &x->explanation, why, sizeof why) < 0) {
      snprintf(x->failure, sizeof x->failure, "explain answer: %s", why);
      if (flags & INTERP_ASK_FORGET_UNPARSED) rc = llm_forget(llm, prompts[j], err);
    }
  }
  llm_calls_free(calls, m);
  for (size_t j = 0; j < m; j++) free(prompts[j]);
  // call 2: the predictions on the held-out half of the units explained
  m = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    interp_job_t *q = &jobs[i];
    if (q->res->failure[0] || !q->res->explanation) continue;
    prompts[m] = interp_prompt_predict(q->o, db, q->ids, q->row_db, &q->res->s, q->res->explanation);
    which[m++] = i;
  }
  if (rc == 0) {
    if (flags & INTERP_ASK_LOG) PS_INFO("interpreter call 2 (predict) kind=%s units=%zu", kind, m);
    rc = run_round(llm, calls, prompts, m, err);
  }
  for (size_t j = 0; j < m && rc == 0; j++) {
    interp_job_t *q = &jobs[which[j]];
    interp_result_t *x = q->res;
    if (calls[j].rc < 0) {
      snprintf(x->failure, sizeof x->failure, "predict request: %s", calls[j].error);
      continue;
    }
    x->answer2 = ps_xstrdup(calls[j].text);
    size_t mh = x->s.n_held;
    const char **acc = ps_xmalloc((mh ? mh : 1) * sizeof *acc);
    for (size_t k = 0; k < mh; k++) acc[k] = q->ids[x->s.held[k]];
    interp_take_predictions(x, calls[j].text, acc, "predict answer");
    free(acc);
    if (!x->pred && (flags & INTERP_ASK_FORGET_UNPARSED)) rc = llm_forget(llm, prompts[j], err);
  }
  llm_calls_free(calls, m);
  for (size_t j = 0; j < m; j++) free(prompts[j]);
  free(prompts);
  free(calls);
  free(which);
  return rc;
}
