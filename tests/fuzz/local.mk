# tests/fuzz/: a fuzz target for every reader (tests/fuzz/README.md).  In every build the targets
# are check programs whose main() replays files (fuzz_replay.c): make check runs each on its seed
# corpus (tests/fuzz/corpus/<target>/) and on the inputs that once crashed or hung it
# (tests/fuzz/regressions/<target>/).  In a tree configured with CC=clang --enable-fuzzing they
# are libFuzzer programs, and `make fuzz FUZZ_SECONDS=N` fuzzes each for N seconds
# (tests/fuzz/run-fuzz.sh).
FUZZ_TARGETS = tests/fuzz/fuzz_config tests/fuzz/fuzz_cli tests/fuzz/fuzz_jpeg \
	tests/fuzz/fuzz_labels tests/fuzz/fuzz_shard tests/fuzz/fuzz_metadata \
	tests/fuzz/fuzz_checkpoint tests/fuzz/fuzz_extracted_h5 tests/fuzz/fuzz_extracted_st
check_PROGRAMS += $(FUZZ_TARGETS) tests/fuzz/fuzz_seeds
FUZZ_COMMON = tests/fuzz/fuzz_util.c tests/fuzz/fuzz_util.h
FUZZ_HDF5 = tests/fuzz/fuzz_h5mutate.h
FUZZ_ST = tests/fuzz/fuzz_stmutate.h
if FUZZING
FUZZ_HDF5 += tests/fuzz/fuzz_h5mutate.c
FUZZ_ST += tests/fuzz/fuzz_stmutate.c
else
FUZZ_COMMON += tests/fuzz/fuzz_replay.c
endif
# Each target links only the archives of its reader (a fuzzing tree builds nothing else).
FUZZ_COMMON_LDADD = src/common/libpoa_common.a $(YAML_LIBS) -lm
FUZZ_DATA_LDADD = $(POA_DATA_A) src/common/libpoa_common.a $(HDF5_LIBS) $(TURBOJPEG_LIBS) \
	$(ZLIB_LIBS) $(YAML_LIBS) -lm
FUZZ_IO_LDADD = $(POA_IO_A) src/tensor/libpoa_tensor.a src/common/libpoa_common.a $(HDF5_LIBS) \
	$(YAML_LIBS) -lm
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c $(FUZZ_COMMON)
tests_fuzz_fuzz_config_LDADD = $(FUZZ_COMMON_LDADD)
tests_fuzz_fuzz_config_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_cli_SOURCES = tests/fuzz/fuzz_cli.c $(FUZZ_COMMON)
tests_fuzz_fuzz_cli_LDADD = $(FUZZ_COMMON_LDADD)
tests_fuzz_fuzz_cli_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_jpeg_SOURCES = tests/fuzz/fuzz_jpeg.c $(FUZZ_COMMON)
tests_fuzz_fuzz_jpeg_LDADD = $(FUZZ_DATA_LDADD)
tests_fuzz_fuzz_jpeg_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_labels_SOURCES = tests/fuzz/fuzz_labels.c $(FUZZ_COMMON)
tests_fuzz_fuzz_labels_LDADD = $(FUZZ_DATA_LDADD)
tests_fuzz_fuzz_labels_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_shard_SOURCES = tests/fuzz/fuzz_shard.c $(FUZZ_COMMON) $(FUZZ_HDF5)
tests_fuzz_fuzz_shard_LDADD = $(FUZZ_DATA_LDADD)
tests_fuzz_fuzz_shard_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_metadata_SOURCES = tests/fuzz/fuzz_metadata.c $(FUZZ_COMMON) $(FUZZ_HDF5)
tests_fuzz_fuzz_metadata_LDADD = $(FUZZ_DATA_LDADD)
tests_fuzz_fuzz_metadata_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_checkpoint_SOURCES = tests/fuzz/fuzz_checkpoint.c tests/fuzz/fuzz_tables.h \
	$(FUZZ_COMMON) $(FUZZ_HDF5)
tests_fuzz_fuzz_checkpoint_LDADD = $(FUZZ_IO_LDADD)
tests_fuzz_fuzz_checkpoint_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
# the extracted-model files, read as the evaluation programs read them (modelio: the model
# built from the metadata, then every tensor); one source, built once per container
FUZZ_MODELIO_LDADD = $(POA_MODELIO_A) $(POA_MODEL_A) $(POA_IO_A) \
	src/tensor/libpoa_tensor.a src/common/libpoa_common.a $(HDF5_LIBS) $(BLAS_LIBS) \
	$(YAML_LIBS) -lm
tests_fuzz_fuzz_extracted_h5_SOURCES = tests/fuzz/fuzz_extracted.c $(FUZZ_COMMON) $(FUZZ_HDF5)
tests_fuzz_fuzz_extracted_h5_LDADD = $(FUZZ_MODELIO_LDADD)
tests_fuzz_fuzz_extracted_h5_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_extracted_st_SOURCES = tests/fuzz/fuzz_extracted.c $(FUZZ_COMMON) $(FUZZ_ST)
tests_fuzz_fuzz_extracted_st_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_SAFETENSORS
tests_fuzz_fuzz_extracted_st_LDADD = $(FUZZ_MODELIO_LDADD)
tests_fuzz_fuzz_extracted_st_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
# the seeds' writer (tests/fuzz/make-seeds.sh): an ordinary program in every build
tests_fuzz_fuzz_seeds_SOURCES = tests/fuzz/fuzz_seeds.c tests/fuzz/fuzz_tables.h
tests_fuzz_fuzz_seeds_LDADD = $(POA_DATA_A) $(POA_IO_A) src/tensor/libpoa_tensor.a \
	src/common/libpoa_common.a $(HDF5_LIBS) $(TURBOJPEG_LIBS) $(ZLIB_LIBS) $(YAML_LIBS) -lm

TESTS += tests/fuzz/test_fuzz_replay.sh
# the replay log of each target (named in a failure message), removed by make clean
CLEANFILES += tests/fuzz/replay-*.log
EXTRA_DIST += tests/fuzz/test_fuzz_replay.sh tests/fuzz/run-fuzz.sh tests/fuzz/make-seeds.sh \
	tests/fuzz/README.md tests/fuzz/corpus tests/fuzz/regressions

# make fuzz FUZZ_SECONDS=N: every target for N seconds (needs a --enable-fuzzing tree).
FUZZ_SECONDS ?= 30
fuzz:
	@if test "x$(FUZZ_LDFLAGS)" = x; then \
	  echo "make fuzz: this tree is not a fuzzing build; configure one with" >&2; \
	  echo "  CC=clang $(top_srcdir)/configure --without-cuda --enable-fuzzing (tests/fuzz/README.md)" >&2; \
	  exit 2; fi
	$(MAKE) $(AM_MAKEFLAGS) $(FUZZ_TARGETS)
	$(SHELL) $(top_srcdir)/tests/fuzz/run-fuzz.sh --seconds $(FUZZ_SECONDS) \
	  --src $(top_srcdir) $(FUZZ_TARGETS)
.PHONY: fuzz
