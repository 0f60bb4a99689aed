// protocol.h — the interpretation protocol (after the reference study), independent of where the
// activations come from and of who answers (an LLM client or the offline explainer).
//
// Per unit (an SAE feature or an ESM2 neuron):
//  1-4. the sample (common/sample.h, opts.sample): activations (ReLU first for neurons unless
//     sample.relu is off: the study's min-max over raw values) min-max scaled to [0, 1]; units with
//     too few active proteins, or constant, skipped; active proteins sampled across five activation
//     bins, plus inactive ones; split into a shown part (sample.explain_frac of it) and a held-out
//     part;
//  5. call 1 shows the shown part (accession, gene, protein name, Pfam families with their names
//     when known "PF00001 (7tm_1)", GO term names, per namespace (BP / MF / CC sections) or in one
//     list, optionally the sequence, scaled activation) and asks for a one-sentence explanation;
//  6. call 2 gives the explanation and the held-out half (shuffled, no activations) and asks for
//     one number in [0, 1] per protein; the answer is parsed (interp_parse_predictions);
//  7. score = Pearson r (two-sided p) of predicted vs true scaled activations. Constant predictions
//     score r = 0, p = 1 (noted); a request or parse failure is recorded and excluded.
// Steps 5-7 with a model are ask.h's, for both ways the interpreter runs (interp_run here, the
// pipeline mode in service.c). A unit's sample depends only on (seed, unit), not on which other
// units are analysed or in what order.
#ifndef PS_INTERP_PROTOCOL_H
#define PS_INTERP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "err.h"
#include "llm.h"
#include "sample.h"

// Activations: one column (unit) at a time.
typedef struct interp_source {
  size_t n_proteins;               // rows
  size_t n_units;                  // columns
  const char *const *protein_ids;  // accession of each row (borrowed)
  // Fill out[0..n_proteins) with unit `unit`'s raw activations. 0 or <0 (err set).
  int (*column)(void *ctx, size_t unit, float *out, ps_err_t *err);
  void *ctx;
} interp_source_t;

typedef struct interp_opts {
  ps_sample_opts_t sample;   // steps 1-4 (bins 6,3,3,3,2; 15 inactive; 34 active; seed 1)
  size_t n_units;            // units to analyse, picked at random among the eligible (200; 0 = all)
  int max_go_terms;          // GO term names per protein in prompts, per namespace when go_by_namespace (12)
  int go_by_namespace;       // GO terms in BP / MF / CC sections (1) or one list, most specific first (0)
  int with_sequence;         // show sequences (db must hold them)
  const char *unit_kind;     // "feature" or "neuron" (prompts, output)
  const char *model_desc;    // "the protein language model ESM2" (prompts)
} interp_opts_t;

void interp_opts_default(interp_opts_t *o);

// The GO terms a prompt lists for db protein d (in the prompt's order: by namespace when
// go_by_namespace, each most specific first, at most max_go_terms each; else the first
// max_go_terms): up to cap into out; returns the count written.
size_t interp_prompt_go_terms(const interp_opts_t *o, const interp_db_t *db, int64_t d, int32_t *out, size_t cap);

// Prompts (malloc'ed, caller frees). ids: accession of each row; db may be NULL (accession only).
char *interp_prompt_explain(const interp_opts_t *o, const interp_db_t *db, const char *const *ids,
                            const int64_t *row_db, const ps_sample_t *s);
char *interp_prompt_predict(const interp_opts_t *o, const interp_db_t *db, const char *const *ids,
                            const int64_t *row_db, const ps_sample_t *s, const char *explanation);

// The explanation in an answer: the first non-empty line, with "Explanation:" prefixes, markdown
// and quotes stripped, at most 1000 bytes. 0 and *out (caller frees), or PS_EFORMAT (why).
int interp_parse_explanation(const char *text, char **out, char *why, size_t cap);

// Predictions in an answer for m proteins. Accepted: lines "N: v" (also "N.", "N)", "N -", "- N:",
// "Protein N:", with the accession or other words between N and v), lines keyed by the protein's
// accession (acc may be NULL), a JSON array of m numbers, or exactly m bare numbers. v is a number
// in [0, 1] (or a percentage). Anything else - a missing, duplicate or out-of-range index, a value
// outside [0, 1], no predictions - is PS_EFORMAT with the reason in why. text need not be
// NUL-terminated (len bytes). out[0..m) on success.
int interp_parse_predictions(const char *text, size_t len, size_t m, const char *const *acc, double *out,
                             char *why, size_t cap);

// Pearson r of x and y (n >= 3) and its two-sided p-value (t distribution with n-2 degrees of
// freedom, through the regularised incomplete beta function; equal to scipy.stats.pearsonr).
// 0, or PS_EDIM (n < 3) or PS_ENAN (a constant vector or non-finite values).
int interp_pearson(const double *x, const double *y, size_t n, double *r, double *p);
// Regularised incomplete beta I_x(a, b) (exposed for tests).
double interp_betai(double a, double b, double x);

typedef struct interp_result {
  size_t unit;
  ps_sample_t s;
  char *explanation;   // NULL when call 1 failed
  double *pred;        // s.n_held predictions or NULL
  double r, p;
  int scored;          // r and p valid
  int constant_pred;   // predictions were constant (r = 0, p = 1)
  char failure[256];   // "" or the reason (request / parse)
  char *answer1, *answer2;  // raw answers (NULL when none)
} interp_result_t;

typedef struct interp_summary {
  size_t n_units;        // units in the source
  size_t n_checked;      // units looked at (until n_units eligible were found)
  size_t n_too_few;      // skipped: fewer than min_active active proteins
  size_t n_constant;     // skipped: constant activations
  size_t n_selected, n_scored, n_failed, n_constant_pred;
  double mean_r, median_r, frac_p05;  // over scored units (NaN when none)
} interp_summary_t;

typedef struct interp_run_opts {
  llm_client_t *llm;     // NULL = offline mode
  int offline;           // 1 = offline (llm ignored)
} interp_run_opts_t;

// The whole protocol over src: picks units, samples, asks (llm) or explains offline, scores.
// *results (n_selected entries, caller frees with interp_results_free). db may be NULL only with
// an LLM. Returns 0, or <0 (column access, cache errors, PS_EINTR).
int interp_run(const interp_source_t *src, const interp_db_t *db, const interp_opts_t *o, const interp_run_opts_t *ro,
               interp_result_t **results, size_t *n_results, interp_summary_t *sum, ps_err_t *err);
void interp_results_free(interp_result_t *r, size_t n);
// Free what one result owns (its sample, explanation, predictions, answers) and zero it.
void interp_result_clear(interp_result_t *r);

// One JSON object per line per result; written to path.tmp, fsynced, renamed. mode: "offline" or
// "anthropic:MODEL" etc.; offline adds "offline": true to every line.
int interp_write_jsonl(const char *path, const interp_opts_t *o, const interp_source_t *src, const interp_result_t *r,
                       size_t n, const char *mode, int offline, ps_err_t *err);

#endif
