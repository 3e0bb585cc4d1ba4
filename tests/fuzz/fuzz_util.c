/* fuzz_util.c — see fuzz_util.h. */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include "common/log.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void remove_all(void);

static char base[256], scratch[300], input[300];

static void make_base(void)
{
    if (base[0]) return;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof base, "%s/poa-fuzz-XXXXXX", tmp);
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(scratch, sizeof scratch, "%s/out", base);
    snprintf(input, sizeof input, "%s/input", base);
    mkdir(scratch, 0700);
    atexit(remove_all);
}

const char *fuzz_input_file(const uint8_t *data, size_t size)
{
    make_base();
    FILE *f = fopen(input, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(input);
        abort();
    }
    return input;
}

const char *fuzz_scratch_dir(void)
{
    make_base();
    return scratch;
}

void fuzz_scratch_clear(void)
{
    DIR *d = opendir(fuzz_scratch_dir());
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || e->d_name[1] == '.')) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
        unlink(p);
    }
    closedir(d);
}

uint64_t fuzz_hash(const uint8_t *data, size_t size)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    return h;
}

uint64_t fuzz_rng_next(fuzz_rng *r)
{
    r->s ^= r->s << 13;
    r->s ^= r->s >> 7;
    r->s ^= r->s << 17;
    return r->s;
}

uint64_t fuzz_rng_below(fuzz_rng *r, uint64_t n)
{
    return n ? fuzz_rng_next(r) % n : 0;
}

void fuzz_quiet(void)
{
    poa_log_set_level(POA_LOG_ERROR);
}

void fuzz_note(const char *what, int st, const char *msg)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("POA_FUZZ_VERBOSE");
        verbose = v && v[0] == '1';
    }
    if (verbose) fprintf(stderr, "fuzz: %s: %s\n", what, st == 0 ? "ok" : msg);
}

static void remove_all(void)
{
    fuzz_scratch_clear();
    rmdir(scratch);
    unlink(input);
    rmdir(base);
}
