# common/: errors, logging, timers, RNG, configuration.
noinst_LIBRARIES += src/common/libpoa_common.a
src_common_libpoa_common_a_SOURCES = \
	src/common/poa_error.c src/common/poa_error.h \
	src/common/log.c src/common/log.h \
	src/common/timer.c src/common/timer.h \
	src/common/rng.c src/common/rng.h \
	src/common/bf16.h
# configuration (config_keys.def: the key table) and the shared command line
src_common_libpoa_common_a_SOURCES += \
	src/common/config.c src/common/config.h src/common/config_keys.def \
	src/common/cli.c src/common/cli.h
