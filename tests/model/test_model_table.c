/* test_model_table.c — the one model description: configs, elastic widths/depths, block
 * selection (docs/algorithm.md §3.3), candidate counts (§3.5), parameter names/shapes/sizes
 * (§2.8, §5.4), optimizer flags (§8.2), buckets, and seeded initialisation (§2.7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static poa_model_config config(const char *arch)
{
    poa_model_config c;
    poa_err err;
    assert_int_equal(poa_model_config_from_arch(&c, arch, &err), POA_OK);
    assert_int_equal(poa_model_config_validate(&c, &err), POA_OK);
    return c;
}

static void blocks_str(int max_depth, int depth, char *buf, size_t n)
{
    int b[POA_MODEL_MAX_DEPTH];
    poa_model_block_select(max_depth, depth, b);
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < depth; i++) k += (size_t) snprintf(buf + k, n - k, i ? " %d" : "%d", b[i]);
}

/* Block selection of docs/algorithm.md §3.3 for L_max = 24, every depth. */
static void test_block_selection_vit_large(void **state)
{
    (void) state;
    static const char *expected[] = {
        /* 12 */ "0 2 4 6 8 10 12 14 16 18 20 23",
        /* 13 */ "0 1 3 5 7 9 11 13 15 17 19 21 23",
        /* 14 */ "0 1 3 5 7 8 10 12 14 15 17 19 21 23",
        /* 15 */ "0 1 3 4 6 8 9 11 13 14 16 18 19 21 23",
        /* 16 */ "0 1 3 4 6 7 9 10 12 13 15 16 18 19 21 23",
        /* 17 */ "0 1 2 4 5 7 8 10 11 12 14 15 17 18 20 21 23",
        /* 18 */ "0 1 2 4 5 6 8 9 10 12 13 14 16 17 18 20 21 23",
        /* 19 */ "0 1 2 3 5 6 7 8 10 11 12 14 15 16 17 19 20 21 23",
        /* 20 */ "0 1 2 3 4 6 7 8 9 10 12 13 14 15 16 18 19 20 21 23",
        /* 21 */ "0 1 2 3 4 5 6 8 9 10 11 12 13 14 16 17 18 19 20 21 23",
        /* 22 */ "0 1 2 3 4 5 6 7 8 9 10 12 13 14 15 16 17 18 19 20 21 23",
        /* 23 */ "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 23",
        /* 24 */ "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23",
    };
    char buf[256];
    for (int L = 12; L <= 24; L++) {
        blocks_str(24, L, buf, sizeof buf);
        if (strcmp(buf, expected[L - 12]) != 0)
            fail_msg("L=%d: got '%s', expected '%s'", L, buf, expected[L - 12]);
        /* The integer floor formula agrees for L_max = 24 (docs/algorithm.md §3.3). */
        int b[POA_MODEL_MAX_DEPTH];
        poa_model_block_select(24, L, b);
        for (int k = 0; k < L; k++) assert_int_equal(b[k], (23 * k) / (L - 1));
    }
}

static void test_block_selection_tiny(void **state)
{
    (void) state;
    char buf[64];
    blocks_str(4, 4, buf, sizeof buf);
    assert_string_equal(buf, "0 1 2 3");
    blocks_str(4, 3, buf, sizeof buf);
    assert_string_equal(buf, "0 1 3");
    blocks_str(4, 2, buf, sizeof buf);
    assert_string_equal(buf, "0 3");
    blocks_str(4, 1, buf, sizeof buf); /* numpy.linspace(0, 3, 1) = [0] */
    assert_string_equal(buf, "0");
    /* Truncation of an inexact product: linspace(0, 5, 4) = [0, 1.666.., 3.333.., 5]. */
    blocks_str(6, 4, buf, sizeof buf);
    assert_string_equal(buf, "0 1 3 5");
}

