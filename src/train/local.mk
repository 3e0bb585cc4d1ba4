# train/: the POA step (schedules, sub-network sampler, AdamW parameter groups + EMA, the step;
# README.md) and the pretraining rank loop (loop.c and the trainer_*.c parts; README-train.md).
# Tests: tests/step/ (the step) and tests/train/ (the loop, poa-train end to end).
noinst_LIBRARIES += src/train/libpoa_train.a
src_train_libpoa_train_a_SOURCES = \
	src/train/schedule.c src/train/schedule.h \
	src/train/subnet_sampler.c src/train/subnet_sampler.h \
	src/train/optim.c src/train/optim.h \
	src/train/step.c src/train/step.h src/train/step_layout.h src/train/step_memory.c \
	src/train/loop.c src/train/loop.h \
	src/train/trainer_internal.h \
	src/train/trainer_config.c src/train/trainer_config.h \
	src/train/trainer_comm.c src/train/trainer_comm.h \
	src/train/trainer_data.h src/train/trainer_data_synth.c src/train/trainer_data_loader.c \
	src/train/trainer_ckpt.c \
	src/train/trainer_report.c \
	src/train/trainer_cli.c src/train/trainer_cli.h \
	src/train/metrics.c src/train/metrics.h
POA_TRAIN_A = src/train/libpoa_train.a
EXTRA_DIST += src/train/README.md src/train/README-train.md
