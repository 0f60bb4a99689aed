// protocol.c — see protocol.h.
#include "protocol.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ask.h"
#include "log.h"
#include "offline.h"
#include "pfam.h"

// ---- small helpers ---------------------------------------------------------------------------
typedef struct sbuf {
  char *s;
  size_t n, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->n;
    int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    b->cap = (b->cap + (size_t)k + 1) * 2;
    b->s = ps_xrealloc(b->s, b->cap);
  }
}

void interp_opts_default(interp_opts_t *o) {
  memset(o, 0, sizeof *o);
  ps_sample_opts_default(&o->sample);
  o->n_units = 200;
  o->max_go_terms = 12;
  o->go_by_namespace = 1;
  o->unit_kind = "feature";
  o->model_desc = "the protein language model ESM2";
}

// ---- prompts ---------------------------------------------------------------------------------
static void sb_clean(sbuf_t *b, const char *s) {  // no line breaks or '|' inside a field
  for (; *s; s++) sb_printf(b, "%c", (*s == '\n' || *s == '\r' || *s == '\t' || *s == '|') ? ' ' : *s);
}

static const char *const ns_label[3] = {"biological process", "molecular function", "cellular component"};

size_t interp_prompt_go_terms(const interp_opts_t *o, const interp_db_t *db, int64_t d, int32_t *out, size_t cap) {
  const interp_protein_t *p = db && d >= 0 ? &db->p[d] : NULL;
  if (!p || !db->go) return 0;
  size_t n = 0, lim = o->max_go_terms >= 0 ? (size_t)o->max_go_terms : SIZE_MAX;
  if (!o->go_by_namespace) {
    for (uint32_t i = 0; i < p->n_direct && n < lim && n < cap; i++) out[n++] = p->direct[i];
    return n;
  }
  for (int ns = 0; ns < 3; ns++) {  // direct terms are most specific first: keep that order per section
    size_t k = 0;
    for (uint32_t i = 0; i < p->n_direct && k < lim && n < cap; i++) {
      const go_term_t *t = go_term(db->go, p->direct[i]);
      if (t && (int)t->ns == ns) out[n++] = p->direct[i], k++;
    }
  }
  return n;
}

static void go_names(sbuf_t *b, const interp_db_t *db, const int32_t *t, size_t n) {
  if (!n) sb_printf(b, "-");
  for (size_t i = 0; i < n; i++) {
    const go_term_t *g = go_term(db->go, t[i]);
    sb_printf(b, "%s", i ? "; " : "");
    sb_clean(b, g && *g->name ? g->name : g ? g->id : "?");
  }
}

static void describe(sbuf_t *b, const interp_opts_t *o, const interp_db_t *db, const char *acc, int64_t k) {
  sb_clean(b, acc);
  const interp_protein_t *p = db && k >= 0 ? &db->p[k] : NULL;
  sb_printf(b, " | gene: ");
  sb_clean(b, p && *p->gene ? p->gene : "-");
  sb_printf(b, " | name: ");
  sb_clean(b, p && *p->name ? p->name : "-");
  sb_printf(b, " | Pfam: ");
  if (!p || !p->n_pfam) sb_printf(b, "-");
  for (uint32_t i = 0; p && i < p->n_pfam; i++) {
    const char *lab = interp_pfam_label(db, p->pfam[i]);
    sb_printf(b, "%s%s", i ? ", " : "", db->pfam_names[p->pfam[i]]);
    if (lab) {
      sb_printf(b, " (");
      sb_clean(b, lab);
      sb_printf(b, ")");
    }
  }
  int32_t terms[256];
  size_t nt = interp_prompt_go_terms(o, db, k, terms, sizeof terms / sizeof *terms);
  if (!o->go_by_namespace) {
    sb_printf(b, " | GO: ");
    go_names(b, db, terms, nt);
  } else {
    size_t a = 0;
    for (int ns = 0; ns < 3; ns++) {
      size_t e = a;
      while (e < nt && (int)go_term(db->go, terms[e])->ns == ns) e++;
      sb_printf(b, " | GO %s: ", ns_label[ns]);
      go_names(b, db, terms + a, e - a);
      a = e;
    }
  }
  if (o->with_sequence && p && p->seq) sb_printf(b, " | sequence: %s", p->seq);
}