static void test_widths_depths(void **state)
{
    (void) state;
    int w[32], d[32];
    poa_model_config c = config("vit_large");
    int nw = poa_model_widths(&c, w, 32), nd = poa_model_depths(&c, d, 32);
    assert_int_equal(nw, 11);
    assert_int_equal(nd, 13);
    for (int i = 0; i < 11; i++) assert_int_equal(w[i], 384 + 64 * i);
    for (int i = 0; i < 13; i++) assert_int_equal(d[i], 12 + i);
    c = config("tiny");
    nw = poa_model_widths(&c, w, 32);
    nd = poa_model_depths(&c, d, 32);
    assert_int_equal(nw, 3);
    assert_int_equal(nd, 3);
    assert_int_equal(w[0], 32);
    assert_int_equal(w[1], 48);
    assert_int_equal(w[2], 64);
    assert_int_equal(d[0], 2);
    assert_int_equal(d[2], 4);
    c = config("demo");
    nw = poa_model_widths(&c, w, 32);
    assert_int_equal(nw, 3);
    assert_int_equal(w[0], 64);
    assert_int_equal(w[2], 128);
    /* Sub-networks and α. */
    poa_subnet sn;
    poa_err err;
    c = config("tiny");
    assert_int_equal(poa_subnet_make(&c, 48, 3, &sn, &err), POA_OK);
    assert_int_equal(sn.blocks[2], 3);
    assert_true(fabs(poa_subnet_alpha(&c, &sn) - 4.0 / 3.0) < 1e-15);
    assert_int_equal(poa_subnet_make(&c, 40, 3, &sn, &err), POA_ERR_ARG);
    assert_int_equal(poa_subnet_make(&c, 48, 5, &sn, &err), POA_ERR_ARG);
    assert_int_equal(poa_model_config_from_arch(&c, "vit_huge", &err), POA_ERR_CONFIG);
    c = config("tiny");
    c.min_embed_dim = 40;
    assert_int_equal(poa_model_config_validate(&c, &err), POA_ERR_CONFIG);
}

/* The table of docs/algorithm.md §3.5 (rows depth 12..24, columns width 384..1024) and the tiny
 * counts given there. */
static void test_candidate_counts(void **state)
{
    (void) state;
    static const int table[13][11] = {
        {9, 8, 8, 7, 7, 6, 5, 5, 4, 4, 3}, {8, 8, 7, 7, 6, 6, 5, 5, 4, 3, 3},
        {8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3}, {8, 7, 6, 6, 6, 5, 4, 4, 4, 3, 2},
        {7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2}, {7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2},
        {6, 6, 5, 5, 4, 4, 4, 3, 3, 2, 2}, {6, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2},
        {5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2}, {4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 2},
        {4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1}, {4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1},
        {3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1},
    };
    poa_model_config c = config("vit_large");
    int counts[11 * 13];
    assert_int_equal(poa_model_candidate_counts(&c, 3.0, counts, 11 * 13), 573);
    for (int u = 0; u < 11; u++)
        for (int v = 0; v < 13; v++)
            if (counts[u * 13 + v] != table[v][u])
                fail_msg("width %d depth %d: count %d, expected %d", 384 + 64 * u, 12 + v,
                         counts[u * 13 + v], table[v][u]);
    c = config("tiny");
    static const int tiny[9] = {9, 6, 3, 6, 4, 2, 3, 2, 1};
    assert_int_equal(poa_model_candidate_counts(&c, 3.0, counts, 9), 36);
    for (int i = 0; i < 9; i++) assert_int_equal(counts[i], tiny[i]);
}

static const poa_param_desc *find(const poa_model *m, const char *name)
{
    int i = poa_params_find(&m->table, name);
    if (i < 0) fail_msg("parameter %s missing", name);
    return &m->table.p[i];
}

static void expect_shape(const poa_model *m, const char *name, int ndim, int64_t a, int64_t b,
                         int64_t c, int64_t d)
{
    const poa_param_desc *p = find(m, name);
    int64_t s[4] = {a, b, c, d};
    char got[64];
    poa_params_shape_str(p, got, sizeof got);
    if (p->ndim != ndim) fail_msg("%s: shape %s, expected %d dims", name, got, ndim);
    for (int i = 0; i < ndim; i++)
        if (p->shape[i] != s[i]) fail_msg("%s: shape %s differs at dim %d", name, got, i);
}

