# tests/eval/: the k-NN pieces (test_knn: top-K lists against brute force, split/merge
# invariance with ties, votes by hand), the linear-probe pieces (test_linear: kept blocks,
# classifier grid, gradients, SGD, accuracy, data order, training transform) and the evaluation
# programs end to end on a small packed Fashion-MNIST and a seeded demo checkpoint: poa-eval-knn
# against the NumPy / PyTorch reference of the protocol (tests/reference/knn_ref.py),
# poa-eval-linear against the PyTorch reference of its protocol (tests/reference/linear_ref.py),
# 1 against 2 MPI ranks, extracted models, the raw-pixel baseline, errors and exit codes.
if HAVE_CMOCKA
check_PROGRAMS += tests/eval/test_knn
tests_eval_test_knn_SOURCES = tests/eval/test_knn.c
tests_eval_test_knn_CFLAGS = $(TEST_CFLAGS)
tests_eval_test_knn_LDADD = $(TEST_LDADD)
TESTS += tests/eval/test_knn
check_PROGRAMS += tests/eval/test_linear
tests_eval_test_linear_SOURCES = tests/eval/test_linear.c \
	tests/data/data_test_pack.c tests/data/data_test_pack.h
tests_eval_test_linear_CFLAGS = $(TEST_CFLAGS) -I$(top_srcdir)/tests/data
tests_eval_test_linear_LDADD = $(TEST_LDADD)
TESTS += tests/eval/test_linear
endif
TESTS += tests/eval/test_eval_knn.sh tests/eval/test_eval_linear.sh
dist_noinst_SCRIPTS += tests/eval/test_eval_knn.sh tests/eval/test_eval_linear.sh
