# train/: see src/train/README.md.  One POA step (issue #4): schedules, sub-network sampler,
# AdamW parameter groups + EMA, the step itself.  Tests: tests/step/local.mk.
noinst_LIBRARIES += src/train/libpoa_train.a
src_train_libpoa_train_a_SOURCES = $(TRAIN_SOURCES) $(TRAIN_LOOP_SOURCES)
POA_TRAIN_A = src/train/libpoa_train.a
TRAIN_SOURCES = \
	src/train/schedule.c src/train/schedule.h \
	src/train/subnet_sampler.c src/train/subnet_sampler.h \
	src/train/optim.c src/train/optim.h \
	src/train/step.c src/train/step.h
EXTRA_DIST += src/train/README.md
include tests/step/local.mk
