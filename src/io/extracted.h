/* extracted.h — extracted-model files: one standalone ViT (a sub-network cut out of a POA
 * teacher by poa-extract), in HDF5 or in safetensors, with the same tensors and the same
 * metadata in both (format: hdf5-schemas/extracted-model.md).
 *
 * Tensors are the parameters of a standard DINOv2/timm ViT: names without module prefix and
 * without the `.linear.`/`.norm.` wrapper levels of the training model (`cls_token`,
 * `blocks.0.attn.qkv.weight`, `norm.weight`, ...), PyTorch shapes, float32, in the order of the
 * parameter table that describes the model (the caller's; this layer does not know the model).
 *
 *   HDF5 (".h5"):        root attributes = the metadata; /config = the training configuration
 *                        (YAML text); /state_dict/<name> = the tensors (Fletcher-32 checksums).
 *   safetensors:         "__metadata__" = the same metadata as strings, the configuration
 *                        under "config_yaml", plus "format": "pt" (the safetensors convention
 *                        that PyTorch tools check); tensors in the data buffer (safetensors.h).
 *
 * Writing is atomic (temporary file, fsync, rename: a failure leaves no file and the message
 * names the path).  Reading detects the container from the first bytes, checks the format name
 * and version (POA_ERR_VERSION names the poa version that wrote a file of another version),
 * reads the metadata (poa_extracted_read_meta), then the tensors into a table the caller built
 * from that metadata (poa_extracted_load).  All functions return a poa_status and fill err.
 */
#ifndef POA_IO_EXTRACTED_H
#define POA_IO_EXTRACTED_H

#include "common/arch.h"
#include "common/atomic_io.h"
#include "common/poa_error.h"
#include "tensor/params.h"

#include <stddef.h>
#include <stdint.h>

#define POA_EXTRACTED_FORMAT_NAME    "poa-extracted-model"
#define POA_EXTRACTED_FORMAT_VERSION 1
/* The largest width, head dimension, MLP ratio, patch or image side and channel count a reader
 * accepts (depths: POA_ARCH_MAX_DEPTH): far above any ViT, low enough that no shape computed
 * from them overflows.  The model's parameters must also fit in the file (modelio). */
#define POA_EXTRACTED_MAX_DIM 32768

/* Containers poa reads and writes models in (a bit set for "which ones to write"). */
typedef enum poa_file_format {
    POA_FILE_H5 = 1,          /* HDF5, ".h5"                  */
    POA_FILE_SAFETENSORS = 2, /* safetensors, ".safetensors" */
} poa_file_format;

const char *poa_file_format_name(poa_file_format f);   /* "h5", "safetensors"  */
const char *poa_file_format_suffix(poa_file_format f); /* ".h5", ".safetensors" */
/* Which container path holds, from its first bytes: HDF5 signature, or a safetensors header
 * length followed by '{'.  POA_ERR_NOTFOUND / POA_ERR_IO when it cannot be read,
 * POA_ERR_FORMAT when it is neither. */
poa_status poa_file_detect(const char *path, poa_file_format *fmt, poa_err *err);

/* The container and the poa format name of path ("poa-checkpoint", "poa-extracted-model";
 * "" when the file has none: an HDF5 file without a 'format' attribute, a safetensors file
 * without 'poa_format' metadata).  POA_ERR_FORMAT when the file cannot be opened as its
 * container (truncated, corrupt). */
poa_status poa_file_identify(const char *path, poa_file_format *container, char *format, size_t n,
                             poa_err *err);

/* What an extracted file says about its model and where it came from.  Field names are the
 * attribute / metadata keys (hdf5-schemas/extracted-model.md). */
typedef struct poa_extracted_meta {
    /* the standalone ViT */
    int embed_dim;  /* width d                                         */
    int depth;      /* blocks L                                        */
    int num_heads;  /* d / head_dim                                    */
    int head_dim;   /* Dh                                              */
    int mlp_ratio;  /* MLP width = mlp_ratio · d                       */
    int patch_size; /* P                                               */
    int img_size;   /* side the pos_embed grid is built for            */
    int in_chans;   /* C                                               */
    double ln_eps;  /* LayerNorm eps of every norm                     */
    /* where it came from */
    int blocks[POA_ARCH_MAX_DEPTH]; /* blocks[j]: intact block index that became block j   */
    char source_checkpoint[POA_IO_PATH_MAX];
    int64_t source_iteration; /* last completed iteration of that checkpoint            */
    char source_weights[16];  /* "teacher" or "student"                                 */
    char source_arch[32];     /* student.arch of the run                                */
    int source_embed_dim;     /* D_max of the run                                       */
    int source_depth;         /* L_max of the run                                       */
    double alpha;             /* D_max / d, folded into qkv, proj, fc1, fc2             */
    char program_version[64]; /* the poa that wrote the file                            */
    char created[32];         /* UTC, ISO 8601                                          */
    char *config_yaml;        /* the run's configuration (malloc'ed on read; the writer's
                                 string is only read)                                    */
} poa_extracted_meta;

/* Write table t (data buf + p[i].offset) and meta to path in format fmt (created and
 * program_version are filled in when empty).  POA_ERR_IO naming path on failure. */
poa_status poa_extracted_write(const char *path, poa_file_format fmt, const poa_param_table *t,
                               const float *buf, const poa_extracted_meta *meta, poa_err *err);

/* Detect the container, check the format name and version, read the metadata (no tensors)
 * and check it: every size in [1, POA_EXTRACTED_MAX_DIM], depth in [1, POA_ARCH_MAX_DEPTH],
 * embed_dim = num_heads · head_dim, the source at least as wide and deep, `blocks` increasing
 * intact-block indices, ln_eps and alpha positive and finite (POA_ERR_FORMAT naming the key and
 * its value otherwise).  fmt may be NULL.  Free with poa_extracted_meta_free. */
poa_status poa_extracted_read_meta(const char *path, poa_file_format *fmt, poa_extracted_meta *meta,
                                   poa_err *err);
/* Read every tensor of table t into buf (strict: each tensor present with the table's shape,
 * no other tensor in the file; HDF5 checksums verified). */
poa_status poa_extracted_load(const char *path, const poa_param_table *t, float *buf, poa_err *err);
void poa_extracted_meta_free(poa_extracted_meta *meta);

#endif
