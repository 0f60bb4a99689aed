// reader.c — the embedding dataset: records from a source, checked against the FASTA, split by
// id, cut into batches at resumable positions; the position state file. See reader.h.
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fasta.h"
#include "hash.h"
#include "log.h"
#include "strmap.h"

struct reader {
  reader_opts_t o;
  strmap_t *fasta;          // id -> sequence length
  strmap_t *skip;           // ids left out (skip_ids), or NULL
  char **fasta_ids;         // FASTA order (fallback ids for id-less formats)
  size_t n_fasta;
  emb_source_t *src, *tgt;
  reader_pos_t pos;
  int opened_epoch;         // epoch the sources are open for, -1 none
  reader_counts_t counts;
  // pending record carried over when it did not fit the previous batch
  int have_pending;
  // batch buffers
  reader_batch_t b;
  size_t cap_rows, cap_prot, cap_ids_alloc;
  int64_t per_epoch;
  esm2_model_t *esm2;       // native ESM2 mode (borrowed when esm2_borrowed)
  int esm2_borrowed;
};

int reader_is_validation(const char *id, uint64_t seed, double val_fraction) {
  return ps_id_in_fraction(id, seed, val_fraction);
}

static int load_fasta(reader_t *r, ps_err_t *err) {
  fasta_reader_t *f = NULL;
  int rc = fasta_open(&f, r->o.fasta_path, err);
  if (rc < 0) return rc;
  r->fasta = strmap_new(1 << 14);
  size_t cap = 0;
  fasta_record_t rec;
  while ((rc = fasta_next(f, &rec, err)) > 0) {
    if (!(r->skip && strmap_get(r->skip, rec.id, NULL)) && !strmap_put(r->fasta, rec.id, rec.len)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: duplicate id '%s'", r->o.fasta_path,
                      (unsigned long long)rec.line, rec.id);
      break;
    }
    if (r->n_fasta == cap) {
      cap = cap ? cap * 2 : 1024;
      r->fasta_ids = ps_xrealloc(r->fasta_ids, cap * sizeof(char *));
    }
    r->fasta_ids[r->n_fasta++] = ps_xstrdup(rec.id);
  }
  fasta_close(&f);
  return rc < 0 ? rc : 0;
}

static int open_sources(reader_t *r, ps_err_t *err) {
  emb_source_destroy(&r->src);
  emb_source_destroy(&r->tgt);
  if (r->esm2) {
    esm2_run_opts_t eo = r->o.esm2;
    eo.fasta_path = r->o.fasta_path;
    r->per_epoch = -1;
    return esm2_source_open(&r->src, eo.req.n_layers > 1 ? &r->tgt : NULL, r->esm2, &eo, r->o.src.level,
                            r->o.skip_nonfinite, err);
  }
  emb_source_opts_t so = r->o.src;
  so.allow_nonfinite = r->o.skip_nonfinite;
  if (r->fasta_ids && !so.fallback_ids) {
    so.fallback_ids = (const char *const *)r->fasta_ids;
    so.n_fallback_ids = r->n_fasta;
  }
  int rc = emb_source_open(&r->src, &so, err);
  if (rc < 0) return rc;
  if (r->o.target_path) {
    emb_source_opts_t to = so;
    to.path = r->o.target_path;
    to.format = r->o.target_format;
    to.layer = r->o.target_layer;
    to.ids_path = r->o.target_ids_path ? r->o.target_ids_path : r->o.src.ids_path;  // same proteins, same order
    to.offsets_path = NULL;
    if ((rc = emb_source_open(&r->tgt, &to, err)) < 0) return rc;
  }
  r->per_epoch = emb_source_count(r->src);
  return 0;
}

