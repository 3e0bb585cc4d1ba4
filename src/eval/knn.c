/* knn.c — see knn.h. */
#include "eval/knn.h"
#include "common/poa_error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void poa_knn_lists_init(poa_knn_lists *l, int nq, int K)
{
    l->nq = nq, l->K = K;
    l->sim = poa_xmalloc(sizeof(float) * (size_t) nq * K);
    l->idx = poa_xmalloc(sizeof(int64_t) * (size_t) nq * K);
    l->count = poa_xcalloc((size_t) nq, sizeof(int));
}

void poa_knn_lists_reset(poa_knn_lists *l)
{
    memset(l->count, 0, sizeof(int) * (size_t) l->nq);
}

void poa_knn_lists_free(poa_knn_lists *l)
{
    free(l->sim), free(l->idx), free(l->count);
    memset(l, 0, sizeof *l);
}

int64_t poa_knn_normalise_rows(float *x, int64_t n, int d)
{
    int64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float *row = x + (size_t) i * d;
        double ss = 0;
        for (int k = 0; k < d; k++) ss += (double) row[k] * row[k];
        if (!isfinite(ss)) {
            bad++;
            continue;
        }
        /* torch.nn.functional.normalize: x / max(‖x‖, 1e-12) */
        const float inv = (float) (1.0 / fmax(sqrt(ss), 1e-12));
        for (int k = 0; k < d; k++) row[k] *= inv;
    }
    return bad;
}

void poa_knn_similarity(const float *queries, int nq, const float *bank, int nb, int d, float *sim)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nb, d, 1.0f, queries, d, bank, d, 0.0f,
                sim, nb);
}

/* Whether (s, i) ranks before (t, j): larger similarity, then smaller index. */
static inline int before(float s, int64_t i, float t, int64_t j)
{
    return s > t || (s == t && i < j);
}

/* Insert (v, i) into one sorted list of `*count` ≤ K entries, if it belongs to the best K. */
static inline void offer(float *sim, int64_t *idx, int *count, int K, float v, int64_t i)
{
    int n = *count;
    if (n == K && !before(v, i, sim[K - 1], idx[K - 1])) return;
    int pos = n < K ? n++ : K - 1;
    while (pos > 0 && before(v, i, sim[pos - 1], idx[pos - 1])) {
        sim[pos] = sim[pos - 1], idx[pos] = idx[pos - 1];
        pos--;
    }
    sim[pos] = v, idx[pos] = i;
    *count = n;
}

void poa_knn_lists_update(poa_knn_lists *l, const float *sim, int nq, int nb, size_t ld,
                          int64_t first)
{
    const int K = l->K;
#pragma omp parallel for schedule(static)
    for (int q = 0; q < nq; q++) {
        float *ls = l->sim + (size_t) q * K;
        int64_t *li = l->idx + (size_t) q * K;
        const float *row = sim + (size_t) q * ld;
        int count = l->count[q];
        for (int j = 0; j < nb; j++) {
            const float v = row[j];
            /* the common case, cheaply: not better than the current K-th */
            if (count == K && v < ls[K - 1]) continue;
            if (v != v) continue; /* NaN: never a neighbour (callers reject such features) */
            offer(ls, li, &count, K, v, first + j);
        }
        l->count[q] = count;
    }
}

void poa_knn_lists_merge(poa_knn_lists *out, const poa_knn_lists *src, int n)
{
    const int K = out->K;
#pragma omp parallel
    {
        int *head = poa_xmalloc(sizeof(int) * (size_t) (n > 0 ? n : 1));
#pragma omp for schedule(static)
        for (int q = 0; q < out->nq; q++) {
            for (int s = 0; s < n; s++) head[s] = 0;
            float *os = out->sim + (size_t) q * K;
            int64_t *oi = out->idx + (size_t) q * K;
            int c = 0;
            for (; c < K; c++) {
                int best = -1;
                size_t bt = 0;
                for (int s = 0; s < n; s++) {
                    if (head[s] >= src[s].count[q]) continue;
                    const size_t at = (size_t) q * src[s].K + head[s];
                    if (best < 0 || before(src[s].sim[at], src[s].idx[at], src[best].sim[bt],
                                           src[best].idx[bt]))
                        best = s, bt = at;
                }
                if (best < 0) break;
                head[best]++;
                os[c] = src[best].sim[bt], oi[c] = src[best].idx[bt];
            }
            out->count[q] = c;
        }
        free(head);
    }
}

/* Rank of class `label` among the scores: how many classes score higher (ties: lower index
 * first). */
static int class_rank(const double *score, int n_classes, int label)
{
    int r = 0;
    for (int c = 0; c < n_classes; c++)
        r += score[c] > score[label] || (score[c] == score[label] && c < label);
    return r;
}

void poa_knn_vote(const poa_knn_lists *l, const int32_t *train_labels, const int32_t *query_labels,
                  int n_classes, const int *ks, int nk, double T, int64_t *correct1,
                  int64_t *correct5)
{
    double *w = poa_xmalloc(sizeof(double) * (size_t) l->K);
    double *score = poa_xmalloc(sizeof(double) * (size_t) n_classes);
    for (int q = 0; q < l->nq; q++) {
        const int n = l->count[q];
        if (n == 0) continue;
        const float *s = l->sim + (size_t) q * l->K;
        const int64_t *ix = l->idx + (size_t) q * l->K;
        /* softmax(sim / T) over the whole list (the official KnnModule), stable form */
        double z = 0;
        for (int t = 0; t < n; t++) z += w[t] = exp(((double) s[t] - s[0]) / T);
        for (int t = 0; t < n; t++) w[t] /= z;
        for (int i = 0; i < nk; i++) {
            const int k = ks[i] < n ? ks[i] : n;
            memset(score, 0, sizeof(double) * (size_t) n_classes);
            for (int t = 0; t < k; t++) score[train_labels[ix[t]]] += w[t];
            const int r = class_rank(score, n_classes, query_labels[q]);
            correct1[i] += r < 1;
            correct5[i] += r < 5;
        }
    }
    free(w);
    free(score);
}
