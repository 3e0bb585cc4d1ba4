/* data_util.h — small helpers shared by the data layer: string tables, CRC-32, FNV-1a hashing,
 * whole-file reads and atomic (temporary file + rename) output paths. */
#ifndef POA_DATA_UTIL_H
#define POA_DATA_UTIL_H

#include "common/poa_error.h"

#include <stddef.h>
#include <stdint.h>

/* A growable table of NUL-terminated strings stored in one buffer (one allocation for 1.3 M file
 * names instead of 1.3 M). */
typedef struct poa_strtab {
    size_t n, cap;     /* strings held / capacity of off                  */
    size_t *off;       /* start of string i in buf                        */
    char *buf;         /* all strings, each followed by '\0'               */
    size_t used, size; /* bytes used / allocated in buf                  */
} poa_strtab;

void poa_strtab_init(poa_strtab *t);
void poa_strtab_free(poa_strtab *t);
void poa_strtab_push(poa_strtab *t, const char *s);
void poa_strtab_push_n(poa_strtab *t, const char *s, size_t len);
static inline const char *poa_strtab_get(const poa_strtab *t, size_t i)
{
    return t->buf + t->off[i];
}
/* Length of the longest string (0 for an empty table). */
size_t poa_strtab_max_len(const poa_strtab *t);

/* CRC-32 with zlib's crc32_z (IEEE 802.3 polynomial, reflected; zlib's table-free hardware
 * paths where it has them): start with crc = 0, so that Python's zlib.crc32(data) gives the
 * same value. */
uint32_t poa_crc32(uint32_t crc, const void *data, size_t n);

/* 64-bit FNV-1a, chainable: h = poa_fnv1a64(h, data, n), start with POA_FNV64_INIT. */
#define POA_FNV64_INIT 0xcbf29ce484222325ull
uint64_t poa_fnv1a64(uint64_t h, const void *data, size_t n);

/* Read a whole regular file into a malloc'ed buffer.  Refuses FIFOs, sockets and devices (so
 * a FIFO in a class folder cannot block the run) with a message naming the file type. */
poa_status poa_read_file(const char *path, uint8_t **data, size_t *size, poa_err *err);

/* Join dir + "/" + name into buf; POA_ERR_ARG when it does not fit. */
poa_status poa_path_join(char *buf, size_t n, const char *dir, const char *name, poa_err *err);

#endif
