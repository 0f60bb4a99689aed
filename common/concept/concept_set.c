// concept_set.c — the annotation set (proteins, interned concept names, annotations grouped by
// protein), the feature-type tables, concept naming and the loader that tells a flat file from a
// TSV by its first non-blank line. See concept.h.
#include "concept.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct concept_set {
  strmap_t *prot_by_id;        // accession or alias -> protein index
  char **prot_ids;             // accession of each protein
  size_t n_prot, cap_prot;
  strmap_t *concept_by_name;
  char **names;
  size_t n_concepts, cap_concepts;
  concept_ann_t *anns;         // in add order until grouped
  size_t n_anns, cap_anns;
  uint64_t *off;               // grouped: anns of protein p are [off[p], off[p+1])
  uint32_t *count;             // per concept, over the set (grouped)
  int grouped;
};

concept_set_t *concept_set_new(void) {
  concept_set_t *s = ps_xcalloc(1, sizeof *s);
  s->prot_by_id = strmap_new(1024);
  s->concept_by_name = strmap_new(256);
  return s;
}

void concept_set_destroy(concept_set_t **sp) {
  concept_set_t *s = *sp;
  if (!s) return;
  strmap_destroy(&s->prot_by_id);
  strmap_destroy(&s->concept_by_name);
  for (size_t i = 0; i < s->n_prot; i++) free(s->prot_ids[i]);
  for (size_t i = 0; i < s->n_concepts; i++) free(s->names[i]);
  free(s->prot_ids);
  free(s->names);
  free(s->anns);
  free(s->off);
  free(s->count);
  free(s);
  *sp = NULL;
}

static uint32_t intern_protein(concept_set_t *s, const char *acc, const char *alias) {
  uint64_t v;
  if (!strmap_get(s->prot_by_id, acc, &v)) {
    if (s->n_prot == s->cap_prot) {
      s->cap_prot = s->cap_prot ? 2 * s->cap_prot : 256;
      s->prot_ids = ps_xrealloc(s->prot_ids, s->cap_prot * sizeof *s->prot_ids);
    }
    s->prot_ids[s->n_prot] = ps_xstrdup(acc);
    v = s->n_prot++;
    strmap_put(s->prot_by_id, acc, v);
  }
  uint64_t w;
  if (alias && alias[0] && !strmap_get(s->prot_by_id, alias, &w)) strmap_put(s->prot_by_id, alias, v);
  return (uint32_t)v;
}

static uint32_t intern_concept(concept_set_t *s, const char *name) {
  uint64_t v;
  if (strmap_get(s->concept_by_name, name, &v)) return (uint32_t)v;
  if (s->n_concepts == s->cap_concepts) {
    s->cap_concepts = s->cap_concepts ? 2 * s->cap_concepts : 64;
    s->names = ps_xrealloc(s->names, s->cap_concepts * sizeof *s->names);
  }
  s->names[s->n_concepts] = ps_xstrdup(name);
  strmap_put(s->concept_by_name, name, s->n_concepts);
  return (uint32_t)s->n_concepts++;
}

void concept_set_add(concept_set_t *s, const char *acc, const char *alias, const char *concept, uint32_t a,
                     uint32_t b, int pair) {
  PS_ASSERT(a >= 1 && b >= 1 && (pair || a <= b));
  if (s->n_anns == s->cap_anns) {
    s->cap_anns = s->cap_anns ? 2 * s->cap_anns : 1024;
    s->anns = ps_xrealloc(s->anns, s->cap_anns * sizeof *s->anns);
  }
  if (pair && a > b) {
    uint32_t t = a;
    a = b, b = t;
  }
  s->anns[s->n_anns++] = (concept_ann_t){intern_protein(s, acc, alias), intern_concept(s, concept), a - 1, b - 1,
                                         pair && a != b};
  s->grouped = 0;
}

// Annotations grouped by protein (stable: file order within a protein), per-concept counts.
static void group(concept_set_t *s) {
  if (s->grouped) return;
  free(s->off);
  free(s->count);
  s->off = ps_xcalloc(s->n_prot + 1, sizeof *s->off);
  s->count = ps_xcalloc(s->n_concepts ? s->n_concepts : 1, sizeof *s->count);
  for (size_t i = 0; i < s->n_anns; i++) s->off[s->anns[i].prot + 1]++, s->count[s->anns[i].concept]++;
  for (size_t p = 0; p < s->n_prot; p++) s->off[p + 1] += s->off[p];
  concept_ann_t *g = ps_xmalloc((s->n_anns ? s->n_anns : 1) * sizeof *g);
  uint64_t *fill = ps_xmalloc((s->n_prot + 1) * sizeof *fill);
  memcpy(fill, s->off, (s->n_prot + 1) * sizeof *fill);
  for (size_t i = 0; i < s->n_anns; i++) g[fill[s->anns[i].prot]++] = s->anns[i];
  free(fill);
  free(s->anns);
  s->anns = g;
  s->cap_anns = s->n_anns ? s->n_anns : 1;
  s->grouped = 1;
}

