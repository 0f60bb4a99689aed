// annstore.h — the annotation service's results: one record per proteome key K = "NAME.HASH"
// (issue 17: HASH = 16 hex digits of the FNV-1a of the proteome's input bytes), in RocksDB (the
// annotation sink's --state directory). Written by protsae-annotator, the only writer; read by
// `protsae status` and the demo (open read-only; works while the sink runs, and sees the
// commits made before the open).
//
// Column families:
//   default  "res/" K -> the proteome's result (JSON object: the fields of as_result_t)
//   stage    the sink's private staging of proteomes in flight. Keys and values are the sink's
//            (stages/annotator/stage.c); this API stores, reads, iterates and deletes them in the
//            same write batches as the results, so a result and the removal of its staging are one
//            atomic commit.
#ifndef PS_ANNSTORE_H
#define PS_ANNSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef enum { AS_STATUS_DONE = 1, AS_STATUS_FAILED = 2 } as_status_t;
#define AS_N_FM 4  // evaluation figures: all namespaces, BP, MF, CC (annot.h's order)

typedef struct as_result {
  char *key;              // "NAME.HASH" (owned, like every string here)
  char *name;             // NAME
  as_status_t status;
  char *producer;         // the reader that streamed it
  int64_t proteins;       // written (done) / staged (failed)
  int64_t skipped;        // bad records the reader skipped (its EndOfStream)
  int64_t with_go;        // proteins with >= 1 GO term written
  int64_t residues;       // residues of the proteins (the reader's count)
  double mean_active;     // mean active features a protein
  char *error;            // "" when done
  char *tsv, *jsonl, *eval_txt;  // output files written ("" when none)
  int evaluated;          // 1: the figures below are set
  int64_t n_evaluated;    // proteins with >= 1 true annotation
  double fmax[AS_N_FM], threshold[AS_N_FM], naive[AS_N_FM];
  double t_first, t_done; // wall clock (s since the epoch): first piece staged, result committed
} as_result_t;

void as_result_free(as_result_t *r);
const char *as_status_name(as_status_t s);  // "done" / "failed"

typedef struct as as_t;
typedef struct as_wb as_wb_t;

enum { AS_OPEN_READONLY = 0, AS_OPEN_CREATE = 1 };
// Open the store at path (AS_OPEN_CREATE: created when missing). Errors name the path.
int as_open(as_t **out, const char *path, int mode, ps_err_t *err);
void as_close(as_t **as);
const char *as_path(const as_t *as);

// 1 and *r (caller frees with as_result_free) when K has a result, 0 when not, <0.
int as_result_get(as_t *as, const char *key, as_result_t *r, ps_err_t *err);
// Every result in key order; r is valid during the call only. cb returns 0 to go on, != 0 stops
// (returned when < 0).
int as_result_each(as_t *as, int (*cb)(const as_result_t *r, void *ctx), void *ctx, ps_err_t *err);

// Write batches: collect, then commit atomically (sync: fsync the WAL).
as_wb_t *as_wb_new(void);
void as_wb_free(as_wb_t **wb);
void as_wb_clear(as_wb_t *wb);
void as_wb_put_result(as_t *as, as_wb_t *wb, const as_result_t *r);
void as_wb_put_stage(as_t *as, as_wb_t *wb, const void *key, size_t klen, const void *val, size_t vlen);
void as_wb_del_stage(as_t *as, as_wb_t *wb, const void *key, size_t klen);
// Every staging key in [begin, end) (byte order).
void as_wb_del_stage_range(as_t *as, as_wb_t *wb, const void *begin, size_t blen, const void *end, size_t elen);
int as_commit(as_t *as, as_wb_t *wb, int sync, ps_err_t *err);

// Staging reads. 1 and *val (malloc'ed, caller frees; *vlen its size) when present, 0 when absent.
int as_stage_get(as_t *as, const void *key, size_t klen, char **val, size_t *vlen, ps_err_t *err);
// Every staging entry whose key starts with prefix (plen 0: all), in key order; k and v valid
// during the call. cb returns 0 to go on, > 0 stops (0 returned), < 0 stops (returned).
int as_stage_each(as_t *as, const void *prefix, size_t plen,
                  int (*cb)(const char *k, size_t kl, const char *v, size_t vl, void *ctx, ps_err_t *err), void *ctx,
                  ps_err_t *err);

#endif