int reader_new(reader_t **out, const reader_opts_t *opts, ps_err_t *err) {
  *out = NULL;
  reader_t *r = ps_xcalloc(1, sizeof *r);
  r->o = *opts;
  if (!r->o.batch_rows) r->o.batch_rows = 1024;
  if (!r->o.epochs) r->o.epochs = 1;
  r->opened_epoch = -1;
  int rc = 0;
  if (r->o.val_fraction < 0 || r->o.val_fraction > 1) {
    rc = ps_err_set(err, PS_ECONFIG, "validation fraction %g is outside [0, 1]", r->o.val_fraction);
    goto fail;
  }
  if (r->o.n_skip_ids) {
    r->skip = strmap_new(r->o.n_skip_ids);
    for (size_t i = 0; i < r->o.n_skip_ids; i++) strmap_put(r->skip, r->o.skip_ids[i], i);
  }
  r->o.skip_ids = NULL;  // borrowed only during reader_new
  if (r->o.esm2_dir) {
    if (!r->o.fasta_path) {
      rc = ps_err_set(err, PS_ECONFIG, "native ESM2 needs a FASTA");
      goto fail;
    }
    if (r->o.esm2_model) {
      r->esm2 = (esm2_model_t *)r->o.esm2_model;
      r->esm2_borrowed = 1;
    } else if ((rc = esm2_load(&r->esm2, r->o.esm2_dir, err)) < 0) goto fail;
    // our own copy of the layer list (the runner copies it too, per epoch)
    int *lay = NULL, nl = 0;
    const int *given = r->o.esm2.req.layers;
    r->o.esm2.req.layers = NULL;  // owned by the reader from here (freed in reader_destroy)
    if (r->o.esm2_layers) {
      if ((rc = esm2_parse_layers(r->o.esm2_layers, esm2_config(r->esm2)->n_layers, &lay, &nl, err)) < 0) goto fail;
    } else {
      nl = r->o.esm2.req.n_layers;
      lay = ps_xmalloc((size_t)(nl > 0 ? nl : 1) * sizeof(int));
      if (nl > 0) memcpy(lay, given, (size_t)nl * sizeof(int));
    }
    r->o.esm2.req.layers = lay;
    r->o.esm2.req.n_layers = nl;
    if (nl < 1 || nl > 2) {
      rc = ps_err_set(err, PS_ECONFIG, "native ESM2: give one layer, or two (input and target), not %d", nl);
      goto fail;
    }
  } else if (r->o.fasta_path && (rc = load_fasta(r, err)) < 0) goto fail;
  if ((rc = open_sources(r, err)) < 0) goto fail;
  r->opened_epoch = 0;
  *out = r;
  return 0;
fail:
  reader_destroy(&r);
  return rc;
}

void reader_destroy(reader_t **rp) {
  if (!rp || !*rp) return;
  reader_t *r = *rp;
  emb_source_destroy(&r->src);
  emb_source_destroy(&r->tgt);
  if (r->esm2) free((void *)r->o.esm2.req.layers);
  if (!r->esm2_borrowed) esm2_destroy(&r->esm2);
  strmap_destroy(&r->fasta);
  strmap_destroy(&r->skip);
  for (size_t i = 0; i < r->n_fasta; i++) free(r->fasta_ids[i]);
  free(r->fasta_ids);
  for (size_t i = 0; i < r->cap_ids_alloc; i++) free(r->b.ids[i]);
  free(r->b.ids);
  free(r->b.is_val);
  free(r->b.src_index);
  free(r->b.rows);
  free(r->b.target);
  free(r->b.offsets);
  free(r);
  *rp = NULL;
}

int reader_seek(reader_t *r, const reader_pos_t *pos, ps_err_t *err) {
  if (pos->epoch >= r->o.epochs) {
    r->pos = *pos;  // nothing left
    return 0;
  }
  int rc;
  if ((rc = open_sources(r, err)) < 0) return rc;
  r->opened_epoch = (int)pos->epoch;
  if (pos->record && (rc = emb_source_skip(r->src, pos->record, err)) < 0) return rc;
  if (r->tgt && pos->record && (rc = emb_source_skip(r->tgt, pos->record, err)) < 0) return rc;
  r->pos = *pos;
  return 0;
}

const reader_counts_t *reader_counts(const reader_t *r) { return &r->counts; }
int reader_esm2_layer(const reader_t *r) { return r->esm2 ? r->o.esm2.req.layers[0] : -1; }
int64_t reader_records_per_epoch(const reader_t *r) { return r->per_epoch; }
uint64_t reader_esm2_tokens(const reader_t *r) { return r->esm2 && r->src ? esm2_source_tokens(r->src) : 0; }

