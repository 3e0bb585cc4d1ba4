# tools/: small operator programs and the install/demo scripts.  Tests of poa-config:
# tests/config/.
dist_noinst_SCRIPTS += tools/install-deps.sh tools/run-demo.sh tools/openblas-coretype.sh
# gpu-bundle.sh: gathers the CUDA build for a GPU machine (tests/gpu/README.md).
dist_noinst_SCRIPTS += tools/gpu-bundle.sh

# poa-config: validate a configuration, print / save the effective values.
bin_PROGRAMS += tools/poa-config
tools_poa_config_SOURCES = tools/poa_config.c
tools_poa_config_LDADD = src/common/libpoa_common.a $(YAML_LIBS) -lm
