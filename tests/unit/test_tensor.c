/* test_tensor.c — the generic parameter table: offsets, alignment, lookup, buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "tensor/params.h"
#include "tensor/tensor.h"

static void test_offsets_are_aligned_and_disjoint(void **state)
{
    (void) state;
    poa_param_table t;
    poa_params_init(&t);
    int64_t s1[] = {3};
    int64_t s2[] = {17, 5};
    int64_t s3[] = {2, 3, 4, 5};
    poa_params_add(&t, "backbone", "a", 1, s1, -1, 0, POA_INIT_ZERO, 0, POA_PF_NO_WD, 1, 0);
    poa_params_add(&t, "backbone", "blocks.0.b", 2, s2, 0, 1, POA_INIT_TRUNC_NORMAL, 0.02, 0, 0.5f,
                   1);
    poa_params_add(&t, "dino_head", "c", 4, s3, -1, 2, POA_INIT_ONE, 0, POA_PF_HEAD, 1, 1);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.p[1].numel, 85);
    assert_int_equal(t.p[2].numel, 120);
    for (int i = 0; i < t.n; i++) {
        assert_int_equal(t.p[i].offset % POA_PARAM_ALIGN_FLOATS, 0);
        if (i) assert_true(t.p[i].offset >= t.p[i - 1].offset + t.p[i - 1].numel);
    }
    assert_true(t.total == t.p[2].offset + 120);
    assert_int_equal(poa_params_find(&t, "blocks.0.b"), 1);
    assert_int_equal(poa_params_find(&t, "nope"), -1);
    size_t b, e;
    poa_params_bucket_range(&t, 1, &b, &e);
    assert_int_equal(b, t.p[1].offset);
    assert_int_equal(e, t.p[1].offset + 85);
    assert_int_equal(t.n_buckets, 3);
    char buf[64];
    poa_params_shape_str(&t.p[2], buf, sizeof buf);
    assert_string_equal(buf, "[2, 3, 4, 5]");
    poa_params_free(&t);
}

static void test_mat_slice(void **state)
{
    (void) state;
    float buf[6 * 8];
    poa_mat m = poa_mat_make(buf, 6, 8, 8);
    poa_mat s = poa_mat_slice(m, 2, 3, 4, 5);
    assert_ptr_equal(s.p, buf + 2 * 8 + 3);
    assert_int_equal(s.ld, 8);
    assert_int_equal(s.rows, 4);
    assert_int_equal(s.cols, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets_are_aligned_and_disjoint),
        cmocka_unit_test(test_mat_slice),
    };
    return cmocka_run_group_tests_name("tensor", tests, NULL, NULL);
}
