/* test_mpi_step_groups.c — rank groups (docs/algorithm.md §1.2, §3.5, §8.5): two MPI ranks with one
 * rank group each (SK through MPI collectives, gradients averaged over the ranks) compute the
 * same step as one process holding both groups: same sub-networks, drop-path draws (batch
 * subsets and per-sample Bernoulli masks), masks, loss values, parameters, moments and teacher
 * (up to the order of float additions). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "tests/step/step_test_batch.h"
#include "train/step.h"

#include <math.h>
#include <mpi.h>
#include <string.h>

static poa_backend *be;
static poa_model model;
static int rank, nranks;

static void mpi_sum(void *ctx, double *buf, size_t n)
{
    (void) ctx;
    MPI_Allreduce(MPI_IN_PLACE, buf, (int) n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

static void mpi_max(void *ctx, double *buf, size_t n)
{
    (void) ctx;
    MPI_Allreduce(MPI_IN_PLACE, buf, (int) n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

/* Gradient averaging over ranks (what the comm buckets do with average = 1). */
static void mpi_average(void *ctx, float *g, size_t n)
{
    (void) ctx;
    MPI_Allreduce(MPI_IN_PLACE, g, (int) n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    for (size_t i = 0; i < n; i++) g[i] *= 1.0f / (float) nranks;
}

static int mpi_any(void *ctx, int flag)
{
    (void) ctx;
    int out;
    MPI_Allreduce(&flag, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

static poa_step_config config(int G, uint32_t first_group, int bernoulli)
{
    poa_step_config cfg = poa_step_config_official(&model, 2, G, 1);
    if (bernoulli) cfg.drop_path_rate = 0.1, cfg.drop_path_bernoulli = 1;
    cfg.sched.epoch_length = 2, cfg.sched.epochs = 8, cfg.sched.warmup_epochs = 1;
    cfg.sched.ibot_activate_epochs = 1; /* iBOT from it = 2: patch SK pooled too */
    cfg.first_group = first_group;
    cfg.seed = 21;
    return cfg;
}

static double max_rel(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++)
        num += ((double) a[i] - b[i]) * ((double) a[i] - b[i]), den += (double) b[i] * b[i];
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* *state: 0 batch-subset drop path (rate 0.2), 1 per-sample Bernoulli drop path (rate 0.1). */
static void test_two_ranks_equal_two_groups(void **state)
{
    const int bernoulli = *(const int *) *state;
    /* one process, both groups */
    poa_step_config c2 = config(2, 0, bernoulli);
    poa_step *both = poa_step_create(be, &model, &c2, NULL, NULL);
    poa_step_init_params(both, 9);
    test_batch tb2;
    test_batch_make(&tb2, be, &model, 2, 0, 2, 1, 17);
    /* this rank's group, ranks communicating */
    poa_step_config c1 = config(1, (uint32_t) rank, bernoulli);
    poa_collective coll = {NULL, mpi_sum, mpi_max};
    poa_step_hooks hooks = {.reduce_grads = mpi_average, .any = mpi_any};
    poa_step *mine = poa_step_create(be, &model, &c1, &coll, &hooks);
    poa_step_init_params(mine, 9);
    test_batch tb1;
    test_batch_make(&tb1, be, &model, 2, rank, 1, 1, 17);

    int bad = 0;
    for (long long it = 1; it <= 3; it++) {
        poa_step_report r2, r1;
        tb2.b.it = tb1.b.it = it;
        /* no assert between collectives: a failure on one rank would leave the other waiting */
        bad += poa_step_run(both, &tb2.b, &r2) != POA_OK;
        bad += poa_step_run(mine, &tb1.b, &r1) != POA_OK;
        if (r1.subnet_width[0] != r2.subnet_width[rank] ||
            r1.subnet_depth[0] != r2.subnet_depth[rank] || r1.n_masked[0] != r2.n_masked[rank]) {
            fprintf(stderr,
                    "rank %d it %lld: sub-network %dx%d (%d masked), as group: %dx%d (%d)\n", rank,
                    it, r1.subnet_width[0], r1.subnet_depth[0], r1.n_masked[0],
                    r2.subnet_width[rank], r2.subnet_depth[rank], r2.n_masked[rank]);
            bad++;
        }
        /* the per-rank loss values averaged over the ranks = the two-group mean */
        mpi_sum(NULL, r1.slots, (size_t) r1.n_slots);
        for (int i = 0; i < r1.n_slots; i++) {
            double want = r2.slots[i], got = r1.slots[i] / nranks;
            if (fabs(got - want) > 1e-5 * fabs(want) + 1e-9) {
                fprintf(stderr,
                        "rank %d it %lld: loss slot %d: %.9g (2 ranks) vs %.9g (2 groups)\n", rank,
                        it, i, got, want);
                bad++;
            }
        }
        if (fabs(r1.grad_norm[0] - r2.grad_norm[0]) > 1e-5 * r2.grad_norm[0]) bad++;
    }
    size_t n = model.table.total;
    const struct {
        const char *what;
        const float *a, *b;
    } cmp[] = {
        {"params", poa_step_params(mine), poa_step_params(both)},
        {"exp_avg", poa_step_optim(mine)->m, poa_step_optim(both)->m},
        {"exp_avg_sq", poa_step_optim(mine)->v, poa_step_optim(both)->v},
        {"teacher", poa_step_teacher(mine), poa_step_teacher(both)},
    };
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        double e = max_rel(cmp[i].a, cmp[i].b, n);
        if (e > 1e-5) {
            fprintf(stderr, "rank %d: %s differ: relative error %.3e\n", rank, cmp[i].what, e);
            bad++;
        }
    }
    int all_bad;
    MPI_Allreduce(&bad, &all_bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    test_batch_free(&tb1, be);
    test_batch_free(&tb2, be);
    poa_step_destroy(mine);
    poa_step_destroy(both);
    assert_int_equal(all_bad, 0);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    char err[128];
    be = poa_backend_create("cpu", NULL, err, sizeof err);
    poa_model_config mc;
    POA_CHECK(poa_model_config_from_arch(&mc, "tiny", NULL) == POA_OK, "tiny config");
    poa_model_build(&model, &mc);
    int rc = 1;
    if (nranks == 2) {
        static int subset = 0, bernoulli = 1;
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_prestate(test_two_ranks_equal_two_groups, &subset),
            cmocka_unit_test_prestate(test_two_ranks_equal_two_groups, &bernoulli),
        };
        rc = cmocka_run_group_tests(tests, NULL, NULL);
    } else if (rank == 0) {
        fprintf(stderr, "test_mpi_step_groups needs 2 ranks\n");
    }
    poa_model_free(&model);
    poa_backend_destroy(be);
    MPI_Finalize();
    return rc;
}
