# tests/config/: the configuration through the programs: poa-config on the fixtures and the
# shipped files (test_poa_config_cli.sh), and one configuration read by rank 0 and broadcast
# under mpiexec -n 2 (test_mpi_config).  The units are tests/unit/test_config.
EXTRA_DIST += tests/config/bad_range.yaml tests/config/bad_rule.yaml tests/config/bad_syntax.yaml \
	tests/config/bad_type.yaml tests/config/bad_unknown_key.yaml tests/config/good_small.yaml \
	tests/config/test_poa_config_cli.sh
TESTS += tests/config/test_poa_config_cli.sh
check_PROGRAMS += tests/config/test_mpi_config
tests_config_test_mpi_config_SOURCES = tests/config/test_mpi_config.c
tests_config_test_mpi_config_LDADD = src/common/libpoa_common.a $(YAML_LIBS) -lm
TESTS += tests/config/test_mpi_config
