// db.c — see db.h.
#include "db.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fasta.h"
#include "log.h"
#include "godata.h"
#include "proteins_tsv.h"
#include "strmap.h"

typedef struct db_priv {
  strmap_t *acc, *pfam, *stem;
  size_t cap, pfam_cap, stem_cap;
} db_priv_t;

interp_db_t *interp_db_new(void) {
  interp_db_t *db = ps_xcalloc(1, sizeof *db);
  db_priv_t *pv = ps_xcalloc(1, sizeof *pv);
  pv->acc = strmap_new(1024);
  pv->pfam = strmap_new(1024);
  pv->stem = strmap_new(1024);
  db->index = pv;
  return db;
}

void interp_gene_stem(const char *gene, char *out, size_t cap) {
  size_t k = 0;
  out[0] = 0;
  if (!gene) return;
  while (gene[k] && isalpha((unsigned char)gene[k]) && k + 1 < cap) k++;
  if (k < 2 || !gene[k] || !isdigit((unsigned char)gene[k])) {
    out[0] = 0;  // no digit after the letters: the symbol is not a numbered family member
    return;
  }
  for (size_t i = 0; i < k; i++) out[i] = (char)toupper((unsigned char)gene[i]);
  out[k] = 0;
}

static int32_t intern(strmap_t *m, char ***names, size_t *n, size_t *cap, const char *s) {
  uint64_t v;
  if (strmap_get(m, s, &v)) return (int32_t)v;
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 256;
    *names = ps_xrealloc(*names, *cap * sizeof **names);
  }
  (*names)[*n] = ps_xstrdup(s);
  strmap_put(m, s, *n);
  return (int32_t)(*n)++;
}

size_t interp_db_add(interp_db_t *db, const char *acc, const char *gene, const char *name, const char *pfam) {
  db_priv_t *pv = db->index;
  uint64_t v;
  if (strmap_get(pv->acc, acc, &v)) return (size_t)v;
  if (db->n == pv->cap) {
    pv->cap = pv->cap ? pv->cap * 2 : 1024;
    db->p = ps_xrealloc(db->p, pv->cap * sizeof *db->p);
  }
  interp_protein_t *p = &db->p[db->n];
  memset(p, 0, sizeof *p);
  p->accession = ps_xstrdup(acc);
  p->gene = ps_xstrdup(gene ? gene : "");
  p->name = ps_xstrdup(name ? name : "");
  p->stem = -1;
  char st[32];
  interp_gene_stem(p->gene, st, sizeof st);
  if (st[0]) p->stem = intern(pv->stem, &db->stem_names, &db->n_stem_names, &pv->stem_cap, st);
  if (pfam && *pfam) {
    char *tmp = ps_xstrdup(pfam), *save = NULL;
    for (char *t = strtok_r(tmp, ";, ", &save); t; t = strtok_r(NULL, ";, ", &save)) {
      int32_t f = intern(pv->pfam, &db->pfam_names, &db->n_pfam_names, &pv->pfam_cap, t);
      int dup = 0;
      for (uint32_t k = 0; k < p->n_pfam; k++) dup |= p->pfam[k] == f;
      if (dup) continue;
      p->pfam = ps_xrealloc(p->pfam, (p->n_pfam + 1) * sizeof *p->pfam);
      p->pfam[p->n_pfam++] = f;
    }
    free(tmp);
  }
  strmap_put(pv->acc, acc, db->n);
  return db->n++;
}

int64_t interp_db_find(const interp_db_t *db, const char *acc) {
  db_priv_t *pv = db->index;
  uint64_t v;
  return strmap_get(pv->acc, acc, &v) ? (int64_t)v : -1;
}

void interp_db_destroy(interp_db_t **dbp) {
  if (!dbp || !*dbp) return;
  interp_db_t *db = *dbp;
  for (size_t i = 0; i < db->n; i++) {
    interp_protein_t *p = &db->p[i];
    free(p->accession);
    free(p->gene);
    free(p->name);
    free(p->pfam);
    free(p->direct);
    free(p->seq);
  }
  free(db->p);
  for (size_t i = 0; i < db->n_pfam_names; i++) free(db->pfam_names[i]);
  for (size_t i = 0; i < db->n_stem_names; i++) free(db->stem_names[i]);
  free(db->pfam_names);
  free(db->stem_names);
  for (size_t i = 0; i < db->n_pfam_labels; i++) free(db->pfam_labels[i]);
  free(db->pfam_labels);
  db_priv_t *pv = db->index;
  if (pv) {
    strmap_destroy(&pv->acc);
    strmap_destroy(&pv->pfam);
    strmap_destroy(&pv->stem);
    free(pv);
  }
  go_annotations_destroy(&db->annot);
  go_ontology_destroy(&db->go);
  free(db);
  *dbp = NULL;
}

