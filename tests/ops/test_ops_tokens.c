/* test_ops_tokens.c — the CPU backend's position-embedding resampling against PyTorch: the
 * forward and backward of F.interpolate(..., mode="bicubic") in torch's fp32 CPU kernel (values
 * from tests/reference/pos_resample_ref.py, in pos_resample_ref.h), with which backend.h says
 * the CPU backend's tap weights are bit-identical.  The token ops' contract (patch_unfold,
 * tokens_fwd/bwd, pos_resample against the naive reference, the constant grid, the adjoint
 * identity, finite differences) is tested by tests/ops/test_backend_ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ops_test_util.h"
#include "pos_resample_ref.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Against F.interpolate(..., scale_factor=((h0+0.1)/M, (w0+0.1)/M), mode="bicubic") in torch's
 * fp32 CPU kernel: inputs rebuilt from the closed forms of pos_resample_ref.py. */
static void check_vs_torch(int M, int h0, int w0, int d, const float *ref_out,
                           const float *ref_grad)
{
    poa_backend *be = cpu_backend();
    const int nout = h0 * w0;
    float *src = poa_xmalloc(sizeof(float) * (size_t) M * M * d);
    float *wgt = poa_xmalloc(sizeof(float) * (size_t) nout * d);
    float *out = poa_xmalloc(sizeof(float) * (size_t) nout * d);
    float *grad = poa_xcalloc((size_t) M * M * d, sizeof(float));
    for (int k = 0; k < M * M; k++)
        for (int c = 0; c < d; c++) src[k * d + c] = (float) (sin(0.37 * k + 1.3 * c) + 0.01 * k);
    for (int o = 0; o < nout; o++)
        for (int c = 0; c < d; c++) wgt[o * d + c] = (float) cos(0.23 * o - 0.7 * c);
    be->nn->pos_resample_fwd(be, out, d, src, d, M, h0, w0, d);
    be->nn->pos_resample_bwd(be, grad, d, wgt, d, M, h0, w0, d);
    double *dref = to_double(ref_out, (size_t) nout * d);
    double *dgref = to_double(ref_grad, (size_t) M * M * d);
    char what[96];
    snprintf(what, sizeof what, "pos_resample_fwd %d -> %dx%d vs torch", M, h0, w0);
    /* bit-identical weights; the 16-term sums are rounded in a different order than torch's
     * vectorised loop, so values agree to a few ulp of the terms (|terms| ≲ 1) */
    assert_true(close_all(what, out, dref, (size_t) nout * d, 2.5e-7, 2.5e-7));
    /* torch's backward kernel rounds its source coordinates differently from its forward (its
     * weights differ from the forward's by up to 7e-7); ours is the exact adjoint of our
     * forward, so the gradients agree to ~1e-6 of their terms only */
    snprintf(what, sizeof what, "pos_resample_bwd %d -> %dx%d vs torch", M, h0, w0);
    assert_true(close_all(what, grad, dgref, (size_t) M * M * d, 2e-6, 1e-6));
    int exact = 0;
    for (int i = 0; i < nout * d; i++) exact += out[i] == ref_out[i];
    printf("pos_resample %d -> %dx%d: %d of %d outputs bit-identical to torch\n", M, h0, w0, exact,
           nout * d);
    free(src), free(wgt), free(out), free(grad), free(dref), free(dgref);
    poa_backend_destroy(be);
}

static void test_pos_resample_vs_torch(void **state)
{
    (void) state;
    check_vs_torch(14, 6, 6, 2, ref_out_m14_6x6_d2, ref_grad_m14_6x6_d2);
    check_vs_torch(4, 2, 2, 3, ref_out_m4_2x2_d3, ref_grad_m4_2x2_d3);
    check_vs_torch(14, 6, 9, 1, ref_out_m14_6x9_d1, ref_grad_m14_6x9_d1);
    check_vs_torch(3, 5, 4, 2, ref_out_m3_5x4_d2, ref_grad_m3_5x4_d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pos_resample_vs_torch),
    };
    return cmocka_run_group_tests_name("ops_tokens", tests, NULL, NULL);
}