// Grow the batch buffers to hold `rows` rows and `prot` proteins. Row capacity follows the rows
// actually read (doubling, at most batch_rows unless one record needs more), never a guess: a
// 4-row file of a huge dimension costs 4 rows, not batch_rows of them.
static void ensure(reader_t *r, uint32_t rows, uint32_t prot, uint32_t dim, uint32_t tdim) {
  if (rows > r->cap_rows) {
    size_t c = r->cap_rows ? r->cap_rows * 2 : rows;
    while (c < rows) c *= 2;
    if (c > r->o.batch_rows && rows <= r->o.batch_rows) c = r->o.batch_rows;
    r->b.rows = ps_xrealloc(r->b.rows, c * dim * sizeof(float));
    if (tdim) r->b.target = ps_xrealloc(r->b.target, c * tdim * sizeof(float));
    r->cap_rows = c;
  }
  if (prot > r->cap_prot) {
    size_t c = r->cap_prot ? r->cap_prot : 256;
    while (c < prot) c *= 2;
    r->b.ids = ps_xrealloc(r->b.ids, c * sizeof(char *));
    for (size_t i = r->cap_ids_alloc; i < c; i++) r->b.ids[i] = NULL;
    r->cap_ids_alloc = c;
    r->b.is_val = ps_xrealloc(r->b.is_val, c);
    r->b.src_index = ps_xrealloc(r->b.src_index, c * sizeof(uint64_t));
    r->b.offsets = ps_xrealloc(r->b.offsets, (c + 1) * sizeof(uint32_t));
    r->cap_prot = c;
  }
}

static void set_id(reader_batch_t *b, uint32_t i, const char *id) {
  size_t n = strlen(id) + 1;
  b->ids[i] = ps_xrealloc(b->ids[i], n);
  memcpy(b->ids[i], id, n);
}

// Read the next usable record (after split filter / nonfinite skip). 1, 0 at end of epoch, <0.
static int next_record(reader_t *r, emb_record_t *rec, emb_record_t *trec, int *is_val, ps_err_t *err) {
  for (;;) {
    if (r->o.max_records && r->pos.record >= r->o.max_records) return 0;
    int rc = emb_source_next(r->src, rec, err);
    if (rc <= 0) {
      if (rc == 0 && r->tgt) {
        emb_record_t t;
        int trc = emb_source_next(r->tgt, &t, err);
        if (trc > 0)
          return ps_err_set(err, PS_EMISMATCH, "%s has more records than %s (record %llu, id %s)",
                            r->o.target_path, r->o.src.path, (unsigned long long)t.index, t.id);
        if (trc < 0) return trc;
      }
      return rc;
    }
    if (r->tgt) {
      rc = emb_source_next(r->tgt, trec, err);
      if (rc < 0) return rc;
      if (rc == 0)
        return ps_err_set(err, PS_EMISMATCH, "%s ends at record %llu but %s goes on (id %s)", r->o.target_path,
                          (unsigned long long)rec->index, r->o.src.path, rec->id);
      if (strcmp(rec->id, trec->id) || rec->n_rows != trec->n_rows)
        return ps_err_set(err, PS_EMISMATCH,
                          "record %llu: %s has id %s with %u rows but target %s has id %s with %u rows",
                          (unsigned long long)rec->index, r->o.src.path, rec->id, rec->n_rows, r->o.target_path,
                          trec->id, trec->n_rows);
    }
    r->pos.record++;
    if (r->skip && strmap_get(r->skip, rec->id, NULL)) {
      r->counts.skipped_ids++;
      continue;
    }
    if (r->fasta) {
      uint64_t len;
      if (!strmap_get(r->fasta, rec->id, &len))
        return ps_err_set(err, PS_EMISMATCH, "%s: record %llu: id '%s' is not in %s", r->o.src.path,
                          (unsigned long long)rec->index, rec->id, r->o.fasta_path);
      if (r->o.src.level == EMB_LEVEL_RESIDUE && len != rec->n_rows)
        return ps_err_set(err, PS_EMISMATCH,
                          "%s: record %llu (id %s): %u residue rows but the sequence in %s has %llu residues",
                          r->o.src.path, (unsigned long long)rec->index, rec->id, rec->n_rows, r->o.fasta_path,
                          (unsigned long long)len);
    }
    if (r->o.skip_nonfinite) {
      ps_err_t e2;
      if (emb_check_finite(r->o.src.path, rec, &e2) < 0 || (r->tgt && emb_check_finite(r->o.target_path, trec, &e2) < 0)) {
        if (r->counts.skipped_nonfinite++ < 10) PS_WARN("skipping record: %s", e2.msg);
        continue;
      }
    }
    *is_val = reader_is_validation(rec->id, r->o.seed, r->o.val_fraction);
    if ((r->o.split == READER_SPLIT_TRAIN && *is_val) || (r->o.split == READER_SPLIT_VAL && !*is_val)) {
      r->counts.skipped_split++;
      continue;
    }
    return 1;
  }
}

