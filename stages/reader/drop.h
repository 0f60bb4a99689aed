// drop.h — the annotation service's drop directory: the queue of proteomes waiting (reader
// service mode, service.h).
//
// A proteome NAME is NAME.fasta (or .fa, .fasta.gz, .fa.gz), optionally with precomputed
// embeddings NAME.npy (or NAME.safetensors / NAME.h5; a per-residue NAME.npy with
// NAME.offsets.npy is mean-pooled) and their ids NAME.ids (one per line; else the FASTA order).
// It is taken when NAME.ready exists or its files have not changed for the settle time. Files
// whose names start with '.' are ignored (copy to .NAME.fasta, then rename). Retired inputs move
// to DIR/done/ (annotated, or already annotated) or DIR/failed/ (with NAME.error).
// The ledger (a directory of empty-named files, one per proteome key, written atomically) holds
// the keys the sink has acknowledged: a key in it is never streamed again.
#ifndef PS_DROP_H
#define PS_DROP_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct drop_item {
  char name[256];
  char fasta[PATH_MAX], emb[PATH_MAX], ids[PATH_MAX], offsets[PATH_MAX], ready[PATH_MAX];
  int has_fasta, has_emb, has_ids, has_offsets, has_ready;
  double age_s;   // age of its youngest file, seconds
} drop_item_t;

// The proteomes in dir (one item per NAME, sorted by name). Caller frees *items. 0 or <0.
int drop_list(const char *dir, drop_item_t **items, size_t *n, ps_err_t *err);
// 64-bit FNV-1a over the input files' bytes (FASTA, embeddings, ids, offsets; a separator after
// each): the content part of the proteome key. Errors name the file.
int drop_hash(const drop_item_t *p, uint64_t *h, ps_err_t *err);
// key = "NAME.HASH" (16 hex digits).
void drop_key(const drop_item_t *p, uint64_t h, char *key, size_t cap);
// Move the proteome's files to dir/sub/ (created); problems are logged.
void drop_move(const char *dir, const drop_item_t *p, const char *sub);
// Move to dir/failed/ and write failed/NAME.error with msg.
void drop_fail(const char *dir, const drop_item_t *p, const char *msg);

int drop_ledger_has(const char *ledger, const char *key);
// text is the entry's content (name, inputs, counts). 0 or <0 naming the path.
int drop_ledger_put(const char *ledger, const char *key, const char *text, ps_err_t *err);

// A valid proteome name: [A-Za-z0-9_.+-]{1,128}, not starting with '.'.
int drop_name_ok(const char *name);
// Write bytes as dir/NAME.fasta (NAME.fasta.gz when they start with the gzip magic) and
// dir/NAME.ready, atomically (hidden temporary, fsync, rename). 0 or <0 naming the path.
int drop_put_bytes(const char *dir, const char *name, const void *bytes, size_t n, ps_err_t *err);
// Copy the FASTA at path (and precomputed embeddings, ids and offsets beside it, named by its
// stem as in the drop convention) into dir as NAME.*, then NAME.ready. 0 or <0 naming the path.
int drop_put_path(const char *dir, const char *name, const char *path, ps_err_t *err);

#endif