int32_t interp_db_pfam_index(const interp_db_t *db, const char *pf) {
  const db_priv_t *pv = db->index;
  uint64_t v;
  return pv && strmap_get(pv->pfam, pf, &v) ? (int32_t)v : -1;
}

static int add_row(void *ctx, const ps_protein_row_t *row, ps_err_t *err) {
  (void)err;
  interp_db_add(ctx, row->accession, row->gene, row->name, row->pfam);
  return 0;
}

static int load_tsv(interp_db_t *db, const char *path, ps_err_t *err) {
  return ps_proteins_tsv_each(path, add_row, db, err);
}

static const go_ontology_t *sort_go;
static int cmp_depth_desc(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  int32_t dx = go_term(sort_go, x)->depth, dy = go_term(sort_go, y)->depth;
  if (dx != dy) return dy - dx;
  return x < y ? -1 : x > y;
}

int interp_db_load(interp_db_t **out, const char *dir, int with_seq, ps_err_t *err) {
  *out = NULL;
  interp_db_t *db = interp_db_new();
  int rc = 0;
  ps_godata_t gd;
  if ((rc = ps_godata_find(dir, PS_GODATA_NEED_PROTEINS | (with_seq ? PS_GODATA_NEED_FASTA : 0), &gd, err)) < 0) goto fail;
  if ((rc = load_tsv(db, gd.proteins, err)) < 0) goto fail;
  if (gd.obo[0]) {
    if ((rc = go_ontology_load(&db->go, gd.obo, NULL, err)) < 0) goto fail;
    if (gd.annotations[0]) {
      db->annot = go_annotations_new();
      rc = gd.annotations_gaf ? go_annotations_load_gaf(db->annot, db->go, gd.annotations, NULL, NULL, err)
                              : go_annotations_load_tsv(db->annot, db->go, gd.annotations, NULL, NULL, err);
      if (rc < 0) goto fail;
      // direct terms first (copied), then propagate in place
      for (size_t i = 0; i < db->annot->n_proteins; i++) {
        int64_t k = interp_db_find(db, db->annot->protein_ids[i]);
        if (k < 0) k = (int64_t)interp_db_add(db, db->annot->protein_ids[i], NULL, NULL, NULL);
        interp_protein_t *p = &db->p[k];
        p->n_direct = db->annot->n_terms[i];
        p->direct = ps_xmalloc((p->n_direct ? p->n_direct : 1) * sizeof *p->direct);
        memcpy(p->direct, db->annot->terms[i], p->n_direct * sizeof *p->direct);
        sort_go = db->go;
        qsort(p->direct, p->n_direct, sizeof *p->direct, cmp_depth_desc);
      }
      go_annotations_propagate(db->annot, db->go);
      for (size_t i = 0; i < db->annot->n_proteins; i++) {
        int64_t k = interp_db_find(db, db->annot->protein_ids[i]);
        db->p[k].n_prop = db->annot->n_terms[i];
        db->p[k].prop = db->annot->terms[i];
      }
    } else {
      PS_WARN("no go_annotations.tsv(.gz) in %s: prompts carry no GO terms", dir);
    }
  } else {
    PS_WARN("no GO ontology (go-*.obo) in %s: prompts carry no GO terms", dir);
  }
  if (with_seq) {
    fasta_reader_t *r = NULL;
    if ((rc = fasta_open(&r, gd.fasta, err)) < 0) goto fail;
    fasta_record_t rec;
    while ((rc = fasta_next(r, &rec, err)) == 1) {
      int64_t k = interp_db_find(db, rec.id);
      if (k >= 0 && !db->p[k].seq) db->p[k].seq = ps_xstrdup(rec.seq);
    }
    fasta_close(&r);
    if (rc < 0) goto fail;
    rc = 0;
  }
  *out = db;
  return 0;
fail:
  interp_db_destroy(&db);
  return rc;
}
