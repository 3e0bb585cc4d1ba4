# tool/: what the programs that read models share (poa-extract, poa-eval-knn, poa-eval-linear):
# the MPI set-up of their main(), exit codes agreed by the ranks, a model source opened by every
# rank, --subnet/--arch requests, result files written atomically, the check that no HDF5 object
# is left open (src/tool/tool.h); the networks the evaluation programs evaluate, their transform,
# their models and data opened on every rank (src/tool/networks.h); the command line they share
# (src/tool/eval_args.h).  Above modelio/ and eval/, below the programs.
noinst_LIBRARIES += src/tool/libpoa_tool.a
src_tool_libpoa_tool_a_SOURCES = src/tool/tool.c src/tool/tool.h \
	src/tool/networks.c src/tool/networks.h src/tool/eval_args.c src/tool/eval_args.h
POA_TOOL_A = src/tool/libpoa_tool.a
