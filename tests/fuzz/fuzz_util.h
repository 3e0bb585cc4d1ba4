/* fuzz_util.h — helpers shared by the fuzz targets (tests/fuzz/README.md).
 *
 * Every target defines LLVMFuzzerTestOneInput.  Built with --enable-fuzzing (clang), libFuzzer
 * provides main(); in every other build fuzz_replay.c does, running the target once on each
 * file named on the command line (make check replays the seed corpora and the regressions).
 *
 * Readers that take a path get the input as a file in a scratch folder of the process, in /dev/shm
 * where it exists (memory, not disk; HDF5 needs a real path: it resolves /proc/self/fd links). */
#ifndef POA_TESTS_FUZZ_UTIL_H
#define POA_TESTS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The path of a file holding data[0..size) (the same path every call: one input at a time).
 * Aborts on failure (that is a harness problem, not a finding). */
const char *fuzz_input_file(const uint8_t *data, size_t size);

/* An empty scratch folder for what a target writes (emptied by fuzz_scratch_clear). */
const char *fuzz_scratch_dir(void);
void fuzz_scratch_clear(void);

/* A deterministic 64-bit hash of the input (seeds the random parts of a target). */
uint64_t fuzz_hash(const uint8_t *data, size_t size);

/* The mutators' random numbers (xorshift64; any seed but 0). */
typedef struct fuzz_rng {
    uint64_t s;
} fuzz_rng;
uint64_t fuzz_rng_next(fuzz_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t fuzz_rng_below(fuzz_rng *r, uint64_t n);

/* Switch poa's warnings off (errors still print): a target reports through its return and
 * through sanitizer findings, not through log lines. */
void fuzz_quiet(void);

/* With POA_FUZZ_VERBOSE=1: print what a reader said about the input ("ok" when st is POA_OK), to
 * see that the seeds are read completely (make-seeds.sh) and what a regression input hits. */
void fuzz_note(const char *what, int st, const char *msg);

#endif