static const char *go_fields(const interp_opts_t *o) {
  return o->go_by_namespace ? "GO biological process | GO molecular function | GO cellular component"
                            : "Gene Ontology terms";
}

char *interp_prompt_explain(const interp_opts_t *o, const interp_db_t *db, const char *const *ids,
                            const int64_t *row_db, const ps_sample_t *s) {
  sbuf_t b = {0};
  sb_printf(&b,
            "We are studying one %s of %s. Below are proteins with the %s's activation on each, scaled "
            "to [0, 1] (0 = inactive, 1 = its strongest activation over all analysed proteins). Each line: "
            "accession | gene | protein name | Pfam families | %s%s | activation.\n\n",
            o->unit_kind, o->model_desc, o->unit_kind, go_fields(o), o->with_sequence ? " | sequence" : "");
  for (size_t i = 0; i < s->n_shown; i++) {
    sb_printf(&b, "%zu. ", i + 1);
    describe(&b, o, db, ids[s->shown[i]], row_db ? row_db[s->shown[i]] : -1);
    sb_printf(&b, " | activation: %.2f\n", (double)s->shown_act[i]);
  }
  sb_printf(&b,
            "\nIn one sentence, explain which property of a protein this %s detects, so that someone could "
            "predict its activation on other proteins from their annotations. Answer with that one sentence "
            "only.",
            o->unit_kind);
  return b.s;
}

char *interp_prompt_predict(const interp_opts_t *o, const interp_db_t *db, const char *const *ids,
                            const int64_t *row_db, const ps_sample_t *s, const char *explanation) {
  sbuf_t b = {0};
  sb_printf(&b, "One %s of %s has been explained as follows:\n\"", o->unit_kind, o->model_desc);
  sb_clean(&b, explanation);
  sb_printf(&b,
            "\"\n\nFor each protein below, predict the %s's activation from the explanation and the "
            "protein's annotations, as a number from 0 (inactive) to 1 (strongest). Each line: accession | gene "
            "| protein name | Pfam families | %s%s.\n\n",
            o->unit_kind, go_fields(o), o->with_sequence ? " | sequence" : "");
  for (size_t i = 0; i < s->n_held; i++) {
    sb_printf(&b, "%zu. ", i + 1);
    describe(&b, o, db, ids[s->held[i]], row_db ? row_db[s->held[i]] : -1);
    sb_printf(&b, "\n");
  }
  sb_printf(&b,
            "\nAnswer with exactly %zu lines, one per protein in the order above, each of the form "
            "\"<number>: <prediction>\" (for example \"1: 0.25\"), and nothing else.",
            s->n_held);
  return b.s;
}

// ---- answer parsing --------------------------------------------------------------------------
int interp_parse_explanation(const char *text, char **out, char *why, size_t cap) {
  *out = NULL;
  const char *p = text;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p) {
      snprintf(why, cap, "empty explanation");
      return PS_EFORMAT;
    }
    size_t l = strcspn(p, "\r\n");
    // strip markdown, labels and quotes
    const char *a = p, *e = p + l;
    while (a < e && (*a == '*' || *a == '#' || *a == '>' || *a == '-' || *a == ' ' || *a == '"' || *a == '`')) a++;
    static const char *const labels[] = {"Explanation:", "explanation:", "EXPLANATION:", "Answer:", "Sentence:"};
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++) {
      size_t ll = strlen(labels[i]);
      if ((size_t)(e - a) >= ll && !strncmp(a, labels[i], ll)) {
        a += ll;
        break;
      }
    }
    while (a < e && (*a == '*' || *a == ' ' || *a == '"' || *a == '`')) a++;
    while (e > a && (e[-1] == '*' || e[-1] == ' ' || e[-1] == '"' || e[-1] == '`' || e[-1] == '\t')) e--;
    if (e > a) {
      size_t n = (size_t)(e - a);
      if (n > 1000) {  // cut on a UTF-8 character boundary
        n = 1000;
        while (n > 0 && ((unsigned char)a[n] & 0xC0) == 0x80) n--;
      }
      *out = ps_xmalloc(n + 1);
      memcpy(*out, a, n);
      (*out)[n] = 0;
      return 0;
    }
    p += l;
  }
}

