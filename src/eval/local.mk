# eval/: the evaluation library — evaluation images of a packed split (images: resize, centre
# crop, normalise) and the k-NN classifier in pieces that MPI ranks can share (knn: similarity
# GEMM, partial top-K lists, deterministic merge, softmax votes).  Above modelio/, below the
# evaluation programs; no train/ (src/eval/README.md).  Tests: tests/eval/.
noinst_LIBRARIES += src/eval/libpoa_eval.a
src_eval_libpoa_eval_a_SOURCES = \
	src/eval/images.c src/eval/images.h \
	src/eval/knn.c src/eval/knn.h \
	src/eval/linear.c src/eval/linear.h
POA_EVAL_A = src/eval/libpoa_eval.a
EXTRA_DIST += src/eval/README.md