/* docs/algorithm.md §2.8: names, shapes, order, backbone size 303,351,808; §5.4: head sizes. */
static void test_vit_large_table(void **state)
{
    (void) state;
    poa_model_config c = config("vit_large");
    poa_model m;
    poa_model_build(&m, &c);
    size_t n_backbone = 0, n_head = 0;
    for (int i = 0; i < m.table.n; i++) {
        if (strcmp(m.table.p[i].module, "backbone") == 0)
            n_backbone += m.table.p[i].numel;
        else
            n_head += m.table.p[i].numel;
    }
    assert_int_equal(n_backbone, 303351808);
    /* 4 × (1024·2048 + 2048 + 2048² + 2048 + 2048·256 + 256) + Σ K·257 (docs/algorithm.md §5.4). */
    assert_int_equal(n_head, 4 * 6820096 + (8192 + 16384 + 32768 + 65536) * 257);
    assert_int_equal(m.table.n, 5 + 24 * 14 + 2 + 4 * 8);
    expect_shape(&m, "cls_token", 3, 1, 1, 1024, 0);
    expect_shape(&m, "pos_embed", 3, 1, 197, 1024, 0);
    expect_shape(&m, "mask_token", 2, 1, 1024, 0, 0);
    expect_shape(&m, "patch_embed.proj.weight", 4, 1024, 3, 16, 16);
    expect_shape(&m, "patch_embed.proj.bias", 1, 1024, 0, 0, 0);
    expect_shape(&m, "blocks.23.norm1.norm.weight", 1, 1024, 0, 0, 0);
    expect_shape(&m, "blocks.5.attn.qkv.linear.weight", 2, 3072, 1024, 0, 0);
    expect_shape(&m, "blocks.5.attn.qkv.linear.bias", 1, 3072, 0, 0, 0);
    expect_shape(&m, "blocks.5.attn.proj.linear.weight", 2, 1024, 1024, 0, 0);
    expect_shape(&m, "blocks.0.ls1.gamma", 1, 1024, 0, 0, 0);
    expect_shape(&m, "blocks.0.mlp.fc1.linear.weight", 2, 4096, 1024, 0, 0);
    expect_shape(&m, "blocks.0.mlp.fc1.linear.bias", 1, 4096, 0, 0, 0);
    expect_shape(&m, "blocks.0.mlp.fc2.linear.weight", 2, 1024, 4096, 0, 0);
    expect_shape(&m, "blocks.0.ls2.gamma", 1, 1024, 0, 0, 0);
    expect_shape(&m, "norm.norm.weight", 1, 1024, 0, 0, 0);
    expect_shape(&m, "mlp0.0.linear.weight", 2, 2048, 1024, 0, 0);
    expect_shape(&m, "mlp3.0.linear.bias", 1, 2048, 0, 0, 0);
    expect_shape(&m, "mlp1.2.weight", 2, 2048, 2048, 0, 0);
    expect_shape(&m, "mlp1.4.weight", 2, 256, 2048, 0, 0);
    expect_shape(&m, "mlp2.4.bias", 1, 256, 0, 0, 0);
    expect_shape(&m, "last_layer3.weight_g", 2, 65536, 1, 0, 0);
    expect_shape(&m, "last_layer0.weight_v", 2, 8192, 256, 0, 0);

    /* Block-major, aligned, disjoint; buckets: embeddings 0, block i → 1+i, norm 25, heads. */
    for (int i = 0; i < m.table.n; i++) {
        const poa_param_desc *p = &m.table.p[i];
        assert_int_equal(p->offset % POA_PARAM_ALIGN_FLOATS, 0);
        if (i) assert_true(p->offset >= m.table.p[i - 1].offset + m.table.p[i - 1].numel);
        if (strncmp(p->name, "blocks.", 7) == 0) {
            assert_int_equal(p->block, atoi(p->name + 7));
            assert_int_equal(p->bucket, 1 + p->block);
        }
    }
    assert_int_equal(find(&m, "patch_embed.proj.bias")->bucket, 0);
    assert_int_equal(find(&m, "norm.norm.bias")->bucket, 25);
    assert_int_equal(find(&m, "mlp0.0.linear.weight")->bucket, 26);
    assert_int_equal(find(&m, "last_layer3.weight_v")->bucket, 29);
    assert_int_equal(m.table.n_buckets, 30);
    assert_int_equal(m.backbone_end, find(&m, "norm.norm.bias")->offset + 1024);
    assert_true(find(&m, "mlp0.0.linear.weight")->offset >= m.backbone_end);
    /* Offset structs point at the named tensors. */
    assert_int_equal(m.blocks[7].fc2_w, find(&m, "blocks.7.mlp.fc2.linear.weight")->offset);
    assert_int_equal(m.heads[2].v, find(&m, "last_layer2.weight_v")->offset);
    assert_int_equal(m.vit.pos_embed, find(&m, "pos_embed")->offset);
    char key[128];
    poa_model_param_key(&m, poa_params_find(&m.table, "blocks.3.ls2.gamma"), key, sizeof key);
    assert_string_equal(key, "backbone.blocks.3.ls2.gamma");
    poa_model_param_key(&m, poa_params_find(&m.table, "mlp1.2.bias"), key, sizeof key);
    assert_string_equal(key, "dino_head.mlp1.2.bias");
    poa_model_free(&m);
}

