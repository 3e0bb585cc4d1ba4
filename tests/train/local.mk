# tests/train/: the rank loop: units (cmocka), then end-to-end runs of poa-train on a few
# Fashion-MNIST images (each .sh test packs its own data under tests/out/train/; they skip
# without /usr/bin/python3 + h5py or without the Fashion-MNIST package).
EXTRA_DIST += tests/train/lib.sh tests/train/check_train.py
if HAVE_CMOCKA
check_PROGRAMS += tests/train/test_trainer_units
tests_train_test_trainer_units_SOURCES = tests/train/test_trainer_units.c
tests_train_test_trainer_units_CFLAGS = $(TEST_CFLAGS)
tests_train_test_trainer_units_LDADD = $(TEST_LDADD)
TESTS += tests/train/test_trainer_units
endif
TRAIN_LOOP_TESTS = tests/train/test_train_equiv.sh tests/train/test_train_resume.sh \
	tests/train/test_train_signals.sh tests/train/test_train_ckpt_corrupt.sh \
	tests/train/test_train_failures.sh tests/train/test_train_learning.sh
TESTS += $(TRAIN_LOOP_TESTS)
EXTRA_DIST += $(TRAIN_LOOP_TESTS)
# The same runs on the CUDA backend against the CPU (synthetic data; skipped without a GPU).
TESTS += tests/train/test_gpu_train_parity.sh
EXTRA_DIST += tests/train/test_gpu_train_parity.sh