static int is_word(char c) { return isalnum((unsigned char)c) || c == '_'; }

// First standalone number in [p, e): not glued to letters or digits on its left, not followed by a
// letter. Sets *val (percent divided by 100) and returns 1, else 0.
static int first_number(const char *p, const char *e, double *val, const char **after) {
  for (const char *q = p; q < e; q++) {
    if (!(isdigit((unsigned char)*q) || (*q == '.' && q + 1 < e && isdigit((unsigned char)q[1])) ||
          ((*q == '-' || *q == '+') && q + 1 < e && (isdigit((unsigned char)q[1]) || q[1] == '.'))))
      continue;
    if (q > p && (is_word(q[-1]) || q[-1] == '.')) {  // inside a word (P12345, ABC1, v2.0)
      const char *w = q + 1;  // always moves on
      while (w < e && (is_word(*w) || *w == '.')) w++;
      q = w - 1;
      continue;
    }
    char buf[64];
    size_t l = 0;
    const char *r = q;
    while (r < e && l < sizeof buf - 1 && (isdigit((unsigned char)*r) || *r == '.' || *r == '-' || *r == '+' ||
                                           *r == 'e' || *r == 'E'))
      buf[l++] = *r++;
    buf[l] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf) continue;
    const char *stop = q + (end - buf);
    if (stop < e && isalpha((unsigned char)*stop)) {  // "3rd", "2x": not a value
      q = stop;  // past the number (strtod consumed at least one byte), then the word
      while (q < e && is_word(*q)) q++;
      q--;
      continue;
    }
    if (stop < e && *stop == '%') {
      v /= 100.0;
      stop++;
    }
    *val = v;
    if (after) *after = stop;
    return 1;
  }
  return 0;
}

#define MAX_ANSWER (1u << 20)

