/* fuzz_labels.c — ROOT/labels.txt, the class list of an ImageNet folder (data/scan.c,
 * poa_labels_read), then lookups of the ids it read and of ids it did not. */
#include "fuzz_util.h"

#include "data/scan.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1 << 20)) return 0;
    fuzz_quiet();
    const char *path = fuzz_input_file(data, size);
    poa_labels l;
    poa_err err;
    poa_status st = poa_labels_read(path, &l, &err);
    fuzz_note("labels", st, err.msg);
    if (st == POA_OK) {
        for (size_t i = 0; i < l.wnids.n; i++) {
            const char *name = poa_labels_lookup(&l, poa_strtab_get(&l.wnids, i));
            if (!name || strcmp(name, poa_strtab_get(&l.names, i)) != 0) __builtin_trap();
        }
        (void) poa_labels_lookup(&l, "n00000000-not-there");
        poa_labels_free(&l);
    }
    return 0;
}
