# model/: the one model description, ViT/elastic/heads forward+backward (core.mk, issue #3) and
# the POA losses (loss.mk, issue #4).  One archive.
include src/model/core.mk
include src/model/loss.mk
noinst_LIBRARIES += src/model/libpoa_model.a
src_model_libpoa_model_a_SOURCES = $(MODEL_CORE_SOURCES) $(MODEL_LOSS_SOURCES)
POA_MODEL_A = src/model/libpoa_model.a