static void expect_flags(const poa_model *m, const char *name, double lr, double wd, unsigned flags)
{
    const poa_param_desc *p = find(m, name);
    if (fabs(p->lr_mult - lr) > 1e-6 * lr)
        fail_msg("%s: lr_mult %.9g, expected %.9g", name, p->lr_mult, lr);
    if (p->wd_mult != (float) wd) fail_msg("%s: wd_mult %g, expected %g", name, p->wd_mult, wd);
    if (p->flags != flags) fail_msg("%s: flags 0x%x, expected 0x%x", name, p->flags, flags);
}

/* docs/algorithm.md §8.2 for ViT-L: embeddings 0.9^25 (patch-embed × 0.2), block i 0.9^(24-i), norm
 * 1, heads 1; wd 0 for .bias / norm / gamma; last-layer flag. */
static void test_optimizer_flags(void **state)
{
    (void) state;
    poa_model_config c = config("vit_large");
    poa_model m;
    poa_model_build(&m, &c);
    const unsigned B = POA_PF_BACKBONE, H = POA_PF_HEAD, N = POA_PF_NO_WD, LL = POA_PF_LAST_LAYER;
    expect_flags(&m, "cls_token", pow(0.9, 25), 1, B);
    expect_flags(&m, "pos_embed", pow(0.9, 25), 1, B);
    expect_flags(&m, "mask_token", pow(0.9, 25), 1, B);
    expect_flags(&m, "patch_embed.proj.weight", pow(0.9, 25) * 0.2, 1, B);
    expect_flags(&m, "patch_embed.proj.bias", pow(0.9, 25) * 0.2, 0, B | N);
    expect_flags(&m, "blocks.0.norm1.norm.weight", pow(0.9, 24), 0, B | N);
    expect_flags(&m, "blocks.0.attn.qkv.linear.weight", pow(0.9, 24), 1, B);
    expect_flags(&m, "blocks.10.attn.qkv.linear.bias", pow(0.9, 14), 0, B | N);
    expect_flags(&m, "blocks.23.ls2.gamma", 0.9, 0, B | N);
    expect_flags(&m, "blocks.23.mlp.fc2.linear.weight", 0.9, 1, B);
    expect_flags(&m, "norm.norm.weight", 1.0, 0, B | N);
    expect_flags(&m, "mlp0.0.linear.weight", 1.0, 1, H);
    expect_flags(&m, "mlp0.2.bias", 1.0, 0, H | N);
    expect_flags(&m, "last_layer1.weight_g", 1.0, 1, H | LL);
    expect_flags(&m, "last_layer1.weight_v", 1.0, 1, H | LL);
    poa_model_free(&m);
}

static void test_tiny_and_extracted_names(void **state)
{
    (void) state;
    poa_model_config c = config("tiny");
    poa_model m;
    poa_model_build(&m, &c);
    expect_shape(&m, "pos_embed", 3, 1, 17, 64, 0);
    expect_shape(&m, "patch_embed.proj.weight", 4, 64, 3, 8, 8);
    expect_shape(&m, "last_layer1.weight_v", 2, 128, 32, 0, 0);
    expect_shape(&m, "mlp0.0.linear.weight", 2, 128, 64, 0, 0);
    poa_model_free(&m);

    c.extracted = 1;
    c.max_embed_dim = c.min_embed_dim = 48;
    c.max_depth = c.min_depth = 3;
    c.n_heads = 0;
    poa_err err;
    assert_int_equal(poa_model_config_validate(&c, &err), POA_OK);
    poa_model_build(&m, &c);
    expect_shape(&m, "blocks.2.attn.qkv.weight", 2, 144, 48, 0, 0);
    expect_shape(&m, "blocks.0.norm1.weight", 1, 48, 0, 0, 0);
    expect_shape(&m, "norm.weight", 1, 48, 0, 0, 0);
    expect_shape(&m, "blocks.1.mlp.fc2.weight", 2, 48, 192, 0, 0);
    assert_int_equal(poa_params_find(&m.table, "norm.norm.weight"), -1);
    char key[128];
    poa_model_param_key(&m, poa_params_find(&m.table, "norm.weight"), key, sizeof key);
    assert_string_equal(key, "norm.weight");
    poa_model_free(&m);
}

