# data/: see README.md, "Source layout".
noinst_LIBRARIES += src/data/libpoa_data.a
src_data_libpoa_data_a_SOURCES = $(DATA_SOURCES)
POA_DATA_A = src/data/libpoa_data.a
DATA_SOURCES =
