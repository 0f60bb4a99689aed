// synth_out.h — internal to protsae synth: the embedding sinks, one per output format.
//
// A run opens the protein-level sinks (emb.npy, emb.f16.npy, emb.safetensors, emb.h5, pt/),
// feeds them one protein vector at a time in protein order and closes them; the same for the
// residue level (residues.npy + residues.offsets.npy, residues.safetensors, residues.h5,
// residues_pt/). Memory is bounded by one record. Every file goes to "NAME.tmp" and is fsynced
// and renamed on success (synth_out_commit); synth_out_abort removes what is half written.
#ifndef PS_SYNTH_OUT_H
#define PS_SYNTH_OUT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "synth.h"

typedef struct synth_sinks synth_sinks_t;  // private to synth_out.c

typedef struct synth_out {
  char dir[PATH_MAX];
  const synth_plan_t *plan;  // borrowed
  uint32_t n_files;          // committed files
  uint64_t bytes;            // their sizes
  synth_sinks_t *protein;    // open protein-level sinks, or NULL
  synth_sinks_t *residue;    // open residue-level sinks, or NULL
} synth_out_t;

int synth_out_protein_begin(synth_out_t *c, ps_err_t *err);
int synth_out_protein_add(synth_out_t *c, size_t protein, const float *x, ps_err_t *err);
int synth_out_protein_end(synth_out_t *c, ps_err_t *err);

int synth_out_residue_begin(synth_out_t *c, ps_err_t *err);
int synth_out_residue_add(synth_out_t *c, size_t protein, const float *rows, uint32_t n_rows, ps_err_t *err);
int synth_out_residue_end(synth_out_t *c, ps_err_t *err);

// A float32 rows x cols matrix as one .npy file (dir-relative name).
int synth_out_matrix(synth_out_t *c, const char *rel, const float *m, size_t rows, size_t cols, ps_err_t *err);
// Close and remove whatever sink is still open.
void synth_out_abort(synth_out_t *c);

// helpers shared by synth_write.c and synth_out.c
int synth_out_mkdir(const char *path, ps_err_t *err);
void synth_out_path(const synth_out_t *c, const char *rel, char *buf, size_t cap);
void synth_out_tmp(const char *final, char *buf, size_t cap);
// fsync tmp, rename it to final, count it. Removes tmp on failure.
int synth_out_commit(synth_out_t *c, const char *tmp, const char *final, ps_err_t *err);

#endif