static double mean_of(const float *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double) n;
}
static double std_of(const float *x, size_t n)
{
    double mu = mean_of(x, n), s = 0;
    for (size_t i = 0; i < n; i++) s += (x[i] - mu) * (x[i] - mu);
    return sqrt(s / (double) n);
}
static double absmax_of(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* docs/algorithm.md §2.7 rules, determinism for a seed, independence of seeds. */
static void test_init(void **state)
{
    (void) state;
    poa_model_config c = config("demo");
    poa_model m;
    poa_model_build(&m, &c);
    float *a = malloc(m.table.total * sizeof(float));
    float *b = malloc(m.table.total * sizeof(float));
    poa_model_init_params_host(&m, a, 1234);
    poa_model_init_params_host(&m, b, 1234);
    assert_memory_equal(a, b, m.table.total * sizeof(float));
    poa_model_init_params_host(&m, b, 1235);
    assert_true(memcmp(a, b, m.table.total * sizeof(float)) != 0);

    const poa_param_desc *p = find(&m, "blocks.2.mlp.fc1.linear.weight"); /* 512×128 */
    float *w = a + p->offset;
    assert_true(fabs(mean_of(w, p->numel)) < 0.02 * 4 / sqrt((double) p->numel));
    assert_true(fabs(std_of(w, p->numel) - 0.02) < 0.001);
    p = find(&m, "pos_embed");
    assert_true(fabs(std_of(a + p->offset, p->numel) - 0.02) < 0.002);
    p = find(&m, "cls_token");
    assert_true(absmax_of(a + p->offset, p->numel) < 1e-5);
    assert_true(absmax_of(a + p->offset, p->numel) > 0);
    p = find(&m, "patch_embed.proj.weight"); /* U(±1/√48) */
    double bound = 1.0 / sqrt(3.0 * 4 * 4);
    assert_true(absmax_of(a + p->offset, p->numel) <= bound);
    assert_true(absmax_of(a + p->offset, p->numel) > 0.95 * bound);
    assert_true(fabs(std_of(a + p->offset, p->numel) - bound / sqrt(3.0)) < 0.01);
    p = find(&m, "last_layer0.weight_v"); /* U(±1/√64) */
    assert_true(absmax_of(a + p->offset, p->numel) <= 0.125);
    assert_true(absmax_of(a + p->offset, p->numel) > 0.12);
    p = find(&m, "blocks.0.ls1.gamma");
    for (size_t i = 0; i < p->numel; i++) assert_true(a[p->offset + i] == 1e-5f);
    p = find(&m, "last_layer1.weight_g");
    for (size_t i = 0; i < p->numel; i++) assert_true(a[p->offset + i] == 1.0f);
    p = find(&m, "blocks.0.norm2.norm.weight");
    for (size_t i = 0; i < p->numel; i++) assert_true(a[p->offset + i] == 1.0f);
    const char *zeros[] = {"mask_token", "blocks.1.attn.qkv.linear.bias", "norm.norm.bias",
                           "mlp1.4.bias"};
    for (int k = 0; k < 4; k++) {
        p = find(&m, zeros[k]);
        assert_true(absmax_of(a + p->offset, p->numel) == 0.0);
    }
    /* Two tensors of the same shape get different values. */
    const poa_param_desc *q1 = find(&m, "blocks.0.attn.proj.linear.weight");
    const poa_param_desc *q2 = find(&m, "blocks.1.attn.proj.linear.weight");
    assert_true(memcmp(a + q1->offset, a + q2->offset, q1->numel * sizeof(float)) != 0);
    free(a);
    free(b);
    poa_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_selection_vit_large),
        cmocka_unit_test(test_block_selection_tiny),
        cmocka_unit_test(test_widths_depths),
        cmocka_unit_test(test_candidate_counts),
        cmocka_unit_test(test_vit_large_table),
        cmocka_unit_test(test_optimizer_flags),
        cmocka_unit_test(test_tiny_and_extracted_names),
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests_name("model_table", tests, NULL, NULL);
}
