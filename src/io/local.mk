# io/: see README.md, "Source layout".
noinst_LIBRARIES += src/io/libpoa_io.a
src_io_libpoa_io_a_SOURCES = $(IO_SOURCES)
POA_IO_A = src/io/libpoa_io.a
IO_SOURCES =
