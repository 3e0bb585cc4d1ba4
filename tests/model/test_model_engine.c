/* test_model_engine.c — invariants of the model engine that need no PyTorch
 * (docs/algorithm.md §10, §12.4):
 *  - extraction: the elastic forward (d, L) on the full weights equals the forward of the
 *    standalone ViT written by poa_extract_subnet (official extracted names, final norm kept);
 *    the elastic gradient of every α-scaled slice is α × the standalone gradient, and nothing
 *    outside the slices is touched (docs/algorithm.md §12.4);
 *  - the inference workspace (teacher) gives the training workspace's outputs; one workspace
 *    serves calls of several sub-networks and batch sizes;
 *  - intermediate outputs (the linear probe's): the output after block k equals the output of
 *    the sub-network cut after that block;
 *  - drop-path decisions (docs/algorithm.md §2.5): k = max(floor(n(1−p)), 1) kept with scale
 *    n/k, deterministic;
 *  - the memory plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "common/rng.h"
#include "model/extract.h"
#include "model/vit.h"
#include "tests/lib/seeded_params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static poa_backend *be;

static int setup(void **state)
{
    (void) state;
    char err[256];
    be = poa_backend_create("cpu", NULL, err, sizeof err);
    return be ? 0 : -1;
}

static int teardown(void **state)
{
    (void) state;
    poa_backend_destroy(be);
    return 0;
}

static poa_model build(const char *arch)
{
    poa_model_config c;
    poa_err err;
    assert_int_equal(poa_model_config_from_arch(&c, arch, &err), POA_OK);
    poa_model m;
    poa_model_build(&m, &c);
    return m;
}

static void random_fill(float *x, size_t n, uint64_t seed)
{
    poa_rng r;
    poa_rng_init(&r, seed, 0, POA_RNG_TEST, 1u << 20);
    for (size_t i = 0; i < n; i++) x[i] = (float) poa_rng_normal(&r);
}

static float *dev_copy(const void *host, size_t bytes)
{
    float *p = be->iface->alloc(be, bytes);
    be->iface->upload(be, p, host, bytes);
    return p;
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double d2 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) {
        d2 += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
        b2 += (double) b[i] * b[i];
    }
    return b2 > 0 ? sqrt(d2 / b2) : sqrt(d2);
}

/* Forward (and backward with d_out) of sub-network (w, L) of m on params; returns out and the
 * gradients in host buffers. */
static void run(const poa_model *m, const float *params_host, int w, int L, const float *img,
                const uint8_t *mask, int B, int size, const float *dout, float **out,
                float **grads_host)
{
    poa_subnet sn;
    poa_err err;
    assert_int_equal(poa_subnet_make(&m->cfg, w, L, &sn, &err), POA_OK);
    const size_t P = m->table.total * sizeof(float);
    float *params = dev_copy(params_host, P);
    float *grads = be->iface->alloc(be, P);
    be->iface->zero(be, grads, P);
    const int N = poa_model_n_patches(&m->cfg, size, size);
    float *d_img = dev_copy(img, (size_t) B * 3 * size * size * sizeof(float));
    uint8_t *d_mask = NULL;
    if (mask) d_mask = (uint8_t *) dev_copy(mask, (size_t) B * N);
    poa_vit_acts a;
    poa_vit_acts_create(be, m, &a, B, size, 1);
    poa_vit_input in = {d_img, B, size, size, d_mask, NULL};
    const poa_weights wt = poa_weights_f32(be, params);
    poa_vit_forward(be, m, &wt, &sn, &in, &a);
    const size_t n_out = (size_t) B * (N + 1) * w;
    *out = malloc(n_out * sizeof(float));
    be->iface->act_download(be, *out, a.out, n_out);
    be->iface->act_upload(be, a.d_out, dout, n_out);
    poa_vit_backward(be, m, &wt, grads, &a, a.d_out);
    *grads_host = malloc(P);
    be->iface->download(be, *grads_host, grads, P);
    poa_vit_acts_destroy(be, &a);
    be->iface->free(be, params);
    be->iface->free(be, grads);
    be->iface->free(be, d_img);
    if (d_mask) be->iface->free(be, d_mask);
}

