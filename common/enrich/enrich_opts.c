// enrich_opts.c — the enrichment's options: defaults, their names (parse and print, one table per
// option), the check the engine runs, and the options as configuration keys (the scorer, demo/run,
// `protsae enrich` and `protsae enrich-store` read the same keys through enrich_opts_config).
// See enrich.h.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "enrich_priv.h"

void enrich_opts_default(enrich_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->min_size = 5;
  o->act_frac = 0;
  o->alternative = ENRICH_GREATER;
  o->correction = ENRICH_BONFERRONI;
  o->alpha = 0.05;
  o->max_hits = 0;
  static const double f1[] = {0, 0.15, 0.5, 0.6, 0.8};
  o->n_f1 = 5;
  memcpy(o->f1_thresholds, f1, sizeof f1);
  o->population = ENRICH_POP_ANNOTATED;
  o->scope = ENRICH_SCOPE_ALL;
  o->depth = ENRICH_DEPTH_RELATIONS;
}

// ---- names ---------------------------------------------------------------------------------------
typedef struct named {
  const char *name;
  int value;
} named_t;

// The first name of a value is the one printed; later ones are accepted aliases.
static const named_t alt_names[] = {{"greater", ENRICH_GREATER}, {"two-sided", ENRICH_TWO_SIDED}, {"less", ENRICH_LESS},
                                    {NULL, 0}};
static const named_t corr_names[] = {{"fdr", ENRICH_FDR_BH}, {"bh", ENRICH_FDR_BH}, {"bonferroni", ENRICH_BONFERRONI},
                                     {NULL, 0}};
static const named_t pop_names[] = {{"annotated", ENRICH_POP_ANNOTATED}, {"analysed", ENRICH_POP_ANALYSED},
                                    {"analyzed", ENRICH_POP_ANALYSED}, {NULL, 0}};
static const named_t scope_names[] = {{"all", ENRICH_SCOPE_ALL}, {"namespace", ENRICH_SCOPE_NAMESPACE}, {NULL, 0}};
static const named_t depth_names[] = {{"relations", ENRICH_DEPTH_RELATIONS}, {"is_a", ENRICH_DEPTH_IS_A}, {NULL, 0}};
static const named_t rels_names[] = {{"is_a+part_of", GO_REL_IS_A | GO_REL_PART_OF}, {"is_a", GO_REL_IS_A}, {NULL, 0}};

static int name_parse(const named_t *t, const char *s, int *out) {
  for (; s && t->name; t++)
    if (!strcmp(s, t->name)) {
      *out = t->value;
      return 0;
    }
  return PS_ECONFIG;
}

static const char *name_of(const named_t *t, int v) {
  for (; t->name; t++)
    if (t->value == v) return t->name;
  return "?";
}

#define PARSER(fn, type, table)                        \
  int fn(const char *s, type *out) {                   \
    int v;                                             \
    if (name_parse(table, s, &v)) return PS_ECONFIG;   \
    *out = (type)v;                                    \
    return 0;                                          \
  }
PARSER(enrich_alt_parse, enrich_alt_t, alt_names)
PARSER(enrich_corr_parse, enrich_corr_t, corr_names)
PARSER(enrich_pop_parse, enrich_pop_t, pop_names)
PARSER(enrich_scope_parse, enrich_scope_t, scope_names)
PARSER(enrich_depth_parse, enrich_depth_t, depth_names)
PARSER(enrich_rels_parse, unsigned, rels_names)
#undef PARSER

