/* data_test_pack.h — a small packed dataset written directly with the shard/metadata writers
 * (no poa-pack, no Fashion-MNIST): n JPEGs of assorted sizes in `shards` shards; entry `corrupt`
 * (if >= 0) holds bytes that are not a JPEG. */
#ifndef POA_TESTS_DATA_PACK_H
#define POA_TESTS_DATA_PACK_H

#include "common/poa_error.h"

poa_status test_make_packed(const char *dir, int n, int shards, int corrupt, poa_err *err);

#endif