static void check_extraction(int width, int depth, int size, int masked)
{
    poa_model m = build("tiny");
    float *full = malloc(m.table.total * sizeof(float));
    seeded_params(&m, full, 7);
    poa_model std;
    float *std_params;
    poa_err err;
    assert_int_equal(poa_extract_subnet(&m, full, width, depth, &std, &std_params, &err), POA_OK);
    assert_int_equal(std.cfg.max_embed_dim, width);
    assert_int_equal(std.cfg.max_depth, depth);

    const int B = 3, N = poa_model_n_patches(&m.cfg, size, size), T = N + 1;
    float *img = malloc((size_t) B * 3 * size * size * sizeof(float));
    random_fill(img, (size_t) B * 3 * size * size, 11);
    uint8_t *mask = NULL;
    if (masked) {
        mask = calloc((size_t) B * N, 1);
        for (int i = 0; i < B * N; i += 3) mask[i] = 1;
    }
    float *dout = malloc((size_t) B * T * width * sizeof(float));
    random_fill(dout, (size_t) B * T * width, 13);

    float *out_el, *g_el, *out_std, *g_std;
    run(&m, full, width, depth, img, mask, B, size, dout, &out_el, &g_el);
    run(&std, std_params, width, depth, img, mask, B, size, dout, &out_std, &g_std);
    double e = rel_err(out_el, out_std, (size_t) B * T * width);
    if (e > 1e-5)
        fail_msg("(%d, %d) size %d: extracted forward differs, rel err %.3e", width, depth, size,
                 e);

    /* Gradients: elastic slice = scale × standalone; everything else of the backbone untouched. */
    poa_subnet sn;
    poa_subnet_make(&m.cfg, width, depth, &sn, &err);
    poa_extract_map maps[256];
    int n = poa_extract_maps(&m, &std, &sn, maps, 256);
    for (int i = 0; i < n; i++) {
        const poa_extract_map *mp = &maps[i];
        size_t cnt = (size_t) mp->groups * mp->rows * mp->cols;
        float *sl = malloc(cnt * sizeof(float)), *want = malloc(cnt * sizeof(float));
        size_t k = 0;
        for (int g = 0; g < mp->groups; g++)
            for (int r = 0; r < mp->rows; r++)
                for (int c = 0; c < mp->cols; c++, k++) {
                    float *src =
                        g_el + mp->src + g * mp->group_stride + (size_t) r * mp->ld_src + c;
                    sl[k] = *src;
                    *src = 0.0f; /* consumed: what remains must be zero */
                    want[k] = mp->scale * g_std[mp->dst + k];
                }
        e = rel_err(sl, want, cnt);
        if (e > 2e-5)
            fail_msg("(%d, %d): elastic gradient of the slice for %s differs from %.4f x the "
                     "standalone gradient: rel err %.3e",
                     width, depth, std.table.p[i].name, mp->scale, e);
        free(sl);
        free(want);
    }
    for (size_t i = 0; i < m.backbone_end; i++)
        if (g_el[i] != 0.0f)
            fail_msg("(%d, %d): gradient outside the slices at %zu", width, depth, i);

    free(out_el), free(g_el), free(out_std), free(g_std), free(dout), free(img), free(mask);
    free(std_params);
    free(full);
    poa_model_free(&std);
    poa_model_free(&m);
}

static void test_extraction_invariant(void **state)
{
    (void) state;
    check_extraction(48, 3, 32, 1);
    check_extraction(32, 2, 16, 0);
    check_extraction(32, 4, 32, 0);
    check_extraction(64, 2, 16, 1);
    check_extraction(64, 4, 32, 0); /* the intact network: only renaming */
}

