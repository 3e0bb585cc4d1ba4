/* trainer_cli.c — see trainer_cli.h. */
#include "train/trainer_cli.h"
#include "common/log.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static const poa_cli_option options[] = {
    {"data", 'd', "DIR", "packed training data (a poa-pack folder); sets train.dataset_path"},
    {"output", 'o', "DIR",
     "output directory (config, logs, metrics, checkpoints); sets "
     "train.output_dir"},
    {"output-dir", 0, "DIR", "same as --output (the official train.py's name)"},
    {"no-resume", 0, NULL, "start from scratch even if the output directory holds checkpoints"},
    {"dry-run", 'n', NULL,
     "print the model, the sub-network set and the memory plan per rank, "
     "then exit (no data, no training)"},
    {"ranks", 0, "N", "--dry-run: plan for N ranks (default: the ranks of this launch)"},
    {"max-steps", 0, "N",
     "stop after N iterations of this invocation, writing a checkpoint "
     "(exit 0; run again to continue)"},
    {"synthetic-data", 0, NULL, "train on random batches instead of --data (benchmarks, tests)"},
    {"profile-at", 0, "IT",
     "time every backend op of iteration IT and print where its time went "
     "(rank 0's table; src/backend/README.md, \"Profiling\")"},
    {"debug-nonfinite-at", 0, "IT",
     "tests: put a NaN into a weight of the last rank before "
     "iteration IT (the run must stop with exit 5)"},
};

static const poa_cli_spec spec = {
    .program = "poa-train",
    .summary = "POA self-supervised pretraining (one MPI rank per GPU, or per group of cores on "
               "the CPU)",
    .options = options,
    .n_options = (int) (sizeof options / sizeof options[0]),
    .uses_config = true,
    .epilog = "Launch with mpiexec or srun, e.g.\n"
              "  mpiexec -n 2 poa-train --config configs/demo.yaml --data PACKED --output RUN\n"
              "Exit codes: 0 done, 2 usage/configuration, 3 data or checkpoint format, 4 output "
              "not writable,\n5 non-finite loss (last good checkpoint kept), 75 stopped by "
              "SIGUSR1/SIGTERM/SIGINT after a\ncheckpoint (requeue: the same command resumes).  "
              "See src/train/README-train.md.",
};

static long long int_option(const poa_train_args *a, const char *name, long long dflt, int *bad)
{
    const char *v = poa_cli_value(&a->cli, &spec, name);
    if (!v) return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || end == v || x < 0) *bad = 1;
    return x;
}

/* Program options → a->opts; --data/--output → the configuration. */
static int apply_options(poa_train_args *a)
{
    int bad = 0;
    poa_err err;
    a->dry_run = poa_cli_flag(&a->cli, &spec, "dry-run");
    a->opts.no_resume = poa_cli_flag(&a->cli, &spec, "no-resume");
    a->opts.synthetic_data = poa_cli_flag(&a->cli, &spec, "synthetic-data");
    a->opts.max_steps = int_option(a, "max-steps", 0, &bad);
    a->opts.debug_nonfinite_at = int_option(a, "debug-nonfinite-at", -1, &bad);
    a->opts.profile_at = int_option(a, "profile-at", -1, &bad);
    a->ranks = (int) int_option(a, "ranks", a->world, &bad);
    if (bad || a->ranks < 1)
        return poa_cli_usage_error(&spec, "--max-steps, --ranks, --profile-at and "
                                          "--debug-nonfinite-at take a non-negative integer "
                                          "(--ranks at least 1)");
    const char *data = poa_cli_value(&a->cli, &spec, "data");
    const char *out = poa_cli_value(&a->cli, &spec, "output");
    if (!out) out = poa_cli_value(&a->cli, &spec, "output-dir");
    poa_cfg_origin cl = {POA_CFG_SRC_CLI, 0, 0, 0};
    if ((data && poa_config_set_text(&a->cfg, "train.dataset_path", data, cl, &err) != POA_OK) ||
        (out && poa_config_set_text(&a->cfg, "train.output_dir", out, cl, &err) != POA_OK))
        return poa_cli_usage_error(&spec, "%s", err.msg);
    return -1;
}

