/* npy.h — the official dataset metadata files (docs/algorithm.md §9.3, ImageNet.dump_extra())
 * written from a packed folder's metadata.h5, so that the official PyTorch code can read the same
 * data set:
 *
 *   entries-<SPLIT>.npy      structured (actual_index <u4, class_index <u4, class_id <U…,
 *                            class_name <U…), one record per packed image
 *   class-ids-<SPLIT>.npy    <U…, per class index (train, val)
 *   class-names-<SPLIT>.npy  <U…, per class index (train, val)
 *
 * Byte for byte what numpy 1.24's np.save writes for these arrays (format 1.0, header padded to
 * 64 bytes including numpy's growth-axis padding; strings UTF-32LE, width = longest string in
 * code points, as dump_extra sizes them). */
#ifndef POA_DATA_NPY_H
#define POA_DATA_NPY_H

#include "common/poa_error.h"
#include "data/metadata.h"

/* m must be read with POA_META_LOAD_ENTRIES.  Creates extra_dir if needed. */
poa_status poa_metadata_export_npy(const poa_metadata *m, const char *extra_dir, poa_err *err);

#endif
