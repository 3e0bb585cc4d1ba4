# tests/modelio/: models from files — the safetensors format (cmocka), model sources and the
# extraction invariant over every sub-network of the demo configuration (cmocka), poa-extract
# end to end (shell: command line, files, errors and exit codes, ranks), and the extracted
# files read with NumPy / h5py and loaded into a plain PyTorch ViT (tests/reference/vit_ref.py).
# ckpt_write_seeded and extract_features are the helpers of the shell and Python tests.
MODELIO_SEEDED = tests/modelio/seeded_ckpt.c tests/modelio/seeded_ckpt.h
check_PROGRAMS += tests/modelio/ckpt_write_seeded tests/modelio/extract_features
tests_modelio_ckpt_write_seeded_SOURCES = tests/modelio/ckpt_write_seeded.c $(MODELIO_SEEDED)
tests_modelio_ckpt_write_seeded_LDADD = tests/lib/libpoa_testutil.a $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)
tests_modelio_extract_features_SOURCES = tests/modelio/extract_features.c
tests_modelio_extract_features_LDADD = $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)
if HAVE_CMOCKA
check_PROGRAMS += tests/modelio/test_safetensors tests/modelio/test_model_source \
	tests/modelio/test_extract_invariant
tests_modelio_test_safetensors_SOURCES = tests/modelio/test_safetensors.c
tests_modelio_test_safetensors_CFLAGS = $(TEST_CFLAGS)
tests_modelio_test_safetensors_LDADD = $(TEST_LDADD)
tests_modelio_test_model_source_SOURCES = tests/modelio/test_model_source.c $(MODELIO_SEEDED)
tests_modelio_test_model_source_CFLAGS = $(TEST_CFLAGS)
tests_modelio_test_model_source_LDADD = $(TEST_LDADD)
tests_modelio_test_extract_invariant_SOURCES = tests/modelio/test_extract_invariant.c \
	$(MODELIO_SEEDED)
tests_modelio_test_extract_invariant_CFLAGS = $(TEST_CFLAGS)
tests_modelio_test_extract_invariant_LDADD = $(TEST_LDADD)
TESTS += tests/modelio/test_safetensors tests/modelio/test_model_source \
	tests/modelio/test_extract_invariant
endif
TESTS += tests/modelio/test_extract_cli.sh
dist_noinst_SCRIPTS += tests/modelio/test_extract_cli.sh tests/modelio/test_extract_python.sh
EXTRA_DIST += tests/modelio/check_extracted.py
if HAVE_TORCH
TESTS += tests/modelio/test_extract_python.sh
endif
