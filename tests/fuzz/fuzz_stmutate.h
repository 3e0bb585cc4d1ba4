/* fuzz_stmutate.h — the mutator of fuzz_extracted_st: mutations of a safetensors file that keep
 * its three parts apart (8-byte header length N, N bytes of JSON header, the data buffer) so
 * that most inputs get past the first check and reach the ones behind it:
 *   - the header text mutated by libFuzzer's byte mutator, N rewritten to its new length (JSON
 *     syntax: quotes, brackets, escapes, nesting, duplicate keys);
 *   - a number of the header (a data offset, a shape dimension, a metadata value such as
 *     "embed_dim": "8") replaced by a boundary value (0, 2^32, 2^63, 2^64, negative, a
 *     fraction, an exponent) or a neighbour;
 *   - a string of the header replaced by another name the format or poa uses (dtypes, the
 *     metadata keys, tensor names), so that names collide, go missing or change type;
 *   - N itself set to a boundary value (past the end, odd, 100,000,000 + 1, 2^64 - 1) with the
 *     bytes unchanged;
 *   - the data buffer cut short, lengthened, or some of its bytes changed.
 * With POA_FUZZ_RAW=1 in the environment the target mutates raw bytes anywhere instead. */
#ifndef POA_TESTS_FUZZ_STMUTATE_H
#define POA_TESTS_FUZZ_STMUTATE_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's byte mutator (provided by libFuzzer). */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* One mutation of the safetensors image data[0..size) in place; returns the new size
 * (<= max_size). */
size_t fuzz_st_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed);

#endif