int reader_next_batch(reader_t *r, reader_batch_t *out, ps_err_t *err) {
  reader_batch_t *b = &r->b;
  for (;;) {
    if (r->pos.epoch >= r->o.epochs) return 0;
    if (r->opened_epoch != (int)r->pos.epoch) {
      int rc = open_sources(r, err);
      if (rc < 0) return rc;
      r->opened_epoch = (int)r->pos.epoch;
    }
    b->n_proteins = 0;
    b->n_rows = 0;
    b->epoch = r->pos.epoch;
    b->first_record = r->pos.record;
    b->seq = r->pos.seq;
    // A batch closes as soon as it holds >= batch_rows rows (no look-ahead, so boundaries
    // depend only on the data): exactly batch_rows at protein level; at residue level it may
    // exceed batch_rows by less than one protein.
    int rc = 0;
    for (;;) {
      if (b->n_rows >= r->o.batch_rows) break;
      emb_record_t rec, trec;
      int is_val = 0;
      uint64_t before = r->pos.record;
      rc = next_record(r, &rec, &trec, &is_val, err);
      if (rc < 0) return rc;
      if (rc == 0) break;
      if (b->n_proteins == 0) {
        b->dim = rec.dim;
        b->target_dim = r->tgt ? trec.dim : 0;
        b->first_record = before;
      } else if (rec.dim != b->dim) {
        return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): dimension %u, earlier records have %u",
                          r->o.src.path, (unsigned long long)rec.index, rec.id, rec.dim, b->dim);
      } else if (r->tgt && trec.dim != b->target_dim) {
        return ps_err_set(err, PS_EDIM, "%s: record %llu (id %s): target dimension %u, earlier records have %u",
                          r->o.target_path, (unsigned long long)rec.index, rec.id, trec.dim, b->target_dim);
      }
      ensure(r, b->n_rows + rec.n_rows, b->n_proteins + 1, b->dim, b->target_dim);
      b->offsets[0] = 0;
      memcpy(b->rows + (size_t)b->n_rows * b->dim, rec.rows, (size_t)rec.n_rows * rec.dim * sizeof(float));
      if (r->tgt)
        memcpy(b->target + (size_t)b->n_rows * b->target_dim, trec.rows,
               (size_t)trec.n_rows * trec.dim * sizeof(float));
      set_id(b, b->n_proteins, rec.id);
      b->is_val[b->n_proteins] = (uint8_t)is_val;
      b->src_index[b->n_proteins] = rec.src_index;
      b->n_rows += rec.n_rows;
      b->n_proteins++;
      b->offsets[b->n_proteins] = b->n_rows;
      r->counts.records++;
    }
    if (b->n_proteins == 0) {  // epoch finished
      r->pos.epoch++;
      r->pos.record = 0;
      continue;
    }
    r->pos.seq++;
    r->counts.rows += b->n_rows;
    r->counts.batches++;
    b->next = r->pos;
    *out = *b;
    return 1;
  }
}

int reader_pos_save(const char *path, const reader_pos_t *pos, ps_err_t *err) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return ps_err_set(err, -errno, "%s: %s", tmp, strerror(errno));
  fprintf(f, "%u %llu %llu\n", pos->epoch, (unsigned long long)pos->record, (unsigned long long)pos->seq);
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
    int e = errno;
    fclose(f);
    return ps_err_set(err, -e, "%s: %s", tmp, strerror(e));
  }
  fclose(f);
  if (rename(tmp, path) != 0) return ps_err_set(err, -errno, "rename %s: %s", path, strerror(errno));
  return 0;
}

int reader_pos_load(const char *path, reader_pos_t *pos, ps_err_t *err) {
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT) return 0;
    return ps_err_set(err, -errno, "%s: %s", path, strerror(errno));
  }
  unsigned ep;
  unsigned long long rec, seq;
  int n = fscanf(f, "%u %llu %llu", &ep, &rec, &seq);
  fclose(f);
  if (n != 3) return ps_err_set(err, PS_EFORMAT, "%s: line 1: expected 'epoch record seq'", path);
  pos->epoch = ep;
  pos->record = rec;
  pos->seq = seq;
  return 1;
}
