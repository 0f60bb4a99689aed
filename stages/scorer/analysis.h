// analysis.h — what the scorer does with a complete feature store (the "enrichment scorer" of
// the design): GO enrichment of every feature written into the store, then the interpretation
// of a sample of units through any number of interpreter processes, results stored exactly once.
//
// Enrichment (scorer_enrich_*): the ontology and annotations of the data directory are loaded at
// start (a directory without an ontology is refused then, with its path). When run, the store's
// codes are read feature-major (fs_load_csc), proteins listed in the exclude file are left out
// (not in the population, their activations dropped), and the engine (common/enrich) runs every
// feature in memory; the records are then written in groups of SCORER_ENRICH_GROUP features, each
// group with the next group's start ("enrich/state") in one write batch, then the summary and
// "enrich/state" = "done". The run's settings ("enrich/settings", JSON) are written with the first
// group: a restart with the same settings resumes after the last committed group, with other
// settings it clears the family and starts over. Results are a function of the store and the
// settings only (the engine is deterministic for any thread count), so a kill -9 at any point
// and a restart give byte-identical records.
// Memory: the CSC of the store (12 bytes per non-zero + the ids) + the engine (enrich.h) + the
// results (64 bytes per kept (feature, term)).
//
// Interpretation (scorer_interp_*): units are considered in a seeded order (common/sample.h) and
// the first n eligible ones (enough active proteins, not constant) are planned; each becomes an
// InterpretRequest carrying its sampled proteins (ids, scaled activations, bins), its statistics
// and its enriched terms. At most `inflight` requests are out at once (so interpreters that join
// later get work); a request without an answer after timeout_ms is sent again; an answer with a
// failure (LLM error, unparseable answer) is asked again after a backoff, up to max_attempts, then
// stored as failed. An answer is validated (unit planned, predictions in [0, 1], one per held-out
// protein, r finite) and stored once: the record (JSON, the line `protsae export` writes) is
// built from the plan and the answer only, so the same answers give the same bytes; an answer for
// a unit already stored is counted and ignored. Progress survives restarts (the stored records).
// Memory: per planned unit ~40 protein ids + 200 bytes; the CSC while planning.
#ifndef PS_SCORER_ANALYSIS_H
#define PS_SCORER_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "enrich.h"
#include "err.h"
#include "featstore.h"
#include "protsae.pb-c.h"
#include "sample.h"

#define SCORER_ENRICH_GROUP 512

typedef struct scorer_enrich scorer_enrich_t;

typedef struct scorer_enrich_cfg {
  const char *data_dir;       // ontology + annotations (common/godata.h rules)
  const char *exclude_file;   // ids left out of the enrichment, one a line (NULL = none)
  int threads;                // engine threads (1 = none)
  enrich_opts_t opts;
  unsigned rels;              // go_rel_t edges the annotations propagate up (enrich-relations; 0 = is_a + part_of)
} scorer_enrich_cfg_t;

// Loads the ontology (with the edges of cfg->rels) and the annotations, propagated over them.
// Errors name the data directory / file.
int scorer_enrich_new(scorer_enrich_t **out, const scorer_enrich_cfg_t *cfg, ps_err_t *err);
void scorer_enrich_destroy(scorer_enrich_t **e);
// Enrich the store now. force: also when a complete enrichment with these settings is stored.
// *ran = 1 when it computed (0 when the stored one was kept). 0 or <0 (store, engine errors).
int scorer_enrich_run(scorer_enrich_t *e, fs_t *fs, int force, int *ran, double *seconds, ps_err_t *err);

typedef struct scorer_interp scorer_interp_t;

typedef struct scorer_interp_cfg {
  const char *store_name;     // stamped on requests; answers for another store are dropped
  size_t n_units;             // units to interpret (0 = every eligible unit)
  ps_sample_opts_t sample;    // sampling (relu is set for neuron stores)
  int inflight;               // requests out at once (8)
  int64_t timeout_ms;         // re-send an unanswered request after this long
  int64_t backoff_ms;         // first delay before asking again after a failure (doubles)
  uint32_t max_attempts;      // attempts before a unit is stored as failed
  uint32_t max_terms;         // enriched terms sent per request (20)
  int neuron_minmax;          // neuron stores: 0 = ReLU then min-max (sample.relu), 1 = min-max of the raw values
} scorer_interp_cfg_t;

typedef struct scorer_interp_counts {
  uint64_t planned, stored, failed_final, sent, resent, answers, duplicates, rejected, failures;
} scorer_interp_counts_t;

// Plans the units of a complete store (reads its codes and enrichment). Units already stored are
// not asked again.
int scorer_interp_new(scorer_interp_t **out, const scorer_interp_cfg_t *cfg, fs_t *fs, ps_err_t *err);
void scorer_interp_destroy(scorer_interp_t **si);
// The next request due at now_ms (NULL when none): *req points into si (valid until the next
// call); call scorer_interp_sent after handing it to the socket.
const Protsae__InterpretRequest *scorer_interp_next(scorer_interp_t *si, uint64_t now_ms);
void scorer_interp_sent(scorer_interp_t *si, const Protsae__InterpretRequest *req, uint64_t now_ms);
// Apply an answer: 1 stored (added to wb), 0 ignored (duplicate, retry scheduled), <0 rejected
// (err says why; nothing stored).
int scorer_interp_apply(scorer_interp_t *si, fs_t *fs, fs_wb_t *wb, const Protsae__InterpretResult *r,
                        uint64_t now_ms, ps_err_t *err);
// Every planned unit stored (and committed: the summary reads the store): adds "interp/summary"
// to wb once and returns 1.
int scorer_interp_finish(scorer_interp_t *si, fs_t *fs, fs_wb_t *wb, ps_err_t *err);
int scorer_interp_done(const scorer_interp_t *si);
const scorer_interp_counts_t *scorer_interp_counts(const scorer_interp_t *si);

#endif
