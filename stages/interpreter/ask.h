// ask.h — steps 5-7 of the protocol (protocol.h) for a batch of units, the one implementation for
// both ways the interpreter runs (the file mode's interp_run and the pipeline mode's service.c):
// call 1 (the explanation prompt over the shown half) for every unit at once, its answers parsed;
// call 2 (the prediction prompt over the held-out half) for the units explained, its answers
// parsed and scored (Pearson r). The LLM client keeps its `parallel` calls in flight across the
// batch and answers from its cache first. The offline explainer's predictions go through the same
// parser and scoring (interp_take_predictions).
// Memory: the batch's prompts and answers.
#ifndef PS_INTERP_ASK_H
#define PS_INTERP_ASK_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "llm.h"
#include "protocol.h"

// One unit to ask about. The caller fills o, ids, row_db and res->s; a unit whose res->failure is
// already set is skipped. What comes back goes into res: answer1/2, explanation, pred, r, p,
// scored, constant_pred, or failure ("explain request: ...", "predict answer: ...", ...).
typedef struct interp_job {
  const interp_opts_t *o;     // prompt settings (unit_kind, max_go_terms, ...)
  const char *const *ids;     // accession of each row res->s indexes
  const int64_t *row_db;      // db row of each (NULL = accession only)
  interp_result_t *res;
} interp_job_t;

enum {
  INTERP_ASK_LOG = 1,            // log each call round with its unit count (the file mode)
  // an unparseable answer is dropped from the cache, so that asking again asks the model (the
  // pipeline mode: the scorer asks again); without it a rerun reads the same answer back
  INTERP_ASK_FORGET_UNPARSED = 2,
};

// Both calls for jobs[0..n). 0, or <0 (a cache error, PS_EINTR from the stop flag): the round
// under way stops there, call 2 is not made, and the jobs not answered by then have neither a
// result nor a failure.
int interp_ask(llm_client_t *llm, const interp_db_t *db, interp_job_t *jobs, size_t n, int flags, ps_err_t *err);

// The predictions in an answer's text for res's held-out half (acc: their accessions, may be
// NULL), then the score; or res->failure = "what: why" (res->pred stays NULL).
void interp_take_predictions(interp_result_t *res, const char *text, const char *const *acc, const char *what);
// Predictions as the answer text a model is asked for ("1: 0.2500\n2: ..."), malloc'ed ("" for m 0).
char *interp_answer_text(const double *pred, size_t m);

#endif