static void test_extracted_names(void **state)
{
    (void) state;
    poa_model m = build("tiny");
    float *full = malloc(m.table.total * sizeof(float));
    seeded_params(&m, full, 3);
    poa_model std;
    float *sp;
    poa_err err;
    assert_int_equal(poa_extract_subnet(&m, full, 48, 3, &std, &sp, &err), POA_OK);
    /* docs/algorithm.md §10: extracted key names, blocks renumbered, the final norm written */
    assert_true(poa_params_find(&std.table, "blocks.2.attn.qkv.weight") >= 0);
    assert_true(poa_params_find(&std.table, "blocks.2.mlp.fc2.bias") >= 0);
    assert_true(poa_params_find(&std.table, "blocks.1.norm2.weight") >= 0);
    assert_true(poa_params_find(&std.table, "norm.weight") >= 0);
    assert_true(poa_params_find(&std.table, "blocks.3.ls1.gamma") < 0);
    assert_true(poa_params_find(&std.table, "blocks.0.attn.qkv.linear.weight") < 0);
    assert_int_equal(std.table.n, 5 + 3 * 14 + 2);
    char key[128];
    poa_model_param_key(&std, 0, key, sizeof key);
    assert_string_equal(key, "cls_token");
    /* extracted block 2 = intact block 3: k-chunk row 5 of qkv = α · intact row 64 + 5 */
    const float alpha = 64.0f / 48.0f;
    const poa_param_desc *q = &std.table.p[poa_params_find(&std.table, "blocks.2.attn.qkv.weight")];
    const float *intact = full + m.blocks[3].qkv_w;
    for (int c = 0; c < 48; c++)
        assert_true(sp[q->offset + (48 + 5) * 48 + c] == intact[(64 + 5) * 64 + c] * alpha);
    const poa_param_desc *b = &std.table.p[poa_params_find(&std.table, "blocks.2.attn.qkv.bias")];
    assert_true(sp[b->offset + 2 * 48 + 7] == full[m.blocks[3].qkv_b + 2 * 64 + 7]);
    /* ViT-S/16 from the official ViT-L (docs/algorithm.md §10, "≈21.7M"): 384·968 embeddings +
     * 12 · 384·(12·384 + 15) blocks + 768 final norm = 21,675,264 values */
    poa_model big = build("vit_large");
    poa_model_config sc;
    assert_int_equal(poa_extract_config(&big.cfg, 384, 12, &sc, &err), POA_OK);
    poa_model small;
    poa_model_build(&small, &sc);
    size_t total = 0;
    for (int i = 0; i < small.table.n; i++) total += small.table.p[i].numel;
    assert_int_equal(total, 21675264);
    assert_int_equal(poa_extract_config(&big.cfg, 400, 12, &sc, &err), POA_ERR_ARG);
    poa_model_free(&small);
    poa_model_free(&big);
    free(sp);
    free(full);
    poa_model_free(&std);
    poa_model_free(&m);
}

/* Teacher-style inference workspace = training workspace; a workspace planned for the intact
 * network and B_max serves smaller sub-networks and batches, in any order. */
static void test_workspaces(void **state)
{
    (void) state;
    poa_model m = build("tiny");
    float *host = malloc(m.table.total * sizeof(float));
    seeded_params(&m, host, 5);
    float *params = dev_copy(host, m.table.total * sizeof(float));
    const poa_weights wt = poa_weights_f32(be, params);
    const int B = 4, S = 32, N = 16;
    float *img_h = malloc((size_t) B * 3 * S * S * sizeof(float));
    random_fill(img_h, (size_t) B * 3 * S * S, 17);
    float *img = dev_copy(img_h, (size_t) B * 3 * S * S * sizeof(float));
    poa_vit_acts tr, inf;
    poa_vit_acts_create(be, &m, &tr, B, S, 1);
    poa_vit_acts_create(be, &m, &inf, B, S, 0);
    assert_true(inf.cap < tr.cap);
    const int pairs[][3] = {{64, 4, 4}, {32, 2, 2}, {48, 3, 4}, {64, 4, 1}};
    for (int k = 0; k < 4; k++) {
        poa_subnet sn;
        poa_err err;
        assert_int_equal(poa_subnet_make(&m.cfg, pairs[k][0], pairs[k][1], &sn, &err), POA_OK);
        poa_vit_input in = {img, pairs[k][2], S, S, NULL, NULL};
        poa_vit_forward(be, &m, &wt, &sn, &in, &tr);
        poa_vit_forward(be, &m, &wt, &sn, &in, &inf);
        size_t n = (size_t) in.B * (N + 1) * sn.width;
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        be->iface->act_download(be, a, tr.out, n);
        be->iface->act_download(be, b, inf.out, n);
        assert_memory_equal(a, b, n * sizeof(float));
        /* the first images do not depend on how many others are in the batch */
        if (k == 3) {
            poa_vit_input in4 = {img, 4, S, S, NULL, NULL};
            poa_vit_forward(be, &m, &wt, &sn, &in4, &inf);
            float *c = malloc(4 * n * sizeof(float));
            be->iface->act_download(be, c, inf.out, 4 * n);
            assert_true(rel_err(a, c, n) < 1e-6);
            free(c);
        }
        free(a);
        free(b);
    }
    poa_vit_acts_destroy(be, &tr);
    poa_vit_acts_destroy(be, &inf);
    be->iface->free(be, img);
    be->iface->free(be, params);
    free(img_h);
    free(host);
    poa_model_free(&m);
}

