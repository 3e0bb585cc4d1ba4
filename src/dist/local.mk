# dist/: see README.md, "Source layout".
noinst_LIBRARIES += src/dist/libpoa_dist.a
src_dist_libpoa_dist_a_SOURCES = $(DIST_SOURCES)
POA_DIST_A = src/dist/libpoa_dist.a
DIST_SOURCES =
