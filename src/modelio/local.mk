# modelio/: models from files — a training checkpoint or an extracted model opened as a
# poa_model with host weights (model_source), sub-networks written as standalone ViT files
# (export, poa-extract), and poa's forward of a source's sub-networks (features, the one file
# that uses a backend).  Below train/: poa-extract and the evaluation programs link it without
# libpoa_train.a (src/modelio/README.md).  Tests: tests/modelio/.
noinst_LIBRARIES += src/modelio/libpoa_modelio.a
src_modelio_libpoa_modelio_a_SOURCES = \
	src/modelio/model_source.c src/modelio/model_source.h \
	src/modelio/export.c src/modelio/export.h \
	src/modelio/features.c src/modelio/features.h
POA_MODELIO_A = src/modelio/libpoa_modelio.a
EXTRA_DIST += src/modelio/README.md
