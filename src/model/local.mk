# model/: the one model description (model_config, model), the ViT backbone with its elastic
# sub-networks, the projection heads, extraction, the memory plan, and the POA losses (loss.c
# composes the backend's training ops; loss_collective.h is the collective interface of
# Sinkhorn-Knopp).  Tests: tests/model/.
noinst_LIBRARIES += src/model/libpoa_model.a
src_model_libpoa_model_a_SOURCES = \
	src/model/model_config.c src/model/model_config.h \
	src/model/model.c src/model/model.h \
	src/model/layers.h \
	src/model/vit.c src/model/vit.h \
	src/model/head.c src/model/head.h \
	src/model/extract.c src/model/extract.h \
	src/model/memplan.c \
	src/model/loss.c src/model/loss.h src/model/loss_collective.h
POA_MODEL_A = src/model/libpoa_model.a
EXTRA_DIST += src/model/README.md
