/* test_subnet_sampler.c — the sub-network cycle of docs/algorithm.md §3.5 (invariants §12.4): the
 * ViT-L candidate table exactly, the TINY counts of §3.5, one cycle holds every (d, L) exactly
 * c(u, v) times and never the intact network, independent and deterministic per rank group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "model/model_config.h"
#include "train/subnet_sampler.h"

#include <string.h>

/* docs/algorithm.md §3.5, rows = depth 12…24, columns = width 384…1024. */
static const int vit_l_table[13][11] = {
    {9, 8, 8, 7, 7, 6, 5, 5, 4, 4, 3}, {8, 8, 7, 7, 6, 6, 5, 5, 4, 3, 3},
    {8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3}, {8, 7, 6, 6, 6, 5, 4, 4, 4, 3, 2},
    {7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2}, {7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2},
    {6, 6, 5, 5, 4, 4, 4, 3, 3, 2, 2}, {6, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2},
    {5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2}, {4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 2},
    {4, 4, 3, 3, 3, 3, 2, 2, 2, 2, 1}, {4, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1},
    {3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1},
};

typedef struct arch_nets {
    int widths[64], depths[64], nw, nd, counts[64 * 64], total;
} arch_nets;

static void load_arch(arch_nets *a, const char *arch)
{
    poa_model_config cfg;
    assert_int_equal(poa_model_config_from_arch(&cfg, arch, NULL), POA_OK);
    a->nw = poa_model_widths(&cfg, a->widths, 64);
    a->nd = poa_model_depths(&cfg, a->depths, 64);
    a->total = poa_model_candidate_counts(&cfg, 3.0, a->counts, 64 * 64);
}

/* Over one cycle of rank group `group`, count how often each (u, v) is drawn. */
static void count_cycle(poa_subnet_sampler *s, const arch_nets *a, uint32_t group, int64_t cycle,
                        int *seen)
{
    memset(seen, 0, sizeof(int) * a->nw * a->nd);
    for (int64_t it = cycle * s->cycle_len; it < (cycle + 1) * s->cycle_len; it++) {
        int w, d, u = -1, v = -1;
        poa_subnet_sampler_pick(s, group, it, &w, &d);
        for (int i = 0; i < a->nw; i++) u = a->widths[i] == w ? i : u;
        for (int i = 0; i < a->nd; i++) v = a->depths[i] == d ? i : v;
        assert_true(u >= 0 && v >= 0);
        seen[u * a->nd + v]++;
    }
}

static void test_vit_large_table_and_cycle(void **state)
{
    (void) state;
    arch_nets a;
    load_arch(&a, "vit_large");
    assert_int_equal(a.nw, 11);
    assert_int_equal(a.nd, 13);
    assert_int_equal(a.total, 573);
    for (int u = 0; u < 11; u++)
        for (int v = 0; v < 13; v++)
            if (a.counts[u * 13 + v] != vit_l_table[v][u])
                fail_msg("count of (%d, %d) is %d, docs/algorithm.md §3.5 says %d", a.widths[u],
                         a.depths[v], a.counts[u * 13 + v], vit_l_table[v][u]);
    poa_subnet_sampler s;
    poa_subnet_sampler_init(&s, a.widths, a.nw, a.depths, a.nd, a.counts, 0);
    assert_int_equal(s.n_nets, 573);
    assert_int_equal(s.cycle_len, 572);
    assert_int_equal(s.net_width[572], 1024);
    assert_int_equal(s.net_depth[572], 24);
    static const int width_marg[11] = {79, 73, 67, 62, 58, 52, 46, 42, 37, 31, 25};
    static const int depth_marg[13] = {66, 62, 58, 55, 52, 48, 44, 41, 37, 33, 29, 26, 21};
    int seen[11 * 13];
    for (uint32_t group = 0; group < 3; group++)
        for (int64_t cycle = 0; cycle < 2; cycle++) {
            count_cycle(&s, &a, group, cycle, seen);
            for (int u = 0; u < 11; u++) {
                int wm = 0;
                for (int v = 0; v < 13; v++) {
                    int want = a.counts[u * 13 + v] - (u == 10 && v == 12); /* intact excluded */
                    if (seen[u * 13 + v] != want)
                        fail_msg("group %u cycle %lld: (%d, %d) drawn %d times, want %d", group,
                                 (long long) cycle, a.widths[u], a.depths[v], seen[u * 13 + v],
                                 want);
                    wm += seen[u * 13 + v];
                }
                assert_int_equal(wm, width_marg[u]);
            }
            for (int v = 0; v < 13; v++) {
                int dm = 0;
                for (int u = 0; u < 11; u++) dm += seen[u * 13 + v];
                assert_int_equal(dm, depth_marg[v]);
            }
            assert_int_equal(seen[0], 9); /* ViT-S: 9 / 572 */
        }
    poa_subnet_sampler_free(&s);
}

static void test_tiny_counts(void **state)
{
    (void) state;
    arch_nets a;
    load_arch(&a, "tiny");
    /* (32,2) (32,3) … (64,4), docs/algorithm.md §3.5 */
    static const int want[9] = {9, 6, 3, 6, 4, 2, 3, 2, 1};
    assert_int_equal(a.nw, 3);
    assert_int_equal(a.nd, 3);
    assert_int_equal(a.total, 36);
    for (int i = 0; i < 9; i++) assert_int_equal(a.counts[i], want[i]);
    poa_subnet_sampler s;
    poa_subnet_sampler_init(&s, a.widths, a.nw, a.depths, a.nd, a.counts, 7);
    assert_int_equal(s.cycle_len, 35);
    int seen[9];
    count_cycle(&s, &a, 5, 3, seen);
    for (int i = 0; i < 9; i++) assert_int_equal(seen[i], want[i] - (i == 8));
    poa_subnet_sampler_free(&s);
}

static void test_groups_independent_and_deterministic(void **state)
{
    (void) state;
    arch_nets a;
    load_arch(&a, "vit_large");
    poa_subnet_sampler s1, s2;
    poa_subnet_sampler_init(&s1, a.widths, a.nw, a.depths, a.nd, a.counts, 42);
    poa_subnet_sampler_init(&s2, a.widths, a.nw, a.depths, a.nd, a.counts, 42);
    int differ01 = 0, differ_cycles = 0;
    for (int64_t it = 0; it < 572; it++) {
        int i0 = poa_subnet_sampler_index(&s1, 0, it);
        assert_int_equal(i0, poa_subnet_sampler_index(&s2, 0, it)); /* same seed, same draws */
        differ01 += i0 != poa_subnet_sampler_index(&s1, 1, it);
        differ_cycles += i0 != poa_subnet_sampler_index(&s1, 0, it + 572);
    }
    /* another group, and the next cycle, use other permutations */
    assert_true(differ01 > 500);
    assert_true(differ_cycles > 500);
    /* random access equals sequential use (resume needs no sampler state) */
    int later = poa_subnet_sampler_index(&s2, 3, 100000);
    for (int64_t it = 99990; it <= 100000; it++) poa_subnet_sampler_index(&s1, 3, it);
    assert_int_equal(poa_subnet_sampler_index(&s1, 3, 100000), later);
    poa_subnet_sampler_free(&s1);
    poa_subnet_sampler_free(&s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vit_large_table_and_cycle),
        cmocka_unit_test(test_tiny_counts),
        cmocka_unit_test(test_groups_independent_and_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
