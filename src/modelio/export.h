/* export.h — sub-networks of a training checkpoint written as standalone ViT files: what
 * poa-extract does for each --subnet (docs/algorithm.md §10; format:
 * hdf5-schemas/extracted-model.md).
 *
 * For (width d, depth L): poa_extract_subnet cuts the model out of the source's weights (blocks
 * selected and renumbered 0…L−1, α = D_max/d folded into the qkv, proj, fc1 and fc2 weights,
 * the final LayerNorm and mask_token kept, heads dropped), and each requested format is written
 * atomically as DIR/vit_<d>x<L>.h5 and DIR/vit_<d>x<L>.safetensors, with the metadata of
 * poa_extracted_meta (shape, selected blocks, source file and iteration, the run's
 * configuration, poa version).
 */
#ifndef POA_MODELIO_EXPORT_H
#define POA_MODELIO_EXPORT_H

#include "io/extracted.h"
#include "modelio/model_source.h"

/* "vit_<width>x<depth>" */
void poa_export_basename(int width, int depth, char *buf, size_t n);
/* The metadata of sub-network sn of src (a checkpoint source), created now; config_yaml points
 * into src. */
void poa_export_meta(const poa_model_source *src, const poa_subnet *sn, poa_extracted_meta *meta);

/* Extract sub-network (width, depth) of src (a checkpoint source; the pair must be one of its
 * poa_model_source_subnets) and write it in every format of the bit set `formats`
 * (poa_file_format) into dir (created if needed).  paths (may be NULL) receives the files
 * written, in the order h5, safetensors.  POA_ERR_ARG for a pair outside the source's grid,
 * POA_ERR_IO naming the file that could not be written (no partial file is left). */
poa_status poa_export_subnet(const poa_model_source *src, int width, int depth, const char *dir,
                             unsigned formats, char (*paths)[POA_IO_PATH_MAX], poa_err *err);

#endif