int interp_parse_predictions(const char *text, size_t len, size_t m, const char *const *acc, double *out,
                             char *why, size_t cap) {
  if (m == 0) {
    snprintf(why, cap, "no proteins to predict");
    return PS_EFORMAT;
  }
  if (len > MAX_ANSWER) {
    snprintf(why, cap, "answer too long (%zu bytes)", len);
    return PS_EFORMAT;
  }
  uint8_t *seen = ps_xcalloc(m, 1);
  double *bare = ps_xmalloc(m * sizeof *bare);
  size_t n_seen = 0, n_bare = 0, n_indexed_lines = 0, n_other = 0;
  int rc = 0;
  const char *p = text, *end = text + len;
  while (p < end && !rc) {
    const char *le = p;
    while (le < end && *le != '\n' && *le != '\r' && *le != '\0') le++;
    const char *a = p;
    p = le < end ? le + 1 : le;
    while (a < le && (*a == ' ' || *a == '\t' || *a == '-' || *a == '*' || *a == '#' || *a == '|' || *a == '>' ||
                      *a == '`' || *a == '(' || *a == '['))
      a++;
    if (a >= le) continue;
    if (le - a >= 7 && !strncasecmp(a, "protein", 7)) {
      a += 7;
      while (a < le && (*a == ' ' || *a == '#')) a++;
      if (a >= le) continue;
    }
    size_t idx = 0;
    int have_idx = 0;
    const char *rest = a;
    if (a < le && isdigit((unsigned char)*a)) {
      const char *q = a;
      uint64_t v = 0;
      while (q < le && isdigit((unsigned char)*q) && v < 1000000) v = v * 10 + (uint64_t)(*q++ - '0');
      int decimal = q < le && *q == '.' && q + 1 < le && isdigit((unsigned char)q[1]);
      if (!decimal && (q >= le || strchr(":.)=-]|* \t,", *q))) {
        while (q < le && strchr(":.)=-]|*", *q)) q++;  // the separator ("**4**:", "3)")
        // "N: v" needs a value after it; "0.5" alone is a bare number
        double tmp;
        if (first_number(q, le, &tmp, NULL)) {
          have_idx = 1;
          idx = (size_t)v;
          rest = q;
        }
      }
    }
    if (!have_idx && acc) {  // keyed by accession
      for (size_t i = 0; i < m && !have_idx; i++) {
        size_t al = acc[i] ? strlen(acc[i]) : 0;
        if (!al) continue;
        for (const char *q = a; q + al <= le; q++)
          if (!memcmp(q, acc[i], al) && (q == a || !is_word(q[-1])) && (q + al == le || !is_word(q[al]))) {
            have_idx = 1;
            idx = i + 1;
            rest = q + al;
            break;
          }
      }
    }
    double v;
    if (have_idx) {
      n_indexed_lines++;
      // the value follows the last ':', '=' or '>' when one is followed by a number ("1. P12345
      // (kinase 2): 0.75"), else it is the first standalone number after the index
      const char *lastsep = NULL;
      for (const char *q = rest; q < le; q++)
        if (*q == ':' || *q == '=' || *q == '>') lastsep = q;
      if (lastsep && first_number(lastsep + 1, le, &v, NULL)) rest = lastsep + 1;
      if (!first_number(rest, le, &v, NULL)) {
        n_other++;
        n_indexed_lines--;
        continue;
      }
      if (idx < 1 || idx > m) {
        snprintf(why, cap, "index %zu out of range 1..%zu", idx, m);
        rc = PS_EFORMAT;
        break;
      }
      if (!isfinite(v) || v < 0 || v > 1) {
        snprintf(why, cap, "prediction %zu = %g outside [0, 1]", idx, v);
        rc = PS_EFORMAT;
        break;
      }
      if (seen[idx - 1]) {
        if (out[idx - 1] != v) {
          snprintf(why, cap, "two different predictions for protein %zu", idx);
          rc = PS_EFORMAT;
          break;
        }
        continue;
      }
      seen[idx - 1] = 1;
      out[idx - 1] = v;
      n_seen++;
    } else {
      // a line of bare numbers ("0.1, 0.5 0.9") or a JSON array
      const char *q = a, *after;
      int all_numbers = 1, any = 0;
      while (q < le) {
        while (q < le && (*q == ' ' || *q == '\t' || *q == ',' || *q == ';' || *q == '[' || *q == ']')) q++;
        if (q >= le) break;
        if (!first_number(q, le, &v, &after) || !(isdigit((unsigned char)*q) || *q == '.' || *q == '-' || *q == '+')) {
          all_numbers = 0;
          break;
        }
        q = after;
        if (q < le && !strchr(" \t,;]", *q)) {
          all_numbers = 0;
          break;
        }
        if (n_bare < m) bare[n_bare] = v;
        n_bare++;
        any = 1;
      }
      if (!all_numbers || !any) n_other++;
    }
  }
  if (!rc) {
    if (n_seen) {
      if (n_seen != m) {
        snprintf(why, cap, "got %zu of %zu predictions", n_seen, m);
        rc = PS_EFORMAT;
      }
    } else if (n_bare) {
      if (n_bare != m) {
        snprintf(why, cap, "got %zu numbers for %zu proteins", n_bare, m);
        rc = PS_EFORMAT;
      } else {
        for (size_t i = 0; i < m && !rc; i++) {
          if (!isfinite(bare[i]) || bare[i] < 0 || bare[i] > 1) {
            snprintf(why, cap, "prediction %zu = %g outside [0, 1]", i + 1, bare[i]);
            rc = PS_EFORMAT;
          }
          out[i] = bare[i];
        }
      }
    } else {
      snprintf(why, cap, "no predictions found in the answer");
      rc = PS_EFORMAT;
    }
  }
  free(seen);
  free(bare);
  return rc;
}

// ---- statistics ------------------------------------------------------------------------------
// Continued fraction for the incomplete beta (modified Lentz; Numerical Recipes 6.4).
static double betacf(double a, double b, double x) {
  const double tiny = 1e-300, eps = 1e-16;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; m++) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1) < eps) break;
  }
  return h;
}

double interp_betai(double a, double b, double x) {
  if (!(x > 0)) return 0;
  if (!(x < 1)) return 1;
  double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
  if (x < (a + 1) / (a + b + 2)) return exp(lbt) * betacf(a, b, x) / a;
  return 1 - exp(lbt) * betacf(b, a, 1 - x) / b;
}

