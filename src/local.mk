# src/: the programs built from src/ (poa-train; later poa-extract and the evaluation tools).

# poa-train: the pretraining rank loop (src/train/loop.h, src/train/README-train.md).
bin_PROGRAMS += src/poa-train
src_poa_train_SOURCES = src/poa_train.c
src_poa_train_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)