const char *enrich_alt_name(enrich_alt_t v) { return name_of(alt_names, (int)v); }
const char *enrich_corr_name(enrich_corr_t v) { return name_of(corr_names, (int)v); }
const char *enrich_pop_name(enrich_pop_t v) { return name_of(pop_names, (int)v); }
const char *enrich_scope_name(enrich_scope_t v) { return name_of(scope_names, (int)v); }
const char *enrich_depth_name(enrich_depth_t v) { return name_of(depth_names, (int)v); }
const char *enrich_rels_name(unsigned rels) { return name_of(rels_names, (int)rels); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int enrich_f1_parse(const char *s, enrich_opts_t *o, ps_err_t *err) {
  double v[ENRICH_MAX_F1];
  uint32_t n = 0;
  const char *p = s;
  while (p && *p) {
    char *end;
    errno = 0;
    double x = strtod(p, &end);
    if (end == p || errno || !(x >= 0 && x < 1))
      return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': value %u is not a number in [0, 1)", s, n + 1);
    if (n == ENRICH_MAX_F1)
      return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': more than %d values", s, ENRICH_MAX_F1);
    v[n++] = x;
    p = end;
    if (*p == ',') p++;
    else if (*p) return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': expected ',' after value %u", s, n);
  }
  if (n == 0) return ps_err_set(err, PS_ECONFIG, "f1 thresholds '%s': no value", s ? s : "");
  qsort(v, n, sizeof *v, cmp_double);
  o->n_f1 = n;
  memcpy(o->f1_thresholds, v, n * sizeof *v);
  return 0;
}

int enrich_opts_check(const enrich_opts_t *o, ps_err_t *err) {
  if (o->min_size < 1) return ps_err_set(err, PS_ECONFIG, "enrich: min_size must be >= 1");
  if (!(o->act_frac >= 0 && o->act_frac < 1))
    return ps_err_set(err, PS_ECONFIG, "enrich: act_frac %g not in [0, 1)", o->act_frac);
  if (!(o->alpha > 0 && o->alpha <= 1)) return ps_err_set(err, PS_ECONFIG, "enrich: alpha %g not in (0, 1]", o->alpha);
  if (o->alternative != ENRICH_GREATER && o->alternative != ENRICH_TWO_SIDED)
    return ps_err_set(err, PS_ECONFIG, "enrich: the engine tests 'greater' or 'two-sided' only");
  if (o->correction != ENRICH_BONFERRONI && o->correction != ENRICH_FDR_BH)
    return ps_err_set(err, PS_ECONFIG, "enrich: unknown correction %d", (int)o->correction);
  if (o->population != ENRICH_POP_ANNOTATED && o->population != ENRICH_POP_ANALYSED)
    return ps_err_set(err, PS_ECONFIG, "enrich: unknown population %d", (int)o->population);
  if (o->scope != ENRICH_SCOPE_ALL && o->scope != ENRICH_SCOPE_NAMESPACE)
    return ps_err_set(err, PS_ECONFIG, "enrich: unknown correction scope %d", (int)o->scope);
  if (o->depth != ENRICH_DEPTH_RELATIONS && o->depth != ENRICH_DEPTH_IS_A)
    return ps_err_set(err, PS_ECONFIG, "enrich: unknown depth rule %d", (int)o->depth);
  if (o->n_f1 < 1 || o->n_f1 > ENRICH_MAX_F1)
    return ps_err_set(err, PS_ECONFIG, "enrich: n_f1 %u not in [1, %d]", o->n_f1, ENRICH_MAX_F1);
  for (uint32_t i = 0; i < o->n_f1; i++) {
    double x = o->f1_thresholds[i];
    if (!(x >= 0 && x < 1)) return ps_err_set(err, PS_ECONFIG, "enrich: f1 threshold %g not in [0, 1)", x);
    if (i && !(x > o->f1_thresholds[i - 1]))
      return ps_err_set(err, PS_ECONFIG, "enrich: f1 thresholds must be strictly ascending");
  }
  return 0;
}

// ---- configuration keys --------------------------------------------------------------------------
const char *const enrich_config_keys[] = {"enrich-population", "enrich-relations", "enrich-correction",
                                          "enrich-correction-scope", "enrich-depth", NULL};

static int key_parse(const ps_config_t *cfg, const char *key, const named_t *t, int *v, ps_err_t *err) {
  const char *s = ps_config_str(cfg, key);
  if (!s || !name_parse(t, s, v)) return 0;
  char opts[160] = "";
  size_t u = 0;
  for (const named_t *x = t; x->name && u < sizeof opts; x++) {
    int dup = 0;  // aliases are not listed
    for (const named_t *y = t; y < x; y++) dup |= y->value == x->value;
    if (!dup) u += (size_t)snprintf(opts + u, sizeof opts - u, "%s%s", u ? " | " : "", x->name);
  }
  return ps_err_set(err, PS_ECONFIG, "--%s '%s': %s", key, s, opts);
}

int enrich_opts_config(const ps_config_t *cfg, enrich_opts_t *o, unsigned *rels, ps_err_t *err) {
  int pop = o->population, corr = o->correction, scope = o->scope, depth = o->depth, r = (int)*rels;
  int rc;
  if ((rc = key_parse(cfg, "enrich-population", pop_names, &pop, err)) ||
      (rc = key_parse(cfg, "enrich-relations", rels_names, &r, err)) ||
      (rc = key_parse(cfg, "enrich-correction", corr_names, &corr, err)) ||
      (rc = key_parse(cfg, "enrich-correction-scope", scope_names, &scope, err)) ||
      (rc = key_parse(cfg, "enrich-depth", depth_names, &depth, err)))
    return rc;
  o->population = (enrich_pop_t)pop;
  o->correction = (enrich_corr_t)corr;
  o->scope = (enrich_scope_t)scope;
  o->depth = (enrich_depth_t)depth;
  *rels = (unsigned)r;
  return 0;
}
