/* scan.c — see scan.h. */
#include "data/scan.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ labels.txt */
void poa_labels_free(poa_labels *l)
{
    poa_strtab_free(&l->wnids);
    poa_strtab_free(&l->names);
    free(l->by_wnid);
    l->by_wnid = NULL;
}

/* Split one CSV record (Python csv, default dialect) into fields; returns the field count or -1
 * on an unterminated quote.  Fields are copied into f[0..1] (at most 2 kept). */
static int csv_fields(const char *line, char f[2][POA_LABELS_MAX_LINE + 1])
{
    int nf = 0;
    const char *p = line;
    for (;;) {
        char buf[POA_LABELS_MAX_LINE + 1]; /* a field is never longer than its line */
        size_t k = 0;
        if (*p == '"') {
            p++;
            for (;;) {
                if (*p == '\0') return -1;
                if (*p == '"' && p[1] == '"') {
                    if (k < sizeof buf - 1) buf[k++] = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    if (k < sizeof buf - 1) buf[k++] = *p;
                    p++;
                }
            }
            while (*p && *p != ',') { /* text after a closing quote is kept, as csv does */
                if (k < sizeof buf - 1) buf[k++] = *p;
                p++;
            }
        } else {
            while (*p && *p != ',') {
                if (k < sizeof buf - 1) buf[k++] = *p;
                p++;
            }
        }
        buf[k] = '\0';
        if (nf < 2) snprintf(f[nf], POA_LABELS_MAX_LINE + 1, "%s", buf);
        nf++;
        if (*p != ',') break;
        p++;
    }
    return nf;
}

typedef struct row_ref {
    const char *wnid;
    size_t row;
} row_ref;

