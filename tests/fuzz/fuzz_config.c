/* fuzz_config.c — the configuration readers: YAML files (common/config_yaml.c) and key=value
 * overrides (common/config_set.c), then poa_config_finalize.
 *
 * Input: byte 0 chooses the reader (even: the rest is a YAML document; odd: the rest is one
 * key=value override per line).  Oracle, beyond "no crash, no sanitizer report": a configuration
 * that finalizes is written as YAML (what poa-train saves with every run) and must read back to
 * the same values — the saved configuration of a run must always reload. */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check_round_trip(const poa_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    poa_err err;
    if (!f || poa_config_write_yaml(cfg, f, false, &err) != POA_OK) abort();
    fclose(f);
    poa_config *back = malloc(sizeof *back);
    poa_config_defaults(back);
    if (poa_config_load_yaml_string(back, "saved", text, &err) != POA_OK) {
        fprintf(stderr, "fuzz_config: the saved configuration does not reload: %s\n%s\n", err.msg,
                text);
        abort();
    }
    const char *diff = poa_config_first_difference(cfg, back);
    if (diff) {
        fprintf(stderr, "fuzz_config: key %s changes when saved and reloaded\n", diff);
        abort();
    }
    free(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    fuzz_quiet();
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    poa_config *cfg = malloc(sizeof *cfg);
    poa_config_defaults(cfg);
    poa_err err;
    poa_status st = POA_OK;
    if ((data[0] & 1) == 0) {
        st = poa_config_load_yaml_string(cfg, "fuzz.yaml", text, &err);
    } else {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && st == POA_OK;
             line = strtok_r(NULL, "\n", &save))
            st = poa_config_set_override(cfg, line, &err);
    }
    fuzz_note("config read", st, err.msg);
    if (st == POA_OK) {
        int world = 1 + (data[0] >> 1) % 64;
        st = poa_config_finalize(cfg, world, &err);
        fuzz_note("config finalize", st, err.msg);
        if (st == POA_OK) check_round_trip(cfg);
    }
    free(cfg);
    free(text);
    return 0;
}
