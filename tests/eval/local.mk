# tests/eval/: the evaluation programs end to end — poa-eval-knn on a small packed Fashion-MNIST
# and a seeded demo checkpoint: results against the NumPy / PyTorch reference of the protocol
# (tests/reference/knn_ref.py), 1 against 2 MPI ranks, --all-subnets, extracted models, the
# raw-pixel baseline, errors and exit codes.
TESTS += tests/eval/test_eval_knn.sh
dist_noinst_SCRIPTS += tests/eval/test_eval_knn.sh