static int cmp_rows(const void *a, const void *b)
{
    const row_ref *x = a, *y = b;
    int c = strcmp(x->wnid, y->wnid);
    return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Index the rows by wnid; a repeated wnid is an error naming both lines. */
static poa_status index_rows(poa_labels *l, const int *lines, const char *path, poa_err *err)
{
    size_t n = l->wnids.n;
    row_ref *refs = poa_xmalloc((n ? n : 1) * sizeof *refs);
    for (size_t i = 0; i < n; i++) refs[i] = (row_ref){poa_strtab_get(&l->wnids, i), i};
    qsort(refs, n, sizeof *refs, cmp_rows);
    poa_status st = POA_OK;
    for (size_t k = 1; k < n && st == POA_OK; k++)
        if (strcmp(refs[k - 1].wnid, refs[k].wnid) == 0)
            st = poa_err_set(err, POA_ERR_FORMAT,
                             "%s:%d: class id '%s' appears twice (first at line %d)", path,
                             lines[refs[k].row], refs[k].wnid, lines[refs[k - 1].row]);
    l->by_wnid = poa_xmalloc((n ? n : 1) * sizeof *l->by_wnid);
    for (size_t k = 0; k < n; k++) l->by_wnid[k] = refs[k].row;
    free(refs);
    return st;
}

/* One line (without its end of line) into a row. */
static poa_status parse_row(poa_labels *l, const char *p, const char *path, int lineno,
                            poa_err *err)
{
    char fields[2][POA_LABELS_MAX_LINE + 1];
    int nf = csv_fields(p, fields);
    if (nf != 2)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s:%d: %s (expected exactly two CSV fields 'wnid,class name'; quote "
                           "names that contain a comma)",
                           path, lineno, nf < 0 ? "unterminated quote" : "wrong number of fields");
    if (fields[0][0] == '\0')
        return poa_err_set(err, POA_ERR_FORMAT, "%s:%d: empty class id", path, lineno);
    poa_strtab_push(&l->wnids, fields[0]);
    poa_strtab_push(&l->names, fields[1]);
    return POA_OK;
}

poa_status poa_labels_read(const char *path, poa_labels *l, poa_err *err)
{
    poa_strtab_init(&l->wnids);
    poa_strtab_init(&l->names);
    l->by_wnid = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return poa_err_set(err, errno == ENOENT ? POA_ERR_NOTFOUND : POA_ERR_IO,
                           "%s: cannot open: %s (expected one CSV line 'wnid,class name' per "
                           "class, see data-prep/README.md)",
                           path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, *lines = NULL;
    size_t lines_cap = 0;
    poa_status st = POA_OK;
    ssize_t len;
    while (st == POA_OK && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (len > POA_LABELS_MAX_LINE) {
            st = poa_err_set(err, POA_ERR_FORMAT, "%s:%d: line too long (%zd bytes, at most %d)",
                             path, lineno, len, POA_LABELS_MAX_LINE);
            break;
        }
        if (memchr(line, '\0', (size_t) len)) {
            st = poa_err_set(err, POA_ERR_FORMAT, "%s:%d: line contains a NUL byte", path, lineno);
            break;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *p = line;
        if (lineno == 1 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3; /* UTF-8 BOM */
        if (*p == '\0') continue;
        if (l->wnids.n == lines_cap) {
            lines_cap = lines_cap ? 2 * lines_cap : 1024;
            lines = poa_xrealloc(lines, lines_cap * sizeof *lines);
        }
        lines[l->wnids.n] = lineno;
        st = parse_row(l, p, path, lineno, err);
    }
    free(line);
    fclose(f);
    if (st == POA_OK && l->wnids.n == 0)
        st = poa_err_set(err, POA_ERR_FORMAT,
                         "%s: no class rows (expected 'wnid,class name' lines)", path);
    if (st == POA_OK) st = index_rows(l, lines, path, err);
    free(lines);
    if (st != POA_OK) poa_labels_free(l);
    return st;
}

typedef struct lookup_key {
    const char *wnid;
    const poa_labels *l;
} lookup_key;

static int cmp_key(const void *key, const void *row)
{
    const lookup_key *k = key;
    return strcmp(k->wnid, poa_strtab_get(&k->l->wnids, *(const size_t *) row));
}

const char *poa_labels_lookup(const poa_labels *l, const char *wnid)
{
    if (!l->by_wnid) return NULL;
    lookup_key k = {wnid, l};
    const size_t *r = bsearch(&k, l->by_wnid, l->wnids.n, sizeof *l->by_wnid, cmp_key);
    return r ? poa_strtab_get(&l->names, *r) : NULL;
}

/* ------------------------------------------------------------------ names */
int poa_has_image_extension(const char *name)
{
    static const char *const ext[] = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                      ".pgm", ".tif",  ".tiff", ".webp"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t k = strlen(ext[i]);
        if (n >= k && strcasecmp(name + n - k, ext[i]) == 0) return 1;
    }
    return 0;
}

uint32_t poa_actual_index(const char *file_name)
{
    const char *base = strrchr(file_name, '/');
    base = base ? base + 1 : file_name;
    const char *dot = strrchr(base, '.');
    size_t stem = dot ? (size_t) (dot - base) : strlen(base);
    const char *us = NULL;
    for (size_t i = 0; i < stem; i++)
        if (base[i] == '_') us = base + i;
    const char *num = us ? us + 1 : base;
    const char *end = base + stem;
    if (num >= end) return UINT32_MAX;
    uint64_t v = 0;
    for (const char *p = num; p < end; p++) {
        if (!isdigit((unsigned char) *p)) return UINT32_MAX;
        v = v * 10 + (uint64_t) (*p - '0');
        if (v >= UINT32_MAX) return UINT32_MAX;
    }
    return (uint32_t) v;
}

/* ------------------------------------------------------------------ walking */
typedef struct entry {
    char *root; /* relative folder ("" for the split folder itself) */
    char *name;
} entry;

typedef struct entry_list {
    entry *e;
    size_t n, cap;
} entry_list;

static void entries_push(entry_list *l, const char *root, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->e = poa_xrealloc(l->e, l->cap * sizeof *l->e);
    }
    l->e[l->n].root = poa_xstrdup(root);
    l->e[l->n].name = poa_xstrdup(name);
    l->n++;
}

static void entries_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->e[i].root);
        free(l->e[i].name);
    }
    free(l->e);
    memset(l, 0, sizeof *l);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->root, y->root);
    return c ? c : strcmp(x->name, y->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Collect the files below base/rel (os.walk with followlinks=True; `depth` guards against
 * symlink loops). */
static void walk(const char *base, const char *rel, entry_list *out, int depth)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *de;
    char **subdirs = NULL;
    size_t nsub = 0, capsub = 0;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char full[8192 + 256];
        snprintf(full, sizeof full, "%s/%s", path, de->d_name);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (nsub == capsub) {
                capsub = capsub ? 2 * capsub : 8;
                subdirs = poa_xrealloc(subdirs, capsub * sizeof *subdirs);
            }
            subdirs[nsub++] = poa_xstrdup(de->d_name);
        } else {
            entries_push(out, rel, de->d_name); /* files, dangling links, FIFOs, … */
        }
    }
    closedir(d);
    for (size_t i = 0; i < nsub; i++) {
        char sub[8192];
        snprintf(sub, sizeof sub, "%s/%s", rel, subdirs[i]);
        if (depth < 32) walk(base, sub, out, depth + 1);
        free(subdirs[i]);
    }
    free(subdirs);
}

static void add_file(poa_scan_split *s, const char *root_dir, const char *rel, int32_t label)
{
    if (s->files.n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->labels = poa_xrealloc(s->labels, s->cap * sizeof *s->labels);
        s->sizes = poa_xrealloc(s->sizes, s->cap * sizeof *s->sizes);
        s->mtimes = poa_xrealloc(s->mtimes, s->cap * sizeof *s->mtimes);
    }
    size_t i = s->files.n;
    poa_strtab_push(&s->files, rel);
    s->labels[i] = label;
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", root_dir, rel);
    struct stat st;
    if (stat(full, &st) == 0) {
        s->sizes[i] = S_ISREG(st.st_mode) ? (int64_t) st.st_size : 0;
        s->mtimes[i] = (int64_t) st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    } else {
        s->sizes[i] = -1;
        s->mtimes[i] = 0;
    }
}

