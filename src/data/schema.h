/* schema.h — the two data file formats as tables, and the validator that poa-pack --verify, the
 * loader and the tests share.
 *
 * The tables are the machine-checkable form of the two sections of hdf5-schemas/dataset.md:
 * each section holds the rows printed by poa_schema_print() between "<!-- schema:NAME:begin -->"
 * and "<!-- schema:NAME:end -->" (NAME = shard or metadata), and tests/data/test_data_schema fails
 * when the document and the table differ.
 *
 * Paths: "/group/dataset" for datasets and groups, "/group@name" for an attribute of a group
 * ("@name" alone: of the root).  "{split}" stands for every split listed in the root attribute
 * `splits` (metadata file).  Shapes: "[expr, …]" where expr is an integer, or the name of an
 * integer attribute of the nearest enclosing group that has it, optionally "+1".
 */
#ifndef POA_DATA_SCHEMA_H
#define POA_DATA_SCHEMA_H

#include "common/poa_error.h"

#include <hdf5.h>
#include <stdio.h>

typedef enum { POA_SCHEMA_ATTR, POA_SCHEMA_DATASET, POA_SCHEMA_GROUP } poa_schema_kind;

typedef enum {
    POA_DT_NONE = 0, /* groups                                    */
    POA_DT_U8,
    POA_DT_U32,
    POA_DT_U64,
    POA_DT_I32,
    POA_DT_I64,
    POA_DT_STR, /* fixed- or variable-length UTF-8 string */
} poa_schema_dtype;

enum {
    POA_SCHEMA_CONTIGUOUS = 1, /* dataset must be contiguous and unfiltered (read with pread) */
};

typedef struct poa_schema_item {
    poa_schema_kind kind;
    const char *path;
    poa_schema_dtype dtype;
    const char *shape; /* "" for scalars and groups                          */
    const char *value; /* required value of a string/integer attribute, or "" */
    unsigned flags;
    const char *doc; /* one line: meaning and units                        */
} poa_schema_item;

typedef struct poa_schema {
    const char *format; /* value of the root attribute `format` */
    long version;       /* value of the root attribute `format_version` */
    const poa_schema_item *items;
    size_t n_items;
} poa_schema;

#define POA_SHARD_FORMAT            "poa-dataset-shard"
#define POA_SHARD_FORMAT_VERSION    1
#define POA_METADATA_FORMAT         "poa-dataset-metadata"
#define POA_METADATA_FORMAT_VERSION 1
#define POA_METADATA_FILE           "metadata.h5"

extern const poa_schema poa_shard_schema;
extern const poa_schema poa_metadata_schema;

/* Check that the open file `file` (named `path` in messages) follows schema s: format name and
 * version first (POA_ERR_VERSION with what to run), then every item: presence, dtype, rank and
 * shape, fixed attribute values, contiguous layout.  The first violation is reported. */
poa_status poa_schema_validate(hid_t file, const poa_schema *s, const char *path, poa_err *err);

/* Print the table rows ("| kind | path | dtype | shape | value | description |"). */
void poa_schema_print(FILE *out, const poa_schema *s);
const char *poa_schema_dtype_name(poa_schema_dtype t);

#endif
