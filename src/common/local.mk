# common/: errors, logging, timers, RNG, atomic file writes, the model architectures (presets
# and the one shape check), the configuration (config_keys.def: the key table; config_*.c by
# concern) and the command line shared by every program.
noinst_LIBRARIES += src/common/libpoa_common.a
src_common_libpoa_common_a_SOURCES = \
	src/common/poa_error.c src/common/poa_error.h \
	src/common/log.c src/common/log.h \
	src/common/timer.c src/common/timer.h \
	src/common/rng.c src/common/rng.h \
	src/common/bf16.h \
	src/common/arch.c src/common/arch.h \
	src/common/config.h src/common/config_keys.def src/common/config_internal.h \
	src/common/config_keys.c src/common/config_set.c src/common/config_yaml.c \
	src/common/config_validate.c src/common/config_print.c \
	src/common/cli.c src/common/cli.h \
	src/common/h5check.c src/common/h5check.h \
	src/common/atomic_io.c src/common/atomic_io.h