int interp_pearson(const double *x, const double *y, size_t n, double *r, double *p) {
  *r = NAN;
  *p = NAN;
  if (n < 3) return PS_EDIM;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(x[i]) || !isfinite(y[i])) return PS_ENAN;
    mx += x[i];
    my += y[i];
  }
  mx /= (double)n;
  my /= (double)n;
  double sxx = 0, syy = 0, sxy = 0;
  for (size_t i = 0; i < n; i++) {
    double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx;
    syy += dy * dy;
    sxy += dx * dy;
  }
  if (!(sxx > 0) || !(syy > 0)) return PS_ENAN;
  double rr = sxy / sqrt(sxx * syy);
  if (rr > 1) rr = 1;
  if (rr < -1) rr = -1;
  *r = rr;
  double df = (double)n - 2;
  if (fabs(rr) >= 1) {
    *p = 0;
    return 0;
  }
  double t2 = rr * rr * df / (1 - rr * rr);
  *p = interp_betai(df / 2, 0.5, df / (df + t2));
  return 0;
}

// ---- the run ---------------------------------------------------------------------------------
void interp_result_clear(interp_result_t *r) {
  ps_sample_free(&r->s);
  free(r->explanation);
  free(r->pred);
  free(r->answer1);
  free(r->answer2);
  memset(r, 0, sizeof *r);
}

void interp_results_free(interp_result_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) interp_result_clear(&r[i]);
  free(r);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int interp_run(const interp_source_t *src, const interp_db_t *db, const interp_opts_t *o, const interp_run_opts_t *ro,
               interp_result_t **results, size_t *n_results, interp_summary_t *sum, ps_err_t *err) {
  *results = NULL;
  *n_results = 0;
  memset(sum, 0, sizeof *sum);
  sum->n_units = src->n_units;
  int offline = ro->offline || !ro->llm;
  if (offline && !db) return ps_err_set(err, PS_ECONFIG, "interpreter: the offline mode needs the protein data");
  size_t np = src->n_proteins;
  int64_t *row_db = ps_xmalloc((np ? np : 1) * sizeof *row_db);
  for (size_t i = 0; i < np; i++) row_db[i] = db ? interp_db_find(db, src->protein_ids[i]) : -1;
  float *col = ps_xmalloc((np ? np : 1) * sizeof *col);
  size_t want = o->n_units && o->n_units < src->n_units ? o->n_units : src->n_units;
  interp_result_t *res = ps_xcalloc(want ? want : 1, sizeof *res);
  size_t nres = 0;
  int rc = 0;
  // units in a seeded random order; the first `want` eligible ones are analysed
  size_t *perm = ps_xmalloc((src->n_units ? src->n_units : 1) * sizeof *perm);
  ps_sample_unit_order(o->sample.seed, src->n_units, o->n_units, perm);
  for (size_t pi = 0; pi < src->n_units && nres < want; pi++) {
    size_t u = perm[pi];
    if ((rc = src->column(src->ctx, u, col, err)) < 0) goto out;
    sum->n_checked++;
    interp_result_t *x = &res[nres];
    char why[128];
    if (!ps_sample_unit(&o->sample, col, np, u, &x->s, why, sizeof why)) {
      if (x->s.n_active >= (size_t)o->sample.min_active) sum->n_constant++;
      else sum->n_too_few++;
      memset(x, 0, sizeof *x);
      continue;
    }
    x->unit = u;
    nres++;
    if (offline) {  // the offline explainer sees the shown proteins, as a model would
      offline_expl_t ex;
      offline_explain(o, db, row_db, x->s.shown, x->s.shown_act, x->s.n_shown, &ex);
      x->explanation = ps_xstrdup(ex.text);
      double *pv = ps_xmalloc((x->s.n_held ? x->s.n_held : 1) * sizeof *pv);
      for (size_t k = 0; k < x->s.n_held; k++) pv[k] = offline_predict(&ex, o, db, row_db[x->s.held[k]]);
      x->answer2 = interp_answer_text(pv, x->s.n_held);  // through the same parser as a model's answer
      interp_take_predictions(x, x->answer2, NULL, "offline answer");
      free(pv);
      offline_expl_free(&ex);
    }
  }
  sum->n_selected = nres;
  if (!offline) {  // steps 5-7 for every selected unit at once (ask.h); a rerun reads the cache back
    interp_job_t *jobs = ps_xcalloc(nres ? nres : 1, sizeof *jobs);
    for (size_t i = 0; i < nres; i++) jobs[i] = (interp_job_t){o, src->protein_ids, row_db, &res[i]};
    rc = interp_ask(ro->llm, db, jobs, nres, INTERP_ASK_LOG, err);
    free(jobs);
    if (rc < 0) goto out;
  }
  // summary
  double *rs = ps_xmalloc((nres ? nres : 1) * sizeof *rs);
  size_t ns = 0, n05 = 0;
  double tot = 0;
  for (size_t i = 0; i < nres; i++) {
    if (!res[i].scored) {
      sum->n_failed++;
      continue;
    }
    sum->n_constant_pred += res[i].constant_pred;
    rs[ns++] = res[i].r;
    tot += res[i].r;
    n05 += res[i].p < 0.05;
  }
  sum->n_scored = ns;
  if (ns) {
    qsort(rs, ns, sizeof *rs, cmp_double);
    sum->mean_r = tot / (double)ns;
    sum->median_r = ns % 2 ? rs[ns / 2] : 0.5 * (rs[ns / 2 - 1] + rs[ns / 2]);
    sum->frac_p05 = (double)n05 / (double)ns;
  } else {
    sum->mean_r = sum->median_r = sum->frac_p05 = NAN;
  }
  free(rs);
out:
  free(perm);
  free(col);
  free(row_db);
  if (rc < 0) {
    interp_results_free(res, nres);
    return rc;
  }
  *results = res;
  *n_results = nres;
  return 0;
}

