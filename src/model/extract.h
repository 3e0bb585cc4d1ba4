/* extract.h — a sub-network as a standalone ViT (docs/algorithm.md §10).
 *
 * For (width d, depth L): blocks selected by docs/algorithm.md §3.3 and renumbered 0…L−1, every
 * tensor sliced as in docs/algorithm.md §3.2 with α = D_max/d folded into the qkv, proj, fc1 and
 * fc2 weights (W' = α·W in fp32, as the official tool computes it), biases / LayerNorms /
 * LayerScale / tokens / patch embedding only sliced, the final norm kept (sliced; docs/algorithm.md
 * §10 — the official tool drops it), heads dropped.  The result is described by a model built from
 * an "extracted" config (official extracted key names of §10: `blocks.j.attn.qkv.weight`,
 * `norm.weight`, no module prefix) and runs through the same forward as any model (its only
 * sub-network is the intact one, α = 1).  Invariant (tested): elastic forward on the full weights =
 * forward of the extracted model.
 *
 * Extraction works on host memory: it is an offline step between a checkpoint read and a
 * checkpoint write.
 */
#ifndef POA_MODEL_EXTRACT_H
#define POA_MODEL_EXTRACT_H

#include "model/model.h"

/* How one standalone tensor is cut out of the intact one: `groups` chunks (3 for qkv, else 1)
 * of rows × cols, chunk g starting at src + g·group_stride, rows ld_src apart, times scale. */
typedef struct poa_extract_map {
    size_t src, dst; /* offsets (floats) in the intact / standalone flat buffers */
    int groups;
    size_t group_stride; /* floats */
    int rows, cols, ld_src;
    float scale; /* α for the sliceable linear weights of the blocks, else 1 */
} poa_extract_map;

/* The standalone config of sub-network (width, depth) of cfg. */
poa_status poa_extract_config(const poa_model_config *cfg, int width, int depth,
                              poa_model_config *out, poa_err *err);
/* The shape of a standalone ViT: what an extracted-model file records about its model
 * (hdf5-schemas/extracted-model.md). */
typedef struct poa_vit_shape {
    int width, depth, head_dim, mlp_ratio, patch_size, img_size, in_chans;
    float ln_eps;
} poa_vit_shape;
/* The "extracted" config of a standalone ViT of that shape (one width, one depth, no heads;
 * crops planned at img_size), checked by poa_model_config_validate: the same config
 * poa_extract_config gives for that sub-network, up to the fields only training uses. */
poa_status poa_extract_config_of_shape(const poa_vit_shape *shape, poa_model_config *out,
                                       poa_err *err);
/* One map per tensor of `out` (built from poa_extract_config), in table order; returns count. */
int poa_extract_maps(const poa_model *m, const poa_model *out, const poa_subnet *sn,
                     poa_extract_map *maps, int cap);
/* Build `out` (caller frees with poa_model_free) and write its parameters into *out_host
 * (malloc'ed, out->table.total floats) from the intact parameters src_host. */
poa_status poa_extract_subnet(const poa_model *m, const float *src_host, int width, int depth,
                              poa_model *out, float **out_host, poa_err *err);

#endif
