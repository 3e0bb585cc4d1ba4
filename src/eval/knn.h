/* knn.h — the k-NN classifier of the DINO / DINOv2 evaluation (docs/algorithm.md, "k-NN"):
 * cosine similarity of L2-normalised features, the K nearest training images of every query
 * (K = the largest k asked for), weights softmax(sim / T) over those K, a class's score for a
 * given k = the sum of the weights of its images among the first k, top-1 and top-5.
 *
 * The pieces are separate so that the training features can be spread over MPI ranks:
 *
 *     poa_knn_lists l;  poa_knn_lists_init(&l, nq, K);
 *     for each block of training features (any order, any split over ranks):
 *         poa_knn_similarity(queries, nq, block, nb, d, sim);       // one GEMM
 *         poa_knn_lists_update(&l, sim, nq, nb, nb, first_index);   // partial top-K
 *     ... lists of several ranks: poa_knn_lists_merge ...
 *     poa_knn_vote(&l, train_labels, query_labels, n_classes, ks, nk, 0.07, top1, top5);
 *
 * Determinism: a list holds the K best (similarity, training index) pairs ordered by
 * similarity, descending, and on equal similarity by index, ascending — a total order, so the
 * result does not depend on how the training set was split into blocks or ranks (as long as
 * every similarity is the same number).  Class ties in the vote go to the lower class index. */
#ifndef POA_EVAL_KNN_H
#define POA_EVAL_KNN_H

#include <stddef.h>
#include <stdint.h>

#define POA_KNN_TEMPERATURE 0.07 /* T of the official evaluation */
#define POA_KNN_MAX_KS      16

typedef struct poa_knn_lists {
    int nq, K;
    float *sim;   /* [nq, K] best first            */
    int64_t *idx; /* [nq, K] training indices      */
    int *count;   /* [nq] entries filled (≤ K)     */
} poa_knn_lists;

void poa_knn_lists_init(poa_knn_lists *l, int nq, int K);
void poa_knn_lists_reset(poa_knn_lists *l); /* empty lists, same sizes */
void poa_knn_lists_free(poa_knn_lists *l);

/* Rows of x [n, d] scaled to unit L2 norm (a zero row stays zero).  Returns the number of rows
 * with a non-finite value (left as they are). */
int64_t poa_knn_normalise_rows(float *x, int64_t n, int d);

/* sim [nq, nb] (row stride nb) = queries [nq, d] · bank [nb, d]ᵀ (cblas sgemm). */
void poa_knn_similarity(const float *queries, int nq, const float *bank, int nb, int d, float *sim);

/* Offer training images first .. first + nb − 1 with similarities sim[q · ld + j] to every
 * list (OpenMP over the queries). */
void poa_knn_lists_update(poa_knn_lists *l, const float *sim, int nq, int nb, size_t ld,
                          int64_t first);

/* out = the best K of the n lists src[0..n) (same nq and K): a deterministic merge. */
void poa_knn_lists_merge(poa_knn_lists *out, const poa_knn_lists *src, int n);

/* Votes of the lists for the queries' labels: correct1[i] / correct5[i] += the number of
 * queries whose label is the best class / among the 5 best classes with k = ks[i] neighbours
 * (k larger than a list's length uses the whole list). */
void poa_knn_vote(const poa_knn_lists *l, const int32_t *train_labels, const int32_t *query_labels,
                  int n_classes, const int *ks, int nk, double T, int64_t *correct1,
                  int64_t *correct5);

#endif
