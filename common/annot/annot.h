// annot.h — annotating proteins with a trained SAE: active features, their explanations and GO
// terms predicted from the features' enrichment (`protsae annotate`, the demo's held-out test).
//
// GO prediction rule. Inputs: the enrichment of the SAE's features in their feature store
// (featstore.h, family "enrich", complete: fs_enrich_done): the significant enriched (feature,
// term) pairs (fs_enrich_feat_t.hits) and each feature's max activation over the proteins the
// enrichment saw (fs_enrich_feat_t.max_act); explanations from the same store (family "interp").
// For feature f and term t,
// conf(f, t) = the pair's precision k/n (share of f's active proteins annotated with t; `protsae
// annotate`'s default), or its best-threshold F1, or 1 - q_bh; then
// closed upward over the ontology: conf(f, a) = max over f's terms t that are a or below a.
// A protein with activations a_f scores each term
//     score(t) = max over its active features f of  min(1, a_f / max_act_f) x conf(f, t)
// so predictions are consistent with the DAG (a term scores at least as high as any
// descendant). The three namespace roots are never predicted (nor evaluated).
//
// Evaluation (CAFA protein-centric Fmax, Radivojac et al. 2013) over thresholds tau = 0.01,
// 0.02, ..., 1.00: a protein's predicted set at tau = its terms with score >= tau;
// precision(tau) = mean over proteins with >= 1 predicted term of |P n T| / |P|;
// recall(tau) = mean over all evaluated proteins (those with >= 1 true non-root annotation,
// propagated) of |P n T| / |T|; F(tau) = 2 pr rc / (pr + rc); Fmax = max over tau (the highest
// tau among ties). All namespaces together, and each namespace on its own (CAFA's way).
//
// Two ways in: annot_proteome encodes a proteome's embeddings in-process with the SAE (`protsae
// annotate`, the demo); annot_protein writes one protein from its sparse code as an encoder's
// FeatureBatch carries it (the annotation sink stage). Both write the same bytes for the same codes.
// Files: annot_model.c (the model), annot_write.c (one protein), annot_eval.c (Fmax, naive
// baseline, eval text), annot.c (the in-process proteome path).
//
// Memory: the SAE, one batch (batch_rows x d_in floats + chunk pre-activations), per feature
// its closed term list (8 bytes a term), the ontology, the FASTA's ids (the check that every
// embedding id is in the FASTA), per-term scratch (8 bytes a GO term). Never a whole proteome.
#ifndef PS_ANNOT_H
#define PS_ANNOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "go.h"
#include "sae.h"

// ---- Fmax ----------------------------------------------------------------------------------
#define ANNOT_N_TAU 100
#define ANNOT_N_FM 4   // evaluations: [0] all namespaces together, [1 + go_namespace_t] BP, MF, CC
typedef struct annot_fmax {
  double prec_sum[ANNOT_N_TAU + 1];   // index i: tau = i / 100 (i >= 1)
  int64_t n_prec[ANNOT_N_TAU + 1];
  double rec_sum[ANNOT_N_TAU + 1];
  int64_t n_proteins;                 // evaluated (>= 1 true term)
} annot_fmax_t;

typedef struct annot_fmax_result {
  double fmax, tau, precision, recall;  // 0 (tau 0) when nothing was predicted
  int64_t n_proteins;
} annot_fmax_result_t;

void annot_fmax_init(annot_fmax_t *f);
// One protein: n_pred predicted terms with scores in [0, 1] and whether each is a true term;
// n_true its true terms. Ignored when n_true == 0.
void annot_fmax_add(annot_fmax_t *f, const float *score, const uint8_t *correct, size_t n_pred, size_t n_true);
void annot_fmax_result(const annot_fmax_t *f, annot_fmax_result_t *r);
// One protein into fm[0] (all namespaces) and fm[1 + go_namespace_t] (BP, MF, CC): n predicted
// terms (term index, score in [0, 1]; never a root) and its propagated true terms (sorted
// ascending; the roots among them are not counted). A namespace where it has no true term ignores it.
void annot_fmax_add_terms(annot_fmax_t fm[ANNOT_N_FM], const go_ontology_t *o, const int32_t *terms,
                          const float *scores, size_t n, const int32_t *true_terms, uint32_t n_true);

// The naive baseline of the same evaluation (CAFA's "naive"): every protein gets each term scored
// by its frequency among the annotated proteins of truth that are not evaluated here (the
// training population), roots excluded. eval_ids: the n evaluated proteins (ids in truth).
// r[ANNOT_N_FM]: all namespaces, BP, MF, CC.
void annot_naive_fmax(const go_ontology_t *onto, const go_annotations_t *truth, char *const *eval_ids, size_t n,
                      annot_fmax_result_t *r);

// ---- the model -------------------------------------------------------------------------------
typedef enum { ANNOT_CONF_F1 = 0, ANNOT_CONF_PRECISION = 1, ANNOT_CONF_ONE_MINUS_Q = 2 } annot_conf_t;

