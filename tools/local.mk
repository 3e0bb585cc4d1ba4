# tools/: small operator programs.

# poa-config: validate a configuration, print / save the effective values.
bin_PROGRAMS += tools/poa-config
tools_poa_config_SOURCES = tools/poa_config.c
tools_poa_config_LDADD = src/common/libpoa_common.a $(YAML_LIBS) -lm

# Tests of the configuration system (src/common/config.*, cli.*, tools/poa-config).
EXTRA_DIST += tests/config/bad_range.yaml tests/config/bad_rule.yaml tests/config/bad_syntax.yaml \
	tests/config/bad_type.yaml tests/config/bad_unknown_key.yaml tests/config/good_small.yaml \
	tests/config/test_poa_config_cli.sh
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_CPPFLAGS = $(AM_CPPFLAGS) -DPOA_TEST_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_config_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test_config
endif
TESTS += tests/config/test_poa_config_cli.sh
# under mpiexec -n 2 (run-test.sh): rank 0 reads the configuration and broadcasts it
check_PROGRAMS += tests/config/test_mpi_config
tests_config_test_mpi_config_SOURCES = tests/config/test_mpi_config.c
tests_config_test_mpi_config_LDADD = src/common/libpoa_common.a $(YAML_LIBS) -lm
TESTS += tests/config/test_mpi_config
