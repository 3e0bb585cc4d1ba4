# data-prep/: poa-pack and poa-prep-fmnist (data-prep/README.md).
bin_PROGRAMS += poa-pack poa-prep-fmnist
poa_pack_SOURCES = data-prep/poa_pack.c data-prep/pack.h data-prep/pack_plan.c \
	data-prep/pack_shard.c data-prep/pack_meta.c data-prep/pack_verify.c
poa_pack_LDADD = $(POA_DATA_A) src/common/libpoa_common.a $(HDF5_LIBS) $(TURBOJPEG_LIBS) $(ZLIB_LIBS) \
	$(YAML_LIBS) -lm
poa_prep_fmnist_SOURCES = data-prep/poa_prep_fmnist.c
# zlib reads the .gz idx files of Debian's dataset-fashion-mnist.
poa_prep_fmnist_LDADD = $(POA_DATA_A) src/common/libpoa_common.a $(HDF5_LIBS) \
	$(TURBOJPEG_LIBS) $(ZLIB_LIBS) $(YAML_LIBS) -lm
EXTRA_DIST += data-prep/README.md
