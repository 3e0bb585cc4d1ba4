# src/: the programs built from src/ (poa-train, poa-extract, the evaluation tools).

# poa-train: the pretraining rank loop (src/train/loop.h, src/train/README-train.md).
bin_PROGRAMS += src/poa-train
src_poa_train_SOURCES = src/poa_train.c
src_poa_train_LDADD = $(POA_ARCHIVES) $(POA_EXTERNAL_LIBS)

# poa-extract: sub-networks of a checkpoint as standalone ViT files (src/modelio/README.md).
# Links the layers below train/ only.
bin_PROGRAMS += src/poa-extract
src_poa_extract_SOURCES = src/poa_extract.c
src_poa_extract_LDADD = $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)

# poa-eval-knn: the k-NN evaluation (src/eval/README.md).  Links the layers below train/ only;
# tools/plot_knn.py (the --all-subnets heatmap) is installed next to the data and found there or
# in the source tree.
bin_PROGRAMS += src/poa-eval-knn
src_poa_eval_knn_SOURCES = src/poa_eval_knn.c
src_poa_eval_knn_CPPFLAGS = $(AM_CPPFLAGS) -DPOA_PYTHON_DEFAULT='"$(PYTHON_REF)"' \
	-DPOA_PKGDATADIR='"$(pkgdatadir)"' -DPOA_SRCDIR='"$(abs_top_srcdir)"'
src_poa_eval_knn_LDADD = $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)
dist_pkgdata_DATA = tools/plot_knn.py

# poa-eval-linear: the linear probe (src/eval/README.md).  Links the layers below train/ only.
bin_PROGRAMS += src/poa-eval-linear
src_poa_eval_linear_SOURCES = src/poa_eval_linear.c
src_poa_eval_linear_LDADD = $(POA_TOOL_ARCHIVES) $(POA_EXTERNAL_LIBS)