/* Intermediate outputs (the linear probe): the output after executed block k of a sub-network
 * is the final-normed output of the sub-network cut after that block (its first k + 1 blocks, the
 * same width), bit for bit; positions may repeat and come in any order; the one after the last
 * block is a->out; the training and inference workspaces give the same. */
static void test_block_outputs(void **state)
{
    (void) state;
    poa_model m = build("tiny");
    float *host = malloc(m.table.total * sizeof(float));
    seeded_params(&m, host, 9);
    float *params = dev_copy(host, m.table.total * sizeof(float));
    const poa_weights wt = poa_weights_f32(be, params);
    const int B = 3, S = 32, T = 17;
    float *img_h = malloc((size_t) B * 3 * S * S * sizeof(float));
    random_fill(img_h, (size_t) B * 3 * S * S, 23);
    float *img = dev_copy(img_h, (size_t) B * 3 * S * S * sizeof(float));
    poa_vit_acts acts[2];
    poa_vit_acts_create(be, &m, &acts[0], B, S, 0);
    poa_vit_acts_create(be, &m, &acts[1], B, S, 1);
    const int pairs[][2] = {{64, 4}, {48, 3}, {32, 2}};
    const int taps[] = {2, 0, 2, 1}, taps2[] = {1, 0};
    const size_t cap = (size_t) B * T * 64;
    poa_act *tap_out[4];
    for (int j = 0; j < 4; j++) tap_out[j] = be->iface->alloc(be, poa_act_bytes(be, cap));
    float *got = malloc(cap * sizeof(float)), *want = malloc(cap * sizeof(float));
    for (int k = 0; k < 3; k++) {
        poa_subnet sn;
        poa_err err;
        assert_int_equal(poa_subnet_make(&m.cfg, pairs[k][0], pairs[k][1], &sn, &err), POA_OK);
        const int n_taps = sn.depth > 2 ? 4 : 2; /* depth 2: positions 0 and 1 only */
        const int *tp = sn.depth > 2 ? taps : taps2;
        const size_t n = (size_t) B * T * sn.width;
        for (int w = 0; w < 2; w++) {
            poa_vit_input in = {img, B, S, S, NULL, NULL};
            poa_vit_forward_blocks(be, &m, &wt, &sn, &in, tp, n_taps, tap_out, &acts[w]);
            float *last = malloc(n * sizeof(float));
            be->iface->act_download(be, last, acts[w].out, n);
            for (int j = 0; j < n_taps; j++) {
                poa_subnet cut = sn;
                cut.depth = tp[j] + 1;
                poa_vit_input plain = {img, B, S, S, NULL, NULL};
                be->iface->act_download(be, got, tap_out[j], n);
                poa_vit_forward(be, &m, &wt, &cut, &plain, &acts[0]);
                be->iface->act_download(be, want, acts[0].out, n);
                assert_memory_equal(got, want, n * sizeof(float));
                if (tp[j] == sn.depth - 1) assert_memory_equal(got, last, n * sizeof(float));
            }
            free(last);
        }
    }
    for (int j = 0; j < 4; j++) be->iface->free(be, tap_out[j]);
    free(got);
    free(want);
    poa_vit_acts_destroy(be, &acts[0]);
    poa_vit_acts_destroy(be, &acts[1]);
    be->iface->free(be, img);
    be->iface->free(be, params);
    free(img_h);
    free(host);
    poa_model_free(&m);
}

