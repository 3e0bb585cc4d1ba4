# train/: see README.md, "Source layout".
noinst_LIBRARIES += src/train/libpoa_train.a
src_train_libpoa_train_a_SOURCES = $(TRAIN_SOURCES)
POA_TRAIN_A = src/train/libpoa_train.a
TRAIN_SOURCES =
