// service.h — the interpreter as a pipeline stage: InterpretRequests in (from the scorer, which
// sampled the proteins from its store and attached the store's enriched GO terms), one
// InterpretResult out per request. Steps 5-7 of the protocol (protocol.h) with a model are ask.h's
// (shared with the file mode); offline, the explanation comes from the shown proteins only, as a
// model sees them (offline.h; the request's enriched terms are not used), and the graded
// predictions go through the same answer parser. A failed request or an unparseable answer
// becomes a result with `failure` set: the scorer asks again later.
// Memory: the protein db + one batch of requests and their prompts.
#ifndef PS_INTERP_SERVICE_H
#define PS_INTERP_SERVICE_H

#include <stddef.h>

#include "db.h"
#include "err.h"
#include "llm.h"
#include "protocol.h"
#include "protsae.pb-c.h"

typedef struct interp_service {
  const interp_db_t *db;     // proteins: names, genes, Pfam, GO (required)
  llm_client_t *llm;         // NULL = offline
  const interp_opts_t *o;    // prompt settings (max_go_terms, go_by_namespace, with_sequence, model_desc)
  const char *mode;          // "offline", "anthropic:MODEL", ...
} interp_service_t;

// Answer reqs[0..n): out[i] (protsae__interpret_result__init'ed here; free its strings and
// predictions with interp_service_result_free). Returns 0, PS_EINTR (stop flag during an LLM
// call), or <0 on a cache error; per-request failures are in out[i].failure.
int interp_service_answer(const interp_service_t *sv, Protsae__InterpretRequest *const *reqs, size_t n,
                          Protsae__InterpretResult *out, ps_err_t *err);
void interp_service_result_free(Protsae__InterpretResult *r);

#endif
