/* parity_backend.h — the command line shared by the PyTorch parity programs (loss_parity,
 * step_parity): which backend runs the check against the float64 reference.
 *
 *   PROG [--backend cpu|cuda] REF.h5     check the backend (default cpu) against REF.h5
 *   PROG --backend NAME --available      exit 0 if the backend has a device here, 77 if not
 *
 * The backend runs with fp32 activations and no TF32 (poa_backend_opts), so one tolerance
 * holds for both backends.  Exit 77 (skipped) when the backend has no device (a GPU test on a
 * machine without a GPU), 2 on a bad command line. */
#ifndef POA_TESTS_STEP_PARITY_BACKEND_H
#define POA_TESTS_STEP_PARITY_BACKEND_H

#include "backend/backend.h"

#include <stdio.h>
#include <string.h>

/* Parses argv; returns a backend and sets *path, or returns NULL with the process's exit
 * status in *status (0 after a successful --available). */
static inline poa_backend *parity_backend_open(int argc, char **argv, const char **path,
                                               int *status)
{
    const char *name = "cpu";
    int probe = 0, i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--available") == 0)
            probe = 1;
        else
            break;
    }
    *status = 2;
    if (probe ? i != argc : i != argc - 1) {
        fprintf(stderr,
                "usage: %s [--backend cpu|cuda] REF.h5\n       %s --backend NAME --available\n",
                argv[0], argv[0]);
        return NULL;
    }
    if (strcmp(name, "cpu") != 0 && strcmp(name, "cuda") != 0) {
        fprintf(stderr, "%s: --backend %s: expected cpu or cuda\n", argv[0], name);
        return NULL;
    }
    if (poa_backend_device_count(name) < 1) {
        printf("SKIP: no %s device here\n", name);
        *status = 77;
        return NULL;
    }
    *status = 0;
    if (probe) return NULL;
    *path = argv[i];
    char err[256];
    poa_backend_opts opts = {.act_dtype = POA_DT_F32, .device = 0, .allow_tf32 = 0};
    poa_backend *be = poa_backend_create(name, &opts, err, sizeof err);
    if (!be) {
        fprintf(stderr, "%s: cannot create the %s backend: %s\n", argv[0], name, err);
        *status = 1;
        return NULL;
    }
    printf("%s: backend %s (fp32 activations, TF32 off), reference %s\n", argv[0], name, *path);
    return be;
}

#endif
