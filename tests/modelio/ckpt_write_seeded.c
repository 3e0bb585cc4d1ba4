/* ckpt_write_seeded.c — a training checkpoint of a configuration with seeded, trained-like
 * weights, for the shell and Python tests of poa-extract (tests/modelio/seeded_ckpt.h).
 *   ckpt_write_seeded DIR CONFIG SEED ITERATION [key=value ...]
 * writes DIR/checkpoint_<ITERATION>.h5 and DIR/eval/training_<ITERATION>/teacher_checkpoint.h5. */
#include "seeded_ckpt.h"
#include "common/poa_error.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR CONFIG SEED ITERATION [key=value ...]\n", argv[0]);
        return POA_EXIT_USAGE;
    }
    return seeded_ckpt_write(argv[1], argv[2], (const char *const *) argv + 5, argc - 5,
                             strtoull(argv[3], NULL, 10), strtoll(argv[4], NULL, 10), NULL, NULL);
}
