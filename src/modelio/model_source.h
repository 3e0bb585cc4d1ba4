/* model_source.h — a model read from a file: a POA training checkpoint or an extracted model,
 * as the model library describes it (a poa_model with its parameter table) plus fp32 host
 * weights and where they came from.  This is the layer poa-extract and the evaluation programs
 * stand on; it links model, io, backend and common, not train (src/modelio/README.md).
 *
 *     poa_model_source src;
 *     if (poa_model_source_open(path, POA_FROM_TEACHER, &src, &err) != POA_OK) ... exit 3;
 *     // src.model: checkpoint → the run's elastic model (backbone + heads; every sub-network
 *     //            of poa_model_source_subnets runs on it as a view, α in the GEMMs);
 *     //            extracted file → the standalone ViT (cfg.extracted = 1, no heads; its one
 *     //            sub-network is itself, α = 1)
 *     // src.params: host fp32, src.model.table.total floats (parameter i at p[i].offset)
 *     poa_model_source_close(&src);
 *
 * A checkpoint's model is rebuilt from the configuration stored in it (/config: the YAML of
 * the run, loaded and finalized like the trainer's, then poa_model_config_from_config) and
 * checked against its /model description (poa_model_ckpt_meta); the tensors are then read and
 * checked (names, shapes, checksums) by the checkpoint reader.  An extracted file's model is
 * built from its metadata (width, depth, head_dim, patch and image size, mlp ratio, eps) and
 * checked by the one model-shape check (poa_model_config_validate).
 *
 * Errors: POA_ERR_NOTFOUND (no such file, no checkpoint in a directory, a missing tensor),
 * POA_ERR_FORMAT (truncated or corrupt file, shapes, metadata that contradicts the stored
 * configuration), POA_ERR_VERSION (another format or format version), POA_ERR_ARG (the file
 * cannot give what was asked: student weights of a teacher-only checkpoint).  Every message
 * names the file.  For a program, all of them are exit code 3 except POA_ERR_ARG (2).
 */
#ifndef POA_MODELIO_MODEL_SOURCE_H
#define POA_MODELIO_MODEL_SOURCE_H

#include "common/poa_error.h"
#include "io/checkpoint.h"
#include "io/extracted.h"
#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

/* Which weights of a training checkpoint (poa-extract --from): the EMA teacher, as the paper
 * and the official tools extract, or the student (intact weights). */
typedef enum poa_weights_from { POA_FROM_TEACHER = 0, POA_FROM_STUDENT = 1 } poa_weights_from;
const char *poa_weights_from_name(poa_weights_from from); /* "teacher", "student" */
/* "teacher" / "student" → *from; POA_ERR_ARG naming the value otherwise. */
poa_status poa_weights_from_parse(const char *text, poa_weights_from *from, poa_err *err);

typedef enum poa_source_kind {
    POA_SOURCE_CHECKPOINT = 1, /* poa-checkpoint (full or teacher-only evaluation file) */
    POA_SOURCE_EXTRACTED = 2,  /* poa-extracted-model, HDF5 or safetensors              */
} poa_source_kind;

typedef struct poa_model_source {
    poa_source_kind kind;
    poa_file_format container;  /* POA_FILE_H5 or POA_FILE_SAFETENSORS               */
    poa_weights_from from;      /* checkpoint: the weights read; extracted: as written */
    char path[POA_IO_PATH_MAX]; /* the file read (a directory resolves to its newest
                                   loadable checkpoint_*.h5)                         */
    poa_model model;            /* the model the weights belong to (see above)        */
    float *params;              /* host fp32, model.table.total floats (malloc'ed)    */
    int64_t iteration;          /* last completed training iteration of the weights   */
    char program_version[64];   /* the poa that wrote the file                        */
    char *config_yaml;          /* the training configuration, YAML (malloc'ed)       */
    /* checkpoints */
    int64_t world_size; /* ranks of the run that wrote it                     */
    char content[16];   /* "full" or "teacher"                                */
    /* extracted files: their metadata (config_yaml is moved to the field above) */
    poa_extracted_meta extracted;
} poa_model_source;

/* Open path: a checkpoint file, a run directory (its newest checkpoint_*.h5 that loads; files
 * that fail are skipped with a warning naming them and why) or an extracted model (.h5 or
 * .safetensors; `from` is ignored).  On failure *src is empty (closing it is allowed). */
poa_status poa_model_source_open(const char *path, poa_weights_from from, poa_model_source *src,
                                 poa_err *err);
void poa_model_source_close(poa_model_source *src);

/* The sub-networks the source offers, widths outer and depths inner, ascending: a checkpoint's
 * elastic widths × depths (the trained grid), an extracted model's single (width, depth).
 * Writes at most cap; returns the count. */
int poa_model_source_subnets(const poa_model_source *src, poa_subnet *out, int cap);
/* Whether (width, depth) is one of them; POA_ERR_ARG naming the value and listing the elastic
 * widths and depths otherwise. */
poa_status poa_model_source_subnet(const poa_model_source *src, int width, int depth,
                                   poa_subnet *sn, poa_err *err);

/* Named sizes: an architecture preset of src/common/arch.h ("vit_small", "vit_base", ...) whose
 * intact width and depth are one of the source's sub-networks and whose patch size and head
 * dimension are the source's (ViT-S/16 = 384x12 from a /16 run with heads of 64).  The
 * sub-network of `name`, or POA_ERR_ARG naming the valid names of this source ("none" when no
 * preset fits). */
poa_status poa_model_source_named(const poa_model_source *src, const char *name, poa_subnet *sn,
                                  poa_err *err);
/* "vit_small (384x12), vit_base (768x12)" or "none". */
void poa_model_source_named_list(const poa_model_source *src, char *buf, size_t n);

/* The /model description of a checkpoint (hdf5-schemas/checkpoint.md, "/model"): what the
 * trainer writes and what poa_model_source_open checks against the stored configuration. */
void poa_model_ckpt_meta(const poa_model *m, poa_ckpt_meta *meta);

#endif