// ---- output ----------------------------------------------------------------------------------
static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

int interp_write_jsonl(const char *path, const interp_opts_t *o, const interp_source_t *src, const interp_result_t *r,
                       size_t n, const char *mode, int offline, ps_err_t *err) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return ps_err_set(err, -errno, "%s: cannot create: %s", tmp, strerror(errno));
  for (size_t i = 0; i < n; i++) {
    const interp_result_t *x = &r[i];
    json_t *j = json_object();
    json_object_set_new(j, "kind", json_string(o->unit_kind));
    json_object_set_new(j, "unit", json_integer((json_int_t)x->unit));
    json_object_set_new(j, "offline", json_boolean(offline));
    json_object_set_new(j, "mode", json_string(mode));
    json_object_set_new(j, "n_active", json_integer((json_int_t)x->s.n_active));
    json_object_set_new(j, "explanation", x->explanation ? json_string(x->explanation) : json_null());
    json_t *shown = json_array();
    for (size_t k = 0; k < x->s.n_shown; k++) {
      json_t *e = json_object();
      json_object_set_new(e, "accession", json_string(src->protein_ids[x->s.shown[k]]));
      json_object_set_new(e, "activation", json_real(x->s.shown_act[k]));
      json_array_append_new(shown, e);
    }
    json_object_set_new(j, "shown", shown);
    json_t *held = json_array();
    for (size_t k = 0; k < x->s.n_held; k++) {
      json_t *e = json_object();
      json_object_set_new(e, "accession", json_string(src->protein_ids[x->s.held[k]]));
      json_object_set_new(e, "true", json_real(x->s.held_act[k]));
      json_object_set_new(e, "pred", x->pred ? json_real(x->pred[k]) : json_null());
      json_array_append_new(held, e);
    }
    json_object_set_new(j, "held_out", held);
    json_object_set_new(j, "r", x->scored ? num_or_null(x->r) : json_null());
    json_object_set_new(j, "p", x->scored ? num_or_null(x->p) : json_null());
    json_object_set_new(j, "constant_predictions", json_boolean(x->constant_pred));
    json_object_set_new(j, "failure", x->failure[0] ? json_string(x->failure) : json_null());
    char *line = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(8));
    json_decref(j);
    if (!line) continue;  // invalid UTF-8 in an answer: jansson refuses; skip the line
    fputs(line, f);
    fputc('\n', f);
    free(line);
  }
  int rc = 0;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) rc = ps_err_set(err, -errno, "%s: write: %s", tmp, strerror(errno));
  if (fclose(f) != 0 && !rc) rc = ps_err_set(err, -errno, "%s: close: %s", tmp, strerror(errno));
  if (!rc && rename(tmp, path) != 0) rc = ps_err_set(err, -errno, "%s: rename: %s", path, strerror(errno));
  if (rc) unlink(tmp);
  return rc;
}
