# dist/: see README.md, "Source layout".
# (Not DIST_SOURCES: that name is automake's own list of distributed sources.)
noinst_LIBRARIES += src/dist/libpoa_dist.a
src_dist_libpoa_dist_a_SOURCES = $(DISTLAYER_SOURCES)
POA_DIST_A = src/dist/libpoa_dist.a
DISTLAYER_SOURCES =