int poa_train_cli_setup(int argc, char **argv, poa_train_args *a)
{
    memset(a, 0, sizeof *a);
    poa_trainer_opts_default(&a->opts);
    int up = 0, provided = 0;
    MPI_Initialized(&up);
    if (!up) {
        MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        a->mpi_started = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &a->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &a->world);
    poa_log_init(a->rank, a->world, 0);
    poa_err err;
    int rc = poa_cli_main_setup(&spec, argc, argv, &a->cli, NULL, a->world, &err);
    if (rc >= 0) return rc;
    if (poa_cli_build_config(&a->cli, &a->cfg, a->world, &err) != POA_OK) {
        if (a->rank == 0) fprintf(stderr, "%s: error: %s\n", spec.program, err.msg);
        return POA_EXIT_USAGE;
    }
    if ((rc = apply_options(a)) >= 0) return rc;
    if (a->dry_run && a->ranks != a->world) { /* derived values (optim.lr) for --ranks */
        poa_config_finalize(&a->cfg, a->ranks, &err);
    }
    if (poa_log_speaks()) poa_config_print(&a->cfg, stdout);
    return -1;
}

/* train.backend = cuda where it cannot run: say why before the NCCL layer would fail on it. */
static int cuda_unavailable(const poa_train_args *a)
{
    const char *why = NULL;
    if (!poa_comm_kind_available(POA_COMM_NCCL))
        why = "this build has no CUDA backend with NCCL (reconfigure with --with-cuda --with-nccl)";
    else if (poa_backend_device_count("cuda") < 1)
        why = "no CUDA device is visible (no GPU or no driver on this node)";
    if (!why) return 0;
    if (a->rank == 0)
        fprintf(stderr, "%s: error: train.backend = cuda: %s; use train.backend = cpu or auto\n",
                spec.program, why);
    return 1;
}

static int train(poa_train_args *a)
{
    const int cuda = poa_trainer_backend_kind(&a->cfg) == POA_BACKEND_CUDA;
    if (cuda && cuda_unavailable(a)) return POA_EXIT_USAGE;
    poa_comm_kind kind = cuda ? POA_COMM_NCCL : POA_COMM_MPI;
    poa_comm *d = poa_comm_init(NULL, NULL, kind);
    poa_trainer *t = NULL;
    poa_err err;
    poa_status st = poa_trainer_create(&a->cfg, d, &a->opts, &t, &err);
    int rc;
    if (st != POA_OK) {
        if (a->rank == 0) fprintf(stderr, "%s: error: %s\n", spec.program, err.msg);
        rc = poa_status_exit_code(st);
    } else {
        rc = poa_trainer_run(t);
        const poa_trainer_summary *s = poa_trainer_get_summary(t);
        if (a->rank == 0 && s->last_it >= s->first_it)
            poa_info("poa-train: iterations %lld-%lld of %lld in %.1fs, %.1f img/s, loss %.5f -> "
                     "%.5f, data wait %.1f%%, comm %.2fs (exposed %.2fs); exit %d",
                     s->first_it, s->last_it, s->total_its, s->seconds, s->img_s, s->first_loss,
                     s->last_loss, 100 * s->data_wait_frac, s->comm_s, s->comm_exposed_s, rc);
    }
    poa_trainer_destroy(t);
    poa_comm_finalize(d);
    return rc;
}

int poa_train_cli_run(poa_train_args *a)
{
    if (!a->dry_run) return train(a);
    poa_err err;
    poa_status st = POA_OK;
    if (a->rank == 0) {
        st = poa_train_dry_run(&a->cfg, a->ranks, stdout, &err);
        if (st != POA_OK) fprintf(stderr, "%s: error: %s\n", spec.program, err.msg);
    }
    int code = poa_status_exit_code(st);
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return code;
}

int poa_train_cli_finish(poa_train_args *a, int rc)
{
    poa_cli_free(&a->cli);
    int down = 0;
    MPI_Finalized(&down);
    if (a->mpi_started && !down) MPI_Finalize();
    return rc;
}
