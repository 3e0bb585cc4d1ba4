/* scan.h — reading the upstream ImageNet layout (docs/algorithm.md §9.3, upstream README):
 *
 *   ROOT/labels.txt                  one CSV line "wnid,class name" per class
 *   ROOT/train/<wnid>/<file>.JPEG    class folders (train, val)
 *   ROOT/test/<file>.JPEG            no class folders (test)
 *
 * in exactly the order torchvision's ImageFolder (used by the official dump_extra) lists it:
 * class folders sorted by name give the class indices; within a class, os.walk(followlinks=True)
 * roots sorted, files sorted by name; only names with an image extension (IMG_EXTENSIONS,
 * case-insensitive) count.  The index of a file in that order is its global id.
 */
#ifndef POA_DATA_SCAN_H
#define POA_DATA_SCAN_H

#include "common/poa_error.h"
#include "data/data_util.h"

#include <stdint.h>

typedef struct poa_labels {
    poa_strtab wnids, names; /* in file order */
    size_t *by_wnid;         /* row indices sorted by wnid (lookups in O(log n)) */
} poa_labels;

/* Parse ROOT/labels.txt (Python csv semantics: quotes, doubled quotes; blank lines ignored).
 * POA_ERR_NOTFOUND when missing, POA_ERR_FORMAT (with the line number) when a row does not have
 * exactly two fields, a wnid is empty or repeated, a line is longer than
 * POA_LABELS_MAX_LINE bytes or holds a NUL byte (Python's csv refuses those too), or there are
 * no rows.  Time O(n log n) in the rows. */
#define POA_LABELS_MAX_LINE 4095
poa_status poa_labels_read(const char *path, poa_labels *l, poa_err *err);
void poa_labels_free(poa_labels *l);
/* Name of wnid, or NULL when labels.txt has no row for it. */
const char *poa_labels_lookup(const poa_labels *l, const char *wnid);

typedef struct poa_scan_split {
    char name[16];
    int labeled;            /* 0 for test */
    poa_strtab classes;     /* sorted class folder names (wnids)            */
    poa_strtab class_names; /* names from labels.txt, "" when missing        */
    poa_strtab files;       /* relative to ROOT/<split>, ImageFolder order   */
    int32_t *labels;        /* class index per file, -1 for test             */
    int64_t *sizes;         /* st_size, -1 when stat() fails                 */
    int64_t *mtimes;        /* st_mtime in ns, 0 when stat() fails           */
    size_t cap;
    poa_strtab unlabeled_classes; /* class folders without a labels.txt row      */
    poa_strtab empty_classes;     /* class folders without image files           */
    poa_strtab ignored;           /* entries not taken: "<path>: <reason>"       */
} poa_scan_split;

void poa_scan_split_free(poa_scan_split *s);

/* Scan ROOT/<split>.  POA_ERR_NOTFOUND when the folder is missing, POA_ERR_FORMAT when it holds
 * no class folder (train/val) or no image file. */
poa_status poa_scan_split_dir(const char *root, const char *split, const poa_labels *labels,
                              poa_scan_split *out, poa_err *err);

/* Whether a file name has one of torchvision's IMG_EXTENSIONS (case-insensitive). */
int poa_has_image_extension(const char *name);

/* The official actual_index: the integer after the last '_' of the file stem (UINT32_MAX when
 * there is none). */
uint32_t poa_actual_index(const char *file_name);

#endif