static void test_droppath_draw(void **state)
{
    (void) state;
    const int L = 3, n = 10;
    float s[3 * 2 * 10], t[3 * 2 * 10];
    poa_droppath_draw(s, L, n, 0.2, 42, 1, 1000);
    poa_droppath_draw(t, L, n, 0.2, 42, 1, 1000);
    assert_memory_equal(s, t, sizeof s);
    int differs = 0;
    for (int g = 0; g < 2 * L; g++) {
        int kept = 0;
        for (int b = 0; b < n; b++) {
            float v = s[g * n + b];
            assert_true(v == 0.0f || v == 10.0f / 8.0f);
            kept += v != 0.0f;
            if (g && v != s[b]) differs = 1;
        }
        assert_int_equal(kept, 8); /* max(int(10 · 0.8), 1) */
    }
    assert_true(differs); /* independent subsets per block and branch */
    poa_droppath_draw(t, L, n, 0.2, 42, 2, 1000);
    assert_true(memcmp(s, t, sizeof s) != 0); /* another rank, another draw */
    poa_droppath_draw(s, 1, 3, 0.9, 1, 0, 0);
    int kept = 0;
    for (int b = 0; b < 6; b++) kept += s[b] != 0.0f;
    assert_int_equal(kept, 2); /* k = max(int(0.3), 1) = 1 per branch, scale 3 */
    assert_true(s[0] == 3.0f || s[1] == 3.0f || s[2] == 3.0f);
    poa_droppath_draw(s, 1, 3, 0.0, 1, 0, 0);
    for (int b = 0; b < 6; b++) assert_true(s[b] == 1.0f);
}

/* Per-sample drop path: every (block, branch, image) an independent Bernoulli(1 − rate) keep
 * with scale 1 / (1 − rate); rates, independence of the two branches and of the images, the
 * scale, determinism and stream separation. */
static void test_droppath_draw_bernoulli(void **state)
{
    (void) state;
    enum { L = 50, n = 200, total = L * 2 * n };
    float *s = malloc(sizeof(float) * total), *t = malloc(sizeof(float) * total);
    const double rates[] = {0.1, 0.5};
    for (int ri = 0; ri < 2; ri++) {
        const double rate = rates[ri];
        const float scale = (float) (1.0 / (1.0 - rate));
        poa_droppath_draw_bernoulli(s, L, n, rate, 42, 1, 1u << 24);
        poa_droppath_draw_bernoulli(t, L, n, rate, 42, 1, 1u << 24);
        assert_memory_equal(s, t, sizeof(float) * total);
        long kept = 0, both_dropped = 0, counts_differ = 0;
        for (int blk = 0; blk < L; blk++) {
            const float *attn = s + (size_t) blk * 2 * n, *mlp = attn + n;
            int k_attn = 0, k_mlp = 0;
            for (int b = 0; b < n; b++) {
                assert_true(attn[b] == 0.0f || attn[b] == scale);
                assert_true(mlp[b] == 0.0f || mlp[b] == scale);
                k_attn += attn[b] != 0.0f, k_mlp += mlp[b] != 0.0f;
                both_dropped += attn[b] == 0.0f && mlp[b] == 0.0f;
            }
            kept += k_attn + k_mlp;
            counts_differ += k_attn != k_mlp; /* no fixed subset size */
        }
        /* kept fraction 1 − rate (binomial sd <= 0.0036 here: 5 sd) */
        assert_true(fabs((double) kept / total - (1.0 - rate)) < 0.018);
        /* the attention and MLP masks of an image are independent: P(both dropped) = rate² */
        assert_true(fabs((double) both_dropped / (L * n) - rate * rate) < 0.025);
        assert_true(counts_differ > L / 2);
        poa_droppath_draw_bernoulli(t, L, n, rate, 42, 2, 1u << 24);
        assert_true(memcmp(s, t, sizeof(float) * total) != 0); /* another group, another draw */
        poa_droppath_draw_bernoulli(t, L, n, rate, 42, 1, 2u << 24);
        assert_true(memcmp(s, t, sizeof(float) * total) != 0); /* another call */
    }
    /* the same stream gives the same prefix whatever the number of blocks drawn */
    poa_droppath_draw_bernoulli(s, 2, 5, 0.3, 7, 0, 0);
    poa_droppath_draw_bernoulli(t, 3, 5, 0.3, 7, 0, 0);
    assert_memory_equal(s, t, sizeof(float) * 2 * 2 * 5);
    poa_droppath_draw_bernoulli(s, 1, 3, 0.0, 1, 0, 0);
    for (int b = 0; b < 6; b++) assert_true(s[b] == 1.0f);
    free(s);
    free(t);
}

