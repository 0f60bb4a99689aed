// pfam.c — see pfam.h.
#include "pfam.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io.h"

static int ends_with(const char *s, const char *suf) {
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

static int is_flat_name(const char *n) { return ends_with(n, ".dat") || ends_with(n, ".dat.gz"); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Append dir's flat files (sorted by name, so the order is the same on every machine).
static void add_dir(const char *dir, char *out, size_t cap) {
  DIR *d = opendir(dir);
  if (!d) return;
  char **names = NULL;
  size_t n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !is_flat_name(e->d_name)) continue;
    names = ps_xrealloc(names, (n + 1) * sizeof *names);
    names[n++] = ps_xstrdup(e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_str);  // names is NULL when the directory has none
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(out);
    snprintf(out + l, cap - l, "%s%s/%s", l ? ";" : "", dir, names[i]);
    free(names[i]);
  }
  free(names);
}

int interp_pfam_find_flat(const char *flat, const char *data_dir, char *out, size_t cap, ps_err_t *err) {
  out[0] = 0;
  if (!flat || !flat[0]) return 0;
  struct stat sb;
  if (strcmp(flat, "auto")) {
    if (stat(flat, &sb) != 0) return ps_err_set(err, PS_ENOTFOUND, "--uniprot-flat %s: %s", flat, strerror(errno));
    if (S_ISDIR(sb.st_mode)) add_dir(flat, out, cap);
    else snprintf(out, cap, "%s", flat);
    return 0;
  }
  if (!data_dir || !data_dir[0]) return 0;
  char p[4096];
  add_dir(data_dir, out, cap);
  snprintf(p, sizeof p, "%s/uniprot-flat", data_dir);
  add_dir(p, out, cap);
  snprintf(p, sizeof p, "%s/../uniprot-flat", data_dir);
  add_dir(p, out, cap);
  return 0;
}

// Set family pf's name unless it has one (or pf is not a family of the db).
static void set_label(interp_db_t *db, const char *pf, size_t pl, const char *name, size_t nl) {
  char id[32];
  if (!pl || pl >= sizeof id || !nl || (nl == 1 && name[0] == '-')) return;
  memcpy(id, pf, pl);
  id[pl] = 0;
  int32_t f = interp_db_pfam_index(db, id);
  if (f < 0) return;
  if ((size_t)f >= db->n_pfam_labels) {
    db->pfam_labels = ps_xrealloc(db->pfam_labels, db->n_pfam_names * sizeof *db->pfam_labels);
    for (size_t i = db->n_pfam_labels; i < db->n_pfam_names; i++) db->pfam_labels[i] = NULL;
    db->n_pfam_labels = db->n_pfam_names;
  }
  if (db->pfam_labels[f]) return;
  db->pfam_labels[f] = ps_xmalloc(nl + 1);
  memcpy(db->pfam_labels[f], name, nl);
  db->pfam_labels[f][nl] = 0;
}

static const char *trim(const char *s, const char *e, size_t *len) {
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '.')) e--;
  *len = (size_t)(e - s);
  return s;
}

static int read_table(interp_db_t *db, const char *path, ps_err_t *err) {
  ps_lines_t *r = NULL;
  int rc = ps_lines_open(&r, path, 1 << 20, err);
  char *line;
  size_t len;
  while (rc >= 0 && (rc = ps_lines_next(r, &line, &len, err)) == 1) {
    if (!len || line[0] == '#') continue;
    char *t1 = memchr(line, '\t', len);
    if (strncmp(line, "PF", 2)) {
      if (ps_lines_lineno(r) == 1) continue;  // a header
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: a Pfam id (PF...) expected first", path,
                      (unsigned long long)ps_lines_lineno(r));
      break;
    }
    if (!t1) {
      rc = ps_err_set(err, PS_EFORMAT, "%s: line %llu: 'PFxxxxx<TAB>name' expected", path,
                      (unsigned long long)ps_lines_lineno(r));
      break;
    }
    char *t2 = memchr(t1 + 1, '\t', (size_t)(line + len - t1 - 1));
    size_t nl;
    const char *nm = trim(t1 + 1, t2 ? t2 : line + len, &nl);
    set_label(db, line, (size_t)(t1 - line), nm, nl);
  }
  ps_lines_close(&r);
  return rc < 0 ? rc : 0;
}

// `DR   Pfam; PF00001; 7tm_1; 1.`
static int read_flat(interp_db_t *db, const char *path, ps_err_t *err) {
  ps_lines_t *r = NULL;
  int rc = ps_lines_open(&r, path, 1 << 20, err);
  char *line;
  size_t len;
  while (rc >= 0 && (rc = ps_lines_next(r, &line, &len, err)) == 1) {
    if (len < 11 || memcmp(line, "DR   Pfam;", 10)) continue;
    const char *e = line + len, *a = line + 10;
    const char *s1 = memchr(a, ';', (size_t)(e - a));
    if (!s1) continue;
    const char *s2 = memchr(s1 + 1, ';', (size_t)(e - s1 - 1));
    size_t il, nl;
    const char *id = trim(a, s1, &il), *nm = trim(s1 + 1, s2 ? s2 : e, &nl);
    set_label(db, id, il, nm, nl);
  }
  ps_lines_close(&r);
  return rc < 0 ? rc : 0;
}

int interp_pfam_load(interp_db_t *db, const char *names_tsv, const char *flat_list, size_t *n_named, ps_err_t *err) {
  *n_named = 0;
  int rc = 0;
  if (names_tsv && names_tsv[0] && (rc = read_table(db, names_tsv, err)) < 0) return rc;
  const char *p = flat_list ? flat_list : "";
  while (*p) {
    size_t l = strcspn(p, ";");
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)(l < sizeof path - 1 ? l : sizeof path - 1), p);
    if (l && (rc = read_flat(db, path, err)) < 0) return rc;
    p += l + (p[l] == ';');
  }
  for (size_t i = 0; i < db->n_pfam_labels; i++) *n_named += db->pfam_labels[i] != NULL;
  return 0;
}

const char *interp_pfam_label(const interp_db_t *db, int32_t f) {
  return f >= 0 && (size_t)f < db->n_pfam_labels ? db->pfam_labels[f] : NULL;
}