size_t concept_set_n_concepts(const concept_set_t *s) { return s->n_concepts; }
size_t concept_set_n_proteins(const concept_set_t *s) { return s->n_prot; }
size_t concept_set_n_annotations(const concept_set_t *s) { return s->n_anns; }
const char *concept_set_name(const concept_set_t *s, uint32_t c) { return c < s->n_concepts ? s->names[c] : NULL; }
const char *concept_set_protein_id(const concept_set_t *s, uint32_t p) { return p < s->n_prot ? s->prot_ids[p] : NULL; }

int concept_set_find(const concept_set_t *s, const char *id, uint32_t *prot) {
  uint64_t v;
  if (!strmap_get(s->prot_by_id, id, &v)) return 0;
  *prot = (uint32_t)v;
  return 1;
}

const concept_ann_t *concept_set_anns(concept_set_t *s, uint32_t prot, size_t *n) {
  group(s);
  *n = prot < s->n_prot ? (size_t)(s->off[prot + 1] - s->off[prot]) : 0;
  return *n ? s->anns + s->off[prot] : NULL;
}

uint32_t concept_set_count(concept_set_t *s, uint32_t concept) {
  group(s);
  return concept < s->n_concepts ? s->count[concept] : 0;
}

// ---- feature types ----------------------------------------------------------------------------------
static const char *const kept_types[] = {
    "DOMAIN", "BINDING", "ACT_SITE", "MOD_RES", "TRANSMEM", "MOTIF", "ZN_FING", "DISULFID", "SIGNAL", "REGION",
    "REPEAT", "COMPBIAS", "SITE", "TOPO_DOM", "HELIX", "STRAND", "TURN", "LIPID", "CARBOHYD", "CROSSLNK",
    "INTRAMEM", "TRANSIT", "PROPEP", "COILED", "DNA_BIND", "NP_BIND", "METAL", "CA_BIND", NULL,
};
static const char *const family_types[] = {"DOMAIN", "MOTIF", "ZN_FING", "REPEAT", "REGION", NULL};
static const char *const residue_level[] = {"ACT_SITE", "MOD_RES", "CARBOHYD", "DISULFID", NULL};

static int in_list(const char *const *l, const char *t) {
  for (; *l; l++)
    if (!strcmp(*l, t)) return 1;
  return 0;
}
int concept_type_kept(const char *type) { return in_list(kept_types, type); }
int concept_type_family(const char *type) { return in_list(family_types, type); }
int concept_type_pair(const char *type) { return !strcmp(type, "DISULFID") || !strcmp(type, "CROSSLNK"); }

int concept_is_residue_level(const char *name) {
  char t[32];
  size_t n = strcspn(name, ":");
  if (n >= sizeof t) return 0;
  memcpy(t, name, n);
  t[n] = 0;
  return in_list(residue_level, t);
}

void concept_name(const char *type, const char *note, char *out, size_t cap) {
  if (!concept_type_family(type) || !note) {
    snprintf(out, cap, "%s", type);
    return;
  }
  size_t n = strcspn(note, ";(");
  while (n && (isspace((unsigned char)note[n - 1]) || note[n - 1] == '.')) n--;
  size_t d = n;  // an instance number: "WD 3", "SH3 2"
  while (d && isdigit((unsigned char)note[d - 1])) d--;
  if (d == 0) n = 0;  // a bare number ("1", pre-2019 repeats): no family
  else if (d < n && note[d - 1] == ' ') {
    n = d - 1;
    while (n && isspace((unsigned char)note[n - 1])) n--;
  }
  if (!n) {
    snprintf(out, cap, "%s", type);
    return;
  }
  snprintf(out, cap, "%s:%.*s", type, (int)n, note);
}

// ---- loading ----------------------------------------------------------------------------------------
int concept_set_load(concept_set_t *s, const char *path, concept_load_stats_t *st, ps_err_t *err) {
  concept_load_stats_t local = {0};
  if (!st) st = &local;
  ps_lines_t *r = NULL;
  int rc = ps_lines_open(&r, path, 1 << 20, err);
  if (rc < 0) return rc;
  // the kind from the first non-blank line: read it on a second reader, then parse from the start
  ps_lines_t *peek = NULL;
  if ((rc = ps_lines_open(&peek, path, 1 << 20, err)) < 0) {
    ps_lines_close(&r);
    return rc;
  }
  char *line;
  size_t len;
  int flat = -1;
  while ((rc = ps_lines_next(peek, &line, &len, err)) == 1) {
    size_t i = 0;
    while (i < len && isspace((unsigned char)line[i])) i++;
    if (i == len) continue;
    flat = len >= 5 && !memcmp(line, "ID   ", 5);
    break;
  }
  ps_lines_close(&peek);
  if (rc < 0) {
    ps_lines_close(&r);
    return rc;
  }
  if (flat < 0) rc = ps_err_set(err, PS_EFORMAT, "%s: no annotations (an empty file)", path);
  else rc = flat ? concept_flat_read(s, r, st, err) : concept_tsv_read(s, r, st, err);
  ps_lines_close(&r);
  return rc;
}
