# tensor/: views and the generic parameter table.
noinst_LIBRARIES += src/tensor/libpoa_tensor.a
src_tensor_libpoa_tensor_a_SOURCES = \
	src/tensor/tensor.h \
	src/tensor/params.c src/tensor/params.h
