/* step_layout.h — where the buffers of a POA step live (internal to src/train: step.c creates the
 * buffers from it, step_memory.c computes it; poa_step_memory_plan reports it).
 *
 * Three kinds of memory (src/train/README.md, "Memory"):
 *  - buffers that live for the whole run: parameters, gradients, moments, teacher, compute copies,
 *    prototypes, the teacher targets, small index and mask arrays;
 *  - the four student calls' arenas: what backward reads, written by the forward;
 *  - one shared region, used in turn by three phases of every step that never overlap on the
 *    compute stream: the teacher (its backbone workspace, then its head workspace at the same
 *    place, the gathered rows after them), the students' backbone transients (every call's
 *    scratch, forward and backward), and the heads' working set (logits, head activations, head
 *    inputs and their gradients, loss scratch).
 */
#ifndef POA_TRAIN_STEP_LAYOUT_H
#define POA_TRAIN_STEP_LAYOUT_H

#include "model/vit.h"
#include "train/step.h"

enum {
    POA_STEP_CALL_IS_GLOBAL,
    POA_STEP_CALL_IS_LOCAL,
    POA_STEP_CALL_ES_GLOBAL,
    POA_STEP_CALL_ES_LOCAL,
    POA_STEP_N_CALLS
};

typedef struct poa_step_layout {
    poa_step_memory mem;
    int nm_max;   /* masked patches per group                               */
    int rows_max; /* student rows per group: n_cls + nm_max                  */
    int n_cls;    /* class-token rows per group: (2 + V)·B                   */
    int Kmax;     /* largest head                                            */
    int t_rows;   /* teacher head rows of one call: max(G·2B, G·nm_max)      */
    poa_vit_plan teacher;
    poa_vit_plan call[POA_STEP_N_CALLS];
    int (*es_shapes)[2]; /* the elastic candidates (NULL: intact network)    */
    int n_es_shapes;
    /* byte offsets in the shared region */
    size_t t_z, t_zp;              /* teacher phase (workspaces at 0)   */
    size_t lg_a, lg_b, lg_cls, ha; /* heads phase                       */
    size_t z_is, z_es, dz_is, dz_es, loss_scratch, koleo;
} poa_step_layout;

void poa_step_layout_make(const poa_backend *be, const poa_model *m, const poa_step_config *cfg,
                          poa_step_layout *L);
void poa_step_layout_free(poa_step_layout *L);

/* Bytes of a backend allocation of `bytes` as the step makes it (0 becomes 16). */
static inline size_t poa_step_alloc_size(size_t bytes)
{
    return bytes ? bytes : 16;
}

#endif
