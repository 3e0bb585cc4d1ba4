/* checkpoint.h — HDF5 training checkpoints (format: hdf5-schemas/checkpoint.md).
 *
 * A checkpoint holds everything needed to resume a run bit for bit: teacher, student (backbone +
 * all heads), AdamW moments and step, iteration and epoch, per-rank RNG/sampler states (opaque
 * uint64 blobs), optional named float32 state arrays (e.g. softmax centers), the effective
 * configuration (YAML text) and the model meta of docs/algorithm.md §2.8, docs/architecture.md §10.
 * Tensors are stored under their official state-dict keys
 * ("backbone.blocks.0.attn.qkv.linear.weight") with PyTorch shapes (docs/algorithm.md §2.8), so
 * `h5py` + `torch.from_numpy` load them into the official model code
 * (hdf5-schemas/load_checkpoint_example.py).
 *
 * Names, shapes and offsets come from the parameter table (tensor/params.h); data come from and
 * go to flat host buffers laid out by that table (parameter i at buf + p[i].offset).
 *
 * Writing (rank 0 only; the caller gathers the per-rank blobs with poa_comm_gather_blobs):
 *   write to "<dir>/.checkpoint_NNNNNNN.h5.tmp.<pid>", H5Fflush, close, fsync, rename to
 *   "<dir>/checkpoint_NNNNNNN.h5" (atomic on POSIX file systems), fsync the directory, then
 *   delete all but the newest `keep` checkpoints.  A crash or SIGKILL at any point leaves either
 *   the previous set of complete checkpoints or the new one; a leftover temporary file is never
 *   read and is deleted by the next write (poa_ckpt_clean_temp).
 * Reading: poa_ckpt_load_latest() tries the checkpoints newest first and falls back, with a
 *   warning, past files that are truncated, corrupt (checksum) or incomplete; a format name or
 *   version mismatch stops with POA_ERR_VERSION and says what to run.
 *
 * Resuming on many ranks: let rank 0 load, then poa_comm_broadcast_f32 the buffers and
 * poa_comm_scatter_blobs the per-rank states, rather than every rank reading the same file.
 * HDF5: when the library is not thread-safe (POA_HDF5_THREADSAFE undefined) no other thread
 * (e.g. the data loader) may call HDF5 during these functions.
 *
 * All functions return a poa_status and fill err (docs/architecture.md §11).
 */
#ifndef POA_IO_CHECKPOINT_H
#define POA_IO_CHECKPOINT_H

#include "common/poa_error.h"
#include "tensor/params.h"

#include <stddef.h>
#include <stdint.h>

#define POA_CKPT_FORMAT_NAME    "poa-checkpoint"
#define POA_CKPT_FORMAT_VERSION 1
/* Default number of resumable checkpoints kept (upstream keeps 3, docs/algorithm.md §14). */
#define POA_CKPT_KEEP_DEFAULT 3

/* ---------------------------------------------------------- model meta (docs/algorithm.md §2.8) */
/* Small key → value list written as attributes of the /model group: head_dim, patch_size,
 * img_size, embed_dim, depth, elastic_widths, elastic_depths, arch, ...  Keys are free-form
 * identifiers; a value is one int64 (scalar attribute), an int64 vector (1-D attribute, even
 * with one element) or a string. */
#define POA_META_MAX_ITEMS 32
#define POA_META_KEY_MAX   48
#define POA_META_MAX_INTS  64
#define POA_META_STR_MAX   128

typedef enum { POA_META_INT = 0, POA_META_INTS, POA_META_STRING } poa_meta_type;

typedef struct poa_meta_item {
    char key[POA_META_KEY_MAX];
    poa_meta_type type;
    int n; /* values in v (1 for POA_META_INT) */
    int64_t v[POA_META_MAX_INTS];
    char s[POA_META_STR_MAX];
} poa_meta_item;

typedef struct poa_ckpt_meta {
    int n;
    poa_meta_item item[POA_META_MAX_ITEMS];
} poa_ckpt_meta;

/* Setters replace an existing key; they are fatal on overflow (a programming error). */
void poa_meta_set_int(poa_ckpt_meta *m, const char *key, int64_t v);
void poa_meta_set_ints(poa_ckpt_meta *m, const char *key, const int64_t *v, int n);
void poa_meta_set_string(poa_ckpt_meta *m, const char *key, const char *s);
/* NULL when absent. */
const poa_meta_item *poa_meta_get(const poa_ckpt_meta *m, const char *key);

/* ------------------------------------------------------------------ contents */
/* Flat host buffers of table->total floats, parameter-table layout.  On write, NULL means "not
 * written"; on load, NULL means "not read" (and the group need not exist in the file). */
typedef struct poa_ckpt_tensors {
    float *teacher;
    float *student;
    float *adam_m; /* AdamW exp_avg    */
    float *adam_v; /* AdamW exp_avg_sq */
} poa_ckpt_tensors;

