/* test_knn.c — the k-NN pieces of src/eval/knn.h:
 *  - partial top-K lists: on similarities with many exact ties (values on a coarse grid), the
 *    lists built over the whole bank equal a brute-force sort by (similarity desc, index asc);
 *    built block by block in any split (1, 2, 3 or 7 parts, blocks in reverse order) and merged
 *    they are the same, entry for entry;
 *  - votes on a hand-computed example: softmax(sim / T) weights over the K, class scores of the
 *    first k, top-1 and top-5 with class ties to the lower index, k above the list length;
 *  - normalisation: unit rows, a zero row left zero, non-finite rows counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "eval/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NQ = 5, NB = 97, K = 13 };

static float sim_of(int q, int j)
{
    /* coarse values: many exact ties within a row */
    return (float) (((q * 31 + j * 17) % 11) - 5) * 0.125f;
}

static void fill(float *sim)
{
    for (int q = 0; q < NQ; q++)
        for (int j = 0; j < NB; j++) sim[q * NB + j] = sim_of(q, j);
}

static void test_lists_match_brute_force(void **state)
{
    (void) state;
    float sim[NQ * NB];
    fill(sim);
    poa_knn_lists l;
    poa_knn_lists_init(&l, NQ, K);
    poa_knn_lists_update(&l, sim, NQ, NB, NB, 0);
    for (int q = 0; q < NQ; q++) {
        assert_int_equal(l.count[q], K);
        /* brute force: selection of the best remaining by (sim desc, index asc) */
        int used[NB] = {0};
        for (int t = 0; t < K; t++) {
            int best = -1;
            for (int j = 0; j < NB; j++)
                if (!used[j] && (best < 0 || sim_of(q, j) > sim_of(q, best))) best = j;
            used[best] = 1;
            assert_int_equal(l.idx[q * K + t], best);
            assert_true(l.sim[q * K + t] == sim_of(q, best));
        }
    }
    poa_knn_lists_free(&l);
}

/* Lists of the bank cut into `parts` contiguous pieces (each piece's lists built block by block
 * of 5 in reverse order), merged. */
static void split_and_merge(const float *sim, int parts, poa_knn_lists *out)
{
    poa_knn_lists *src = calloc((size_t) parts, sizeof *src);
    for (int p = 0; p < parts; p++) {
        poa_knn_lists_init(&src[p], NQ, K);
        const int lo = NB * p / parts, hi = NB * (p + 1) / parts;
        const int last = lo + (hi - lo - 1) / 5 * 5; /* start of the piece's last block */
        for (int b0 = last; b0 >= lo; b0 -= 5) {
            const int b1 = b0 + 5 < hi ? b0 + 5 : hi;
            poa_knn_lists_update(&src[p], sim + b0, NQ, b1 - b0, NB, b0);
        }
    }
    poa_knn_lists_init(out, NQ, K);
    poa_knn_lists_merge(out, src, parts);
    for (int p = 0; p < parts; p++) poa_knn_lists_free(&src[p]);
    free(src);
}

static void test_split_merge_invariant(void **state)
{
    (void) state;
    float sim[NQ * NB];
    fill(sim);
    poa_knn_lists whole;
    poa_knn_lists_init(&whole, NQ, K);
    poa_knn_lists_update(&whole, sim, NQ, NB, NB, 0);
    const int splits[] = {1, 2, 3, 7};
    for (int s = 0; s < 4; s++) {
        poa_knn_lists m;
        split_and_merge(sim, splits[s], &m);
        for (int q = 0; q < NQ; q++) {
            assert_int_equal(m.count[q], K);
            assert_memory_equal(m.idx + q * K, whole.idx + q * K, sizeof(int64_t) * K);
            assert_memory_equal(m.sim + q * K, whole.sim + q * K, sizeof(float) * K);
        }
        poa_knn_lists_free(&m);
    }
    poa_knn_lists_free(&whole);
}

