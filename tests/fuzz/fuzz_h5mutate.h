/* fuzz_h5mutate.h — the mutator of the HDF5 targets (fuzz_shard, fuzz_metadata, fuzz_checkpoint,
 * fuzz_extracted_h5): mutations that keep the HDF5 structure valid and change what poa reads.
 *
 * libhdf5 1.10 does not survive arbitrary bytes in its own metadata (object headers, B-trees,
 * heaps): random flips there crash or hang it inside the library (tests/fuzz/README.md, "HDF5").
 * Those are not poa's bugs and poa cannot fix them, so the HDF5 targets mutate through the HDF5
 * API instead (the file is opened from memory with the core driver):
 *   - the bytes of a dataset (read, mutated by libFuzzer's byte mutator, written back);
 *   - an integer attribute set to a boundary value (0, -1, 2^31, 2^63 - 1, ...) or a nearby one;
 *   - a string attribute replaced by other bytes, or by an array of 2 to 4 strings;
 *   - a dataset recreated with another shape (larger than its data: HDF5 then allocates no
 *     storage, so the header claims more than the file holds), another type, or removed;
 *   - an attribute or a link removed;
 *   - bytes flipped inside a dataset's stored data in the file image (never in metadata): the
 *     checksums and CRCs poa relies on must catch them.
 * With POA_FUZZ_RAW_HDF5=1 in the environment the target mutates raw bytes anywhere instead
 * (libFuzzer's own mutator): that is how the limits of libhdf5 were measured. */
#ifndef POA_TESTS_FUZZ_H5MUTATE_H
#define POA_TESTS_FUZZ_H5MUTATE_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's byte mutator (provided by libFuzzer). */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* One structure-keeping mutation of the HDF5 image data[0..size) in place; returns the new size
 * (<= max_size), or size unchanged when the input is not an HDF5 image poa's targets can open. */
size_t fuzz_h5_mutate(uint8_t *data, size_t size, size_t max_size, unsigned seed);

#endif