/* A named float32 array of trainer state (e.g. "dino_center_0"), stored under /state. */
typedef struct poa_ckpt_array {
    const char *name;
    float *data;
    size_t n;
} poa_ckpt_array;

/* Scalars and small state.  On write the caller fills it (pointers are borrowed); on load the
 * reader fills it and owns config_yaml / rank_state: release with poa_ckpt_header_free. */
typedef struct poa_ckpt_header {
    int64_t iteration; /* last completed iteration, 0-based (resume at iteration + 1)     */
    int64_t epoch;     /* epoch of that iteration (iteration / OFFICIAL_EPOCH_LENGTH)     */
    int64_t adam_step; /* AdamW step counter t of the last update (docs/algorithm.md §8.1) */
    int64_t world_size;
    int64_t rank_groups_per_rank; /* G per rank (docs/algorithm.md §1.2)                  */
    char program_version[64];     /* on load: the version that wrote the file             */
    char content[16];             /* on load: "full" or "teacher" (evaluation checkpoint) */
    char *config_yaml;            /* effective configuration                              */
    /* Per-rank opaque state (RNG, sampler), one uint64 blob per writing rank. */
    int n_rank_states;
    uint64_t **rank_state;
    size_t *rank_state_len;
    /* Optional trainer arrays (write: read from; load: filled by name, lengths must match). */
    int n_arrays;
    poa_ckpt_array *arrays;
    poa_ckpt_meta meta;
} poa_ckpt_header;

void poa_ckpt_header_free(poa_ckpt_header *h);

/* ------------------------------------------------------------------ writing */
typedef struct poa_ckpt_write_opts {
    int keep; /* resumable checkpoints kept after this one (0 = POA_CKPT_KEEP_DEFAULT) */
    const char *program_version; /* NULL = PACKAGE_VERSION                                       */
} poa_ckpt_write_opts;

/* Write "<dir>/checkpoint_<iteration:07>.h5" (full training state) and rotate.  The final path
 * goes to path_out when non-NULL.  Creates dir if needed. */
poa_status poa_ckpt_write(const char *dir, const poa_param_table *t, const poa_ckpt_tensors *x,
                          const poa_ckpt_header *h, const poa_ckpt_write_opts *opts, char *path_out,
                          size_t path_len, poa_err *err);

/* Write the teacher-only evaluation checkpoint "<dir>/eval/training_<iteration>/
 * teacher_checkpoint.h5" (like upstream's teacher_checkpoint.pth, docs/algorithm.md §14).  Never
 * rotated. */
poa_status poa_ckpt_write_eval(const char *dir, const poa_param_table *t, const float *teacher,
                               const poa_ckpt_header *h, const poa_ckpt_write_opts *opts,
                               char *path_out, size_t path_len, poa_err *err);

/* Delete temporary files left by interrupted writes in dir (and dir/eval/<x>/).  Rank 0 only. */
poa_status poa_ckpt_clean_temp(const char *dir, poa_err *err);

/* ------------------------------------------------------------------ reading */
typedef struct poa_ckpt_load_opts {
    int64_t expect_world_size; /* > 0: log (info) when the file was written by another size */
    int allow_extra_tensors;   /* 1: tensors in the file that the table lacks are ignored    */
} poa_ckpt_load_opts;

/* Iterations of the complete checkpoints in dir ("checkpoint_<digits>.h5"), newest first, in a
 * malloc'ed array (*its, *n); free() it.  n = 0 when there are none (not an error). */
poa_status poa_ckpt_list(const char *dir, int64_t **its, int *n, poa_err *err);

/* Path of checkpoint `iteration` in dir. */
void poa_ckpt_path(const char *dir, int64_t iteration, char *path, size_t len);

/* Read attributes, config, model meta and per-rank states of one file (no tensors). */
poa_status poa_ckpt_read_header(const char *path, poa_ckpt_header *h, poa_err *err);

/* Validate and load one checkpoint file: format name/version, every tensor of the table in
 * every requested group (non-NULL buffer in x) with the table's shape, then the data (checksums
 * verified).  h may be NULL.  On failure the buffers' contents are unspecified. */
poa_status poa_ckpt_load(const char *path, const poa_param_table *t, poa_ckpt_tensors *x,
                         poa_ckpt_header *h, const poa_ckpt_load_opts *opts, poa_err *err);

/* Load the newest loadable checkpoint of dir.  Files that fail with POA_ERR_FORMAT, POA_ERR_IO
 * or POA_ERR_NOTFOUND are skipped with a warning naming the file and the reason; a
 * POA_ERR_VERSION stops the search.  POA_ERR_NOTFOUND when dir has no checkpoint at all.
 * The loaded path goes to path_out. */
poa_status poa_ckpt_load_latest(const char *dir, const poa_param_table *t, poa_ckpt_tensors *x,
                                poa_ckpt_header *h, const poa_ckpt_load_opts *opts, char *path_out,
                                size_t path_len, poa_err *err);

#endif