static void test_memory_plan(void **state)
{
    (void) state;
    poa_model m = build("vit_large");
    poa_model_memplan p;
    poa_backend planner;
    poa_model_memory_plan(poa_backend_planner("cpu", POA_DT_F32, &planner), &m, &p);
    assert_int_equal(p.compute_dtype, POA_DT_F32);
    assert_int_equal(p.compute_copy_bytes, 0); /* fp32: the GEMMs read the master copies */
    assert_int_equal(p.n_backbone, 303351808);
    assert_int_equal(p.n_heads_params, 4 * 6820096 + (8192 + 16384 + 32768 + 65536) * 257);
    assert_true(p.params_bytes >= 4 * p.n_params && p.params_bytes < 4 * p.n_params + 65536 * 4);
    assert_int_equal(p.adam_bytes, 2 * p.params_bytes);
    /* ViT-L global crop: at least 24 blocks × 197 tokens × 11·1024 floats per image (the block
     * input, q|k|v, attention output, proj output, fc1 output (4), fc2 output; the LayerNorm
     * outputs and the post-attention stream are recomputed in backward, src/model/vit.h) */
    assert_true(p.act_global_per_image > (size_t) 24 * 197 * 11 * 1024 * 4);
    assert_true(p.act_local_per_image < p.act_global_per_image / 4);
    assert_true(p.teacher_act_per_image < p.act_global_per_image / 10);
    assert_int_equal(p.head_logits_bytes_per_row, (8192 + 16384 + 32768 + 65536) * 4);
    size_t step = poa_model_memory_step_bytes(&p, 50, 8);
    assert_true(step > p.params_bytes * 5);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    poa_model_memory_plan_print(&m, &p, f);
    fclose(f);
    assert_non_null(strstr(buf, "AdamW moments"));
    assert_non_null(strstr(buf, "11 widths x 13 depths"));
    free(buf);
    /* bf16 on CUDA (planned without a device): 2-byte activations, the attention keeps
     * two statistics per row instead of probabilities, and compute copies of the weights */
    poa_model_memplan q;
    poa_model_memory_plan(poa_backend_planner("cuda", POA_DT_BF16, &planner), &m, &q);
    assert_int_equal(q.compute_dtype, POA_DT_BF16);
    assert_int_equal(q.compute_copy_bytes, 2 * 2 * m.table.total);
    assert_true(q.act_global_per_image < p.act_global_per_image * 6 / 10);
    assert_true(q.act_global_per_image > (size_t) 24 * 197 * 11 * 1024 * 2);
    /* and less than the 14 such tensors per block that saving the LayerNorm outputs and the
     * post-attention stream would need, with every transient of one call on top */
    assert_true(q.act_global_per_image < (size_t) 24 * 197 * 14 * 1024 * 2);
    assert_int_equal(q.params_bytes, p.params_bytes);
    poa_model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extraction_invariant), cmocka_unit_test(test_extracted_names),
        cmocka_unit_test(test_workspaces),           cmocka_unit_test(test_block_outputs),
        cmocka_unit_test(test_droppath_draw),        cmocka_unit_test(test_droppath_draw_bernoulli),
        cmocka_unit_test(test_memory_plan),
    };
    return cmocka_run_group_tests_name("model_engine", tests, setup, teardown);
}