/* Files of one class folder (or of the test folder) in ImageFolder order. */
static size_t add_class_files(poa_scan_split *s, const char *split_dir, const char *cls,
                              int32_t label)
{
    entry_list l = {0};
    walk(split_dir, cls, &l, 0);
    if (l.n) qsort(l.e, l.n, sizeof *l.e, cmp_entry);
    size_t added = 0;
    for (size_t i = 0; i < l.n; i++) {
        char rel[8192];
        snprintf(rel, sizeof rel, "%s/%s", l.e[i].root, l.e[i].name);
        if (!poa_has_image_extension(l.e[i].name)) {
            char msg[8300];
            snprintf(msg, sizeof msg, "%s: not an image file name (ImageFolder ignores it too)",
                     rel);
            poa_strtab_push(&s->ignored, msg);
            continue;
        }
        add_file(s, split_dir, rel, label);
        added++;
    }
    entries_free(&l);
    return added;
}

static void split_init(poa_scan_split *s, const char *split)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", split);
    s->labeled = strcmp(split, "test") != 0;
    poa_strtab_init(&s->classes);
    poa_strtab_init(&s->class_names);
    poa_strtab_init(&s->files);
    poa_strtab_init(&s->unlabeled_classes);
    poa_strtab_init(&s->empty_classes);
    poa_strtab_init(&s->ignored);
}

void poa_scan_split_free(poa_scan_split *s)
{
    poa_strtab_free(&s->classes);
    poa_strtab_free(&s->class_names);
    poa_strtab_free(&s->files);
    poa_strtab_free(&s->unlabeled_classes);
    poa_strtab_free(&s->empty_classes);
    poa_strtab_free(&s->ignored);
    free(s->labels);
    free(s->sizes);
    free(s->mtimes);
    memset(s, 0, sizeof *s);
}

/* Test split: image files directly in ROOT/test, sorted by name. */
static poa_status scan_flat(poa_scan_split *s, const char *dir, poa_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return poa_err_set(err, POA_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = poa_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = poa_xstrdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (poa_has_image_extension(names[i]))
            add_file(s, dir, names[i], -1);
        else {
            char msg[4200];
            snprintf(msg, sizeof msg, "%s: not an image file name", names[i]);
            poa_strtab_push(&s->ignored, msg);
        }
        free(names[i]);
    }
    free(names);
    return POA_OK;
}

/* Train/val: class folders sorted by name; files directly in the split folder are ignored (as
 * ImageFolder does) and listed. */
static poa_status scan_classes(poa_scan_split *s, const char *dir, const poa_labels *labels,
                               poa_err *err)
{
    DIR *d = opendir(dir);
    if (!d) return poa_err_set(err, POA_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    char **cls = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                cls = poa_xrealloc(cls, cap * sizeof *cls);
            }
            cls[n++] = poa_xstrdup(de->d_name);
        } else {
            char msg[8300];
            snprintf(msg, sizeof msg, "%s: not inside a class folder (ImageFolder ignores it)",
                     de->d_name);
            poa_strtab_push(&s->ignored, msg);
        }
    }
    closedir(d);
    if (n) qsort(cls, n, sizeof *cls, cmp_str);
    for (size_t c = 0; c < n; c++) {
        const char *name = labels ? poa_labels_lookup(labels, cls[c]) : NULL;
        poa_strtab_push(&s->classes, cls[c]);
        poa_strtab_push(&s->class_names, name ? name : "");
        if (!name) poa_strtab_push(&s->unlabeled_classes, cls[c]);
        if (add_class_files(s, dir, cls[c], (int32_t) c) == 0)
            poa_strtab_push(&s->empty_classes, cls[c]);
        free(cls[c]);
    }
    free(cls);
    if (n == 0)
        return poa_err_set(err, POA_ERR_FORMAT,
                           "%s: empty split: no class folders (expected %s/<wnid>/<file>.JPEG)",
                           dir, dir);
    return POA_OK;
}

poa_status poa_scan_split_dir(const char *root, const char *split, const poa_labels *labels,
                              poa_scan_split *out, poa_err *err)
{
    split_init(out, split);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, split);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return poa_err_set(err, POA_ERR_NOTFOUND, "%s: split folder missing", dir);
    poa_status s = out->labeled ? scan_classes(out, dir, labels, err) : scan_flat(out, dir, err);
    if (s == POA_OK && out->files.n == 0)
        s = poa_err_set(err, POA_ERR_FORMAT,
                        "%s: empty split: no image files (names ending in .JPEG, .jpg, …)", dir);
    return s;
}