static void test_vote_by_hand(void **state)
{
    (void) state;
    /* one query, 4 neighbours: sims 0.9 (class 2), 0.8 (class 1), 0.8 (class 1), 0.1 (class 0) */
    poa_knn_lists l;
    poa_knn_lists_init(&l, 1, 4);
    const float s[4] = {0.9f, 0.8f, 0.8f, 0.1f};
    const int64_t ix[4] = {0, 1, 2, 3};
    memcpy(l.sim, s, sizeof s);
    memcpy(l.idx, ix, sizeof ix);
    l.count[0] = 4;
    const int32_t train_labels[4] = {2, 1, 1, 0};
    const int ks[4] = {1, 2, 3, 9};
    /* T = 0.07: exp(-0.1/0.07) = 0.2397 per class-1 neighbour: k = 2 → class 2 (1) beats class
     * 1 (0.24); k = 3 → class 1 (0.479) still loses; with T = 0.2, exp(-0.5) = 0.607 → class 1
     * (1.213) wins at k = 3 */
    for (int label = 0; label < 3; label++) {
        int64_t c1[4] = {0}, c5[4] = {0};
        const int32_t ql = label;
        poa_knn_vote(&l, train_labels, &ql, 7, ks, 4, POA_KNN_TEMPERATURE, c1, c5);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(c1[i], label == 2);
            assert_int_equal(c5[i], 1); /* classes 0, 1, 2: at most 2 classes rank before */
        }
    }
    int64_t c1[4] = {0}, c5[4] = {0};
    const int32_t one = 1;
    poa_knn_vote(&l, train_labels, &one, 7, ks, 4, 0.2, c1, c5);
    assert_int_equal(c1[0], 0);
    assert_int_equal(c1[1], 0);
    assert_int_equal(c1[2], 1);
    assert_int_equal(c1[3], 1);
    /* top-5 and class ties: label 6 scores 0, as do 0 (k < 4), 3, 4, 5: ties go to the lower
     * class, so 6 ranks behind 2, 1, 0, 3, 4, 5 → never in the top 5 */
    const int32_t six = 6;
    memset(c5, 0, sizeof c5);
    poa_knn_vote(&l, train_labels, &six, 7, ks, 4, POA_KNN_TEMPERATURE, c1, c5);
    for (int i = 0; i < 4; i++) assert_int_equal(c5[i], 0);
    const int32_t four = 4; /* k = 1: class 2 scores, 0,1,3 tie at 0 before 4 → rank 4: top 5 */
    memset(c5, 0, sizeof c5);
    poa_knn_vote(&l, train_labels, &four, 7, ks, 1, POA_KNN_TEMPERATURE, c1, c5);
    assert_int_equal(c5[0], 1);
    const int32_t five = 5; /* rank 5 (after 2, 0, 1, 3, 4): not in the top 5 */
    memset(c5, 0, sizeof c5);
    poa_knn_vote(&l, train_labels, &five, 7, ks, 1, POA_KNN_TEMPERATURE, c1, c5);
    assert_int_equal(c5[0], 0);
    poa_knn_lists_free(&l);
}

static void test_normalise(void **state)
{
    (void) state;
    float x[4][3] = {{3, 4, 0}, {0, 0, 0}, {1, NAN, 0}, {-2, 0, 0}};
    assert_int_equal(poa_knn_normalise_rows(&x[0][0], 4, 3), 1);
    assert_float_equal(x[0][0], 0.6f, 1e-7);
    assert_float_equal(x[0][1], 0.8f, 1e-7);
    assert_true(x[1][0] == 0 && x[1][1] == 0 && x[1][2] == 0);
    assert_float_equal(x[3][0], -1.0f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_match_brute_force),
        cmocka_unit_test(test_split_merge_invariant),
        cmocka_unit_test(test_vote_by_hand),
        cmocka_unit_test(test_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
