# tests/unit/: units of common/, tensor/ and the backend table, the fatal-error path, and the
# configuration system (common/config*, common/cli*, common/arch*).
if HAVE_CMOCKA
UNIT_TESTS = tests/unit/test_common tests/unit/test_tensor tests/unit/test_backend_smoke \
	tests/unit/test_config
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
tests_unit_test_common_SOURCES = tests/unit/test_common.c
tests_unit_test_common_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_common_LDADD = $(TEST_LDADD)
tests_unit_test_tensor_SOURCES = tests/unit/test_tensor.c
tests_unit_test_tensor_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_tensor_LDADD = $(TEST_LDADD)
tests_unit_test_backend_smoke_SOURCES = tests/unit/test_backend_smoke.c
tests_unit_test_backend_smoke_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_backend_smoke_LDADD = $(TEST_LDADD)
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_CPPFLAGS = $(AM_CPPFLAGS) -DPOA_TEST_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_config_LDADD = $(TEST_LDADD)

# the fatal path: fatal_probe fails on purpose, test_fatal_path.sh checks its message and code
check_PROGRAMS += tests/unit/fatal_probe
tests_unit_fatal_probe_SOURCES = tests/unit/fatal_probe.c
tests_unit_fatal_probe_LDADD = $(TEST_LDADD)
TESTS += tests/unit/test_fatal_path.sh
endif
EXTRA_DIST += tests/unit/test_fatal_path.sh
