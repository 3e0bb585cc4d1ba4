# tool/: what the programs that read models share (poa-extract, poa-eval-knn): the MPI set-up of
# their main(), exit codes agreed by the ranks, a model source opened by every rank, the check
# that no HDF5 object is left open (src/tool/tool.h).  Above modelio/, below the programs.
noinst_LIBRARIES += src/tool/libpoa_tool.a
src_tool_libpoa_tool_a_SOURCES = src/tool/tool.c src/tool/tool.h
POA_TOOL_A = src/tool/libpoa_tool.a
