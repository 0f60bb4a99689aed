// concept_flat.c — residue annotations from UniProtKB flat files (both FT layouts) and from the
// simple TSV (accession, start, end, concept), streamed line by line. See concept.h.
#include "concept.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAX 4096
#define POS_MAX 100000000u   // longer than any protein

// One position token: 0 and *v (1..POS_MAX; a '<', '>' or '?' before the number is an uncertain
// bound, the number is kept), 1 unknown ("?" alone), -1 malformed.
static int parse_pos(const char *t, size_t n, uint32_t *v) {
  if (n && (t[0] == '<' || t[0] == '>' || t[0] == '?')) {
    if (n == 1) return t[0] == '?' ? 1 : -1;
    t++, n--;
  }
  if (!n || n > 9) return -1;
  uint32_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)t[i])) return -1;
    x = x * 10 + (uint32_t)(t[i] - '0');
  }
  if (x < 1 || x > POS_MAX) return -1;
  *v = x;
  return 0;
}

typedef struct entry {
  char id[64], ac[64];
  uint64_t id_line;
  int open;                  // an ID line seen, no "//" yet
  // the pending feature
  char type[16];
  int have_feat, unknown, other_seq, quote;  // quote: inside a /note="..." running over lines
  int note_is_qual;          // the note came from /note= (current layout), not the description
  uint32_t a, b;
  uint64_t feat_line;
  char note[NOTE_MAX];
  size_t note_len;
} entry_t;

static void note_append(entry_t *e, const char *t, size_t n) {
  if (e->note_len && e->note_len < NOTE_MAX - 1) e->note[e->note_len++] = ' ';
  size_t room = NOTE_MAX - 1 - e->note_len;
  if (n > room) n = room;
  memcpy(e->note + e->note_len, t, n);
  e->note_len += n;
  e->note[e->note_len] = 0;
}

static void flush(concept_set_t *s, entry_t *e, concept_load_stats_t *st) {
  if (!e->have_feat) return;
  e->have_feat = 0;
  if (!concept_type_kept(e->type)) {
    st->skipped_type++;
    return;
  }
  if (e->unknown) {
    st->skipped_unknown++;
    return;
  }
  if (e->other_seq) {
    st->skipped_other_seq++;
    return;
  }
  char name[NOTE_MAX + 32];
  concept_name(e->type, e->note_len ? e->note : NULL, name, sizeof name);
  concept_set_add(s, e->ac, e->id, name, e->a, e->b, concept_type_pair(e->type));
  st->kept++;
}

// A token of line from *i (spaces skipped): its start and length; 0 when none.
static size_t token(const char *line, size_t len, size_t *i, const char **t) {
  while (*i < len && line[*i] == ' ') (*i)++;
  *t = line + *i;
  size_t s = *i;
  while (*i < len && line[*i] != ' ') (*i)++;
  return *i - s;
}

#define FAIL(...) return ps_err_set(err, PS_EFORMAT, __VA_ARGS__)