typedef struct annot_opts {
  const char *sae_dir;        // SAELens / protsae checkpoint directory; NULL: no SAE (annot_protein only,
                              // the feature count is the store's)
  const char *db;             // feature store of the SAE's features with complete enrichment (+ explanations)
  const char *obo;            // GO ontology (go*.obo[.gz]; ps_godata_find's)
  annot_conf_t conf;
  double min_score;           // terms below are not written (0.01)
  int64_t max_terms;          // at most this many GO terms a protein, best first (0 = all)
  int64_t batch_rows;         // rows encoded at a time (256)
  int no_scaling;             // 1: a_f / max_act_f taken as 1 (any active feature counts fully)
} annot_opts_t;

typedef struct annot_model annot_model_t;

// Errors name the file (the store and feature). A store whose enrichment is not complete, or with
// another feature count than the SAE, is refused. The caller frees with annot_model_free.
int annot_model_load(annot_model_t **out, const annot_opts_t *o, ps_err_t *err);
void annot_model_free(annot_model_t **m);
const go_ontology_t *annot_model_onto(const annot_model_t *m);
int64_t annot_model_d_in(const annot_model_t *m);        // 0 without an SAE
int64_t annot_model_n_features(const annot_model_t *m);
int64_t annot_model_n_with_terms(const annot_model_t *m);  // features with >= 1 term

// The TSV's header line (once a file, before the first protein).
void annot_write_header(FILE *tsv);

// One protein from its sparse code: feature ids idx[0..n) with activations val[0..n) (any order;
// ids < annot_model_n_features, else PS_EDIM naming the protein) -> its TSV rows and JSONL line.
// truth and fm (may be NULL): its evaluation (see annot_proteome); st: counts (zero it first).
// An output write error (ferror on tsv / jsonl) returns <0 with errno's message.
typedef struct annot_stats annot_stats_t;
int annot_protein(annot_model_t *m, const char *id, const uint32_t *idx, const float *val, size_t n, FILE *tsv,
                  FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, annot_stats_t *st, ps_err_t *err);

// One proteome: FASTA + embeddings (any reader format; ids from ids_path, else the FASTA order)
// -> tsv and jsonl (written to these paths as given; the caller renames). truth (propagated
// annotations, may be NULL) adds the proteome's proteins to fm[ANNOT_N_FM] (all, BP, MF, CC;
// a protein counts in a namespace when it has a true term there). pace_ms sleeps after each batch
// (tests). stop (may be NULL) is polled between batches: returns PS_EINTR when it says so.
// Errors name the file and the record (missing id in the FASTA, wrong dimension, NaN). Needs the SAE.
struct annot_stats {
  int64_t n_proteins, n_fasta, n_with_go, n_active_sum;
  char **eval_ids;          // the evaluated proteins' ids (with truth), caller frees with annot_stats_free
  size_t n_eval, cap_eval;
};
void annot_stats_free(annot_stats_t *st);
int annot_proteome(annot_model_t *m, const char *fasta, const char *emb, const char *ids_path, FILE *tsv,
                   FILE *jsonl, const go_annotations_t *truth, annot_fmax_t *fm, int pace_ms, int (*stop)(void),
                   annot_stats_t *st, ps_err_t *err);

// ---- evaluation and the one-call entry point -----------------------------------------------------
typedef struct annot_eval {
  annot_fmax_result_t fm[ANNOT_N_FM];     // all, BP, MF, CC
  annot_fmax_result_t naive[ANNOT_N_FM];
  int64_t n_proteins, n_evaluated;
} annot_eval_t;

// The data directory's GO annotations (godata.h: go_annotations.tsv[.gz] or a GAF), propagated
// over o. *out: caller frees with go_annotations_destroy.
int annot_truth_load(go_annotations_t **out, const go_ontology_t *o, const char *annotations, int gaf, ps_err_t *err);
// The Fmax of one annotated proteome (fm, st from annot_proteome with truth) and the naive
// baseline over the same proteins.
void annot_eval_finish(const annot_model_t *m, const go_annotations_t *truth, const annot_fmax_t fm[ANNOT_N_FM],
                       const annot_stats_t *st, annot_eval_t *ev);

// NAME.eval.txt's text (`key: value` lines: proteins, Fmax, threshold, precision, recall, naive
// baseline, then per namespace) into buf; returns snprintf's length.
int annot_eval_text(const annot_eval_t *ev, char *buf, size_t cap);

// Annotate one proteome (FASTA + embeddings, ids from ids_path or the FASTA order) with the SAE at sae_dir and
// the enrichment + explanations of the feature store db; writes out_dir/NAME.tsv and NAME.jsonl (atomically:
// tmp + fsync + rename); evaluates against the data directory's annotations when ev != NULL. 0 or <0 (err).
// data_dir NULL: ps_godata_default_dir. Default options (annotate's: precision confidence, scaled
// activations, min score 0.01, at most 100 terms a protein, 256 rows a batch).
int annot_run_proteome(const char *db, const char *sae_dir, const char *data_dir, const char *fasta, const char *emb,
                       const char *ids_path, const char *out_dir, const char *name, annot_eval_t *ev, ps_err_t *err);

#endif