// A feature key line: "FT   TYPE ..." (the type in columns 6-13).
static int feature_start(concept_set_t *s, entry_t *e, const char *line, size_t len, const char *where, uint64_t ln,
                         concept_load_stats_t *st, ps_err_t *err) {
  flush(s, e, st);
  if (!e->ac[0]) FAIL("%s: line %llu: a feature before the entry's AC line", where, (unsigned long long)ln);
  size_t i = 5;
  const char *t;
  size_t n = token(line, len, &i, &t);
  if (!n || n >= sizeof e->type) FAIL("%s: line %llu: bad feature type", where, (unsigned long long)ln);
  memcpy(e->type, t, n);
  e->type[n] = 0;
  for (size_t k = 0; k < n; k++)
    if (!isupper((unsigned char)t[k]) && t[k] != '_' && !isdigit((unsigned char)t[k]))
      FAIL("%s: line %llu: bad feature type '%s'", where, (unsigned long long)ln, e->type);
  const char *l1, *l2;
  size_t n1 = token(line, len, &i, &l1);
  size_t save = i;
  size_t n2 = token(line, len, &i, &l2);
  if (!n1) FAIL("%s: line %llu: %s without a location", where, (unsigned long long)ln, e->type);
  e->have_feat = 1, e->unknown = 0, e->other_seq = 0, e->quote = 0, e->note_is_qual = 0, e->note_len = 0;
  e->note[0] = 0;
  e->feat_line = ln;
  uint32_t a = 0, b = 0;
  int ra, rb;
  const char *dots = NULL;
  for (size_t k = 0; k + 1 < n1; k++)
    if (l1[k] == '.' && l1[k + 1] == '.') dots = l1 + k;
  uint32_t tmp;
  if (!dots && n2 && parse_pos(l2, n2, &tmp) >= 0) {  // pre-2019: "from to description"
    ra = parse_pos(l1, n1, &a);
    rb = parse_pos(l2, n2, &b);
    const char *d;
    size_t dn = token(line, len, &i, &d);
    if (dn) note_append(e, d, (size_t)(line + len - d));
  } else {  // current: one location token
    i = save;
    if (memchr(l1, ':', n1)) {
      e->other_seq = 1;
      return 0;
    }
    if (dots) {
      ra = parse_pos(l1, (size_t)(dots - l1), &a);
      rb = parse_pos(dots + 2, n1 - (size_t)(dots - l1) - 2, &b);
    } else {
      ra = rb = parse_pos(l1, n1, &a);
      b = a;
    }
    if (n2) FAIL("%s: line %llu: %s location '%.*s' followed by '%.*s'", where, (unsigned long long)ln, e->type,
                 (int)n1, l1, (int)n2, l2);
  }
  if (ra < 0 || rb < 0)
    FAIL("%s: line %llu: %s: bad position in '%.*s'", where, (unsigned long long)ln, e->type, (int)(len - 5 < 80 ? len - 5 : 80),
         line + 5);
  if (ra == 1 || rb == 1) {
    e->unknown = 1;
    return 0;
  }
  if (b < a && !concept_type_pair(e->type))
    FAIL("%s: line %llu: %s ends (%u) before it starts (%u)", where, (unsigned long long)ln, e->type, b, a);
  e->a = a, e->b = b;
  return 0;
}

// A continuation line "FT" + spaces + text of the pending feature.
static void feature_more(entry_t *e, const char *t, size_t n) {
  if (!e->have_feat) return;
  if (e->quote) {  // the rest of a /note="..." (quote 1) or of another quoted qualifier (-1)
    const char *q = memchr(t, '"', n);
    if (e->quote > 0) note_append(e, t, q ? (size_t)(q - t) : n);
    if (q) e->quote = 0;
    return;
  }
  if (n && t[0] == '/') {
    if (n >= 7 && !memcmp(t, "/note=\"", 7)) {
      e->note_len = 0, e->note_is_qual = 1;
      const char *q = memchr(t + 7, '"', n - 7);
      note_append(e, t + 7, q ? (size_t)(q - t - 7) : n - 7);
      e->quote = q == NULL;
    } else {  // another qualifier (/evidence, /id, /ligand, /FTId=): skipped, its quotes followed
      const char *q1 = memchr(t, '"', n);
      if (q1 && !memchr(q1 + 1, '"', n - (size_t)(q1 + 1 - t))) e->quote = -1;
    }
    return;
  }
  if (!e->note_is_qual) note_append(e, t, n);  // pre-2019 description running over lines
}

int concept_flat_read(concept_set_t *s, ps_lines_t *r, concept_load_stats_t *st, ps_err_t *err) {
  concept_load_stats_t local = {0};
  if (!st) st = &local;
  entry_t *e = ps_xcalloc(1, sizeof *e);
  const char *where = ps_lines_name(r);
  char *line;
  size_t len;
  int rc;
  while ((rc = ps_lines_next(r, &line, &len, err)) == 1) {
    uint64_t ln = ps_lines_lineno(r);
    st->lines++;
    if (memchr(line, 0, len)) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: a NUL byte (not a flat file?)", where, (unsigned long long)ln);
      break;
    }
    if (len >= 2 && !memcmp(line, "//", 2)) {
      if (!e->open) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: '//' outside an entry", where, (unsigned long long)ln);
        break;
      }
      if (e->have_feat && e->quote > 0) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: /note of the %s at line %llu is not closed", where,
                        (unsigned long long)ln, e->type, (unsigned long long)e->feat_line);
        break;
      }
      flush(s, e, st);
      e->open = 0;
      continue;
    }
    if (len >= 5 && !memcmp(line, "ID   ", 5)) {
      if (e->open) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: entry %s (line %llu) not ended by '//' (truncated?)", where,
                        (unsigned long long)ln, e->id, (unsigned long long)e->id_line);
        break;
      }
      memset(e, 0, sizeof *e);
      size_t i = 5;
      const char *t;
      size_t n = token(line, len, &i, &t);
      if (!n || n >= sizeof e->id) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: ID line without an entry name", where, (unsigned long long)ln);
        break;
      }
      memcpy(e->id, t, n);
      e->open = 1, e->id_line = ln;
      st->entries++;
      continue;
    }
    if (!e->open) {
      size_t i = 0;
      while (i < len && isspace((unsigned char)line[i])) i++;
      if (i == len) continue;
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: a line outside an entry (want 'ID   ')", where,
                      (unsigned long long)ln);
      break;
    }
    if (len >= 5 && !memcmp(line, "AC   ", 5)) {
      if (e->ac[0]) continue;  // the first AC line names the protein
      size_t i = 5;
      const char *t;
      size_t n = token(line, len, &i, &t);
      while (n && (t[n - 1] == ';')) n--;
      if (!n || n >= sizeof e->ac) {
        rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: AC line without an accession", where, (unsigned long long)ln);
        break;
      }
      memcpy(e->ac, t, n);
      e->ac[n] = 0;
      continue;
    }
    if (len >= 2 && !memcmp(line, "FT", 2)) {
      if (len > 5 && !memcmp(line, "FT   ", 5) && line[5] != ' ') {
        if ((rc = feature_start(s, e, line, len, where, ln, st, err)) < 0) break;
      } else {
        size_t i = 2;
        while (i < len && line[i] == ' ') i++;
        feature_more(e, line + i, len - i);
      }
      continue;
    }
    if (e->have_feat && e->quote > 0) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: /note of the %s at line %llu is not closed", where,
                      (unsigned long long)ln, e->type, (unsigned long long)e->feat_line);
      break;
    }
    flush(s, e, st);  // any other line type ends the feature table
  }
  if (rc == 0 && e->open)
    rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: the file ends inside entry %s (line %llu): truncated?", where,
                    (unsigned long long)ps_lines_lineno(r), e->id, (unsigned long long)e->id_line);
  free(e);
  return rc < 0 ? rc : 0;
}

// ---- TSV ------------------------------------------------------------------------------------------
int concept_tsv_read(concept_set_t *s, ps_lines_t *r, concept_load_stats_t *st, ps_err_t *err) {
  concept_load_stats_t local = {0};
  if (!st) st = &local;
  const char *where = ps_lines_name(r);
  char *line;
  size_t len;
  int rc, first = 1;
  while ((rc = ps_lines_next(r, &line, &len, err)) == 1) {
    uint64_t ln = ps_lines_lineno(r);
    st->lines++;
    if (!len || line[0] == '#') continue;
    if (first && len >= 9 && !strncasecmp(line, "accession", 9)) {
      first = 0;
      continue;
    }
    first = 0;
    if (memchr(line, 0, len)) FAIL("%s: line %llu: a NUL byte", where, (unsigned long long)ln);
    char *f[4];
    int nf = 0;
    char *p = line;
    while (nf < 4) {
      f[nf++] = p;
      if (nf == 4) break;  // the concept: the rest of the line (a tab in it is an error below)
      char *tab = strchr(p, '\t');
      if (!tab) break;
      *tab = 0;
      p = tab + 1;
    }
    if (nf < 4 || strchr(f[3], '\t'))
      FAIL("%s: line %llu: want 4 tab-separated fields (accession, start, end, concept), got %s", where,
           (unsigned long long)ln, nf < 4 ? "fewer" : "more");
    uint32_t a = 0, b = 0;
    if (!f[0][0] || !f[3][0]) FAIL("%s: line %llu: empty accession or concept", where, (unsigned long long)ln);
    if (parse_pos(f[1], strlen(f[1]), &a) != 0 || !isdigit((unsigned char)f[1][0]) ||
        parse_pos(f[2], strlen(f[2]), &b) != 0 || !isdigit((unsigned char)f[2][0]))
      FAIL("%s: line %llu: start '%s' and end '%s' must be positions 1..%u", where, (unsigned long long)ln, f[1], f[2],
           POS_MAX);
    if (b < a) FAIL("%s: line %llu: end %u before start %u", where, (unsigned long long)ln, b, a);
    st->entries++;
    concept_set_add(s, f[0], NULL, f[3], a, b, 0);
    st->kept++;
  }
  return rc < 0 ? rc : 0;
}
