# poa_checks.m4 — configure probes for poa.  Every probe saves and restores the global
# CFLAGS/CPPFLAGS/LIBS/LDFLAGS so that no probe leaves edits behind; results go into
# per-library FOO_CFLAGS / FOO_LIBS substitutions only.

# POA_SAVE_FLAGS / POA_RESTORE_FLAGS
AC_DEFUN([POA_SAVE_FLAGS], [
  poa_save_CFLAGS="$CFLAGS"; poa_save_CPPFLAGS="$CPPFLAGS"
  poa_save_LIBS="$LIBS"; poa_save_LDFLAGS="$LDFLAGS"
])
AC_DEFUN([POA_RESTORE_FLAGS], [
  CFLAGS="$poa_save_CFLAGS"; CPPFLAGS="$poa_save_CPPFLAGS"
  LIBS="$poa_save_LIBS"; LDFLAGS="$poa_save_LDFLAGS"
])

# POA_MPI_IMPL: name the MPI implementation behind $CC (for the summary).
AC_DEFUN([POA_MPI_IMPL], [
  AC_MSG_CHECKING([MPI implementation])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>
#ifndef OPEN_MPI
#error not open mpi
#endif]], [[]])],
    [poa_mpi_impl="Open MPI"],
    [AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>
#ifndef MPICH_VERSION
#error not mpich
#endif]], [[]])], [poa_mpi_impl="MPICH"], [poa_mpi_impl="unknown MPI"])])
  AC_MSG_RESULT([$poa_mpi_impl])
])

# POA_CHECK_PKG(VAR, PKGNAME, HEADER, FUNCTION, LIBNAME, HINT)
# pkg-config first, then a plain -lLIBNAME; header and link test either way.
AC_DEFUN([POA_CHECK_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [poa_pkg_found=yes], [poa_pkg_found=no])
  AS_IF([test "x$poa_pkg_found" = xno], [$1_CFLAGS=""; $1_LIBS="-l$5"])
  POA_SAVE_FLAGS
  CPPFLAGS="$CPPFLAGS $$1_CFLAGS"; LIBS="$$1_LIBS $LIBS"
  AC_CHECK_HEADER([$3], [], [AC_MSG_ERROR([$3 not found: $6])])
  AC_MSG_CHECKING([for $4 in $$1_LIBS])
  AC_LINK_IFELSE([AC_LANG_CALL([], [$4])], [AC_MSG_RESULT([yes])],
                 [AC_MSG_RESULT([no]); AC_MSG_ERROR([cannot link $4: $6])])
  POA_RESTORE_FLAGS
  AC_SUBST([$1_CFLAGS])
  AC_SUBST([$1_LIBS])
  m4_tolower([poa_$1_version])=`$PKG_CONFIG --modversion $2 2>/dev/null || echo unknown`
])

# POA_CHECK_HDF5: serial HDF5 is enough; note whether the library is parallel/thread-safe.
AC_DEFUN([POA_CHECK_HDF5], [
  AC_ARG_VAR([HDF5_CFLAGS], [C compiler flags for HDF5])
  AC_ARG_VAR([HDF5_LIBS], [linker flags for HDF5])
  AS_IF([test "x$HDF5_LIBS" = x], [
    for poa_h5pkg in hdf5 hdf5-serial hdf5-openmpi; do
      AS_IF([$PKG_CONFIG --exists $poa_h5pkg 2>/dev/null], [
        HDF5_CFLAGS=`$PKG_CONFIG --cflags $poa_h5pkg`
        HDF5_LIBS=`$PKG_CONFIG --libs $poa_h5pkg`
        break])
    done])
  AS_IF([test "x$HDF5_LIBS" = x], [HDF5_LIBS="-lhdf5"])
  POA_SAVE_FLAGS
  CPPFLAGS="$CPPFLAGS $HDF5_CFLAGS"; LIBS="$HDF5_LIBS $LIBS"
  AC_CHECK_HEADER([hdf5.h], [], [AC_MSG_ERROR([hdf5.h not found (apt-get install libhdf5-dev, or set HDF5_CFLAGS/HDF5_LIBS)])])
  AC_MSG_CHECKING([for H5Fopen])
  AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <hdf5.h>]], [[return H5Fopen("x", H5F_ACC_RDONLY, H5P_DEFAULT) < 0;]])],
                 [AC_MSG_RESULT([yes])], [AC_MSG_ERROR([cannot link HDF5 with $HDF5_LIBS])])
  AC_COMPUTE_INT([poa_h5_major], [H5_VERS_MAJOR], [#include <hdf5.h>], [poa_h5_major=0])
  AC_COMPUTE_INT([poa_h5_minor], [H5_VERS_MINOR], [#include <hdf5.h>], [poa_h5_minor=0])
  AC_COMPUTE_INT([poa_h5_release], [H5_VERS_RELEASE], [#include <hdf5.h>], [poa_h5_release=0])
  poa_hdf5_version="$poa_h5_major.$poa_h5_minor.$poa_h5_release"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <hdf5.h>
#ifndef H5_HAVE_PARALLEL
#error serial
#endif]], [[]])], [poa_hdf5_parallel=yes], [poa_hdf5_parallel=no])
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([[#include <hdf5.h>
#ifndef H5_HAVE_THREADSAFE
#error not thread-safe
#endif]], [[]])], [poa_hdf5_threadsafe=yes], [poa_hdf5_threadsafe=no])
  POA_RESTORE_FLAGS
  AS_IF([test "x$poa_hdf5_parallel" = xyes], [AC_DEFINE([POA_HDF5_PARALLEL], [1], [HDF5 built with MPI-IO])])
  AS_IF([test "x$poa_hdf5_threadsafe" = xyes], [AC_DEFINE([POA_HDF5_THREADSAFE], [1], [HDF5 is thread-safe])])
  AC_SUBST([HDF5_CFLAGS])
  AC_SUBST([HDF5_LIBS])
])

# POA_CHECK_BLAS: a CBLAS with cblas_sgemm; OpenBLAS preferred.
AC_DEFUN([POA_CHECK_BLAS], [
  AC_ARG_VAR([BLAS_CFLAGS], [C compiler flags for CBLAS])
  AC_ARG_VAR([BLAS_LIBS], [linker flags for CBLAS (default: OpenBLAS)])
  POA_SAVE_FLAGS
  poa_blas_name=
  AS_IF([test "x$BLAS_LIBS" != x], [poa_blas_try="$BLAS_LIBS"], [poa_blas_try="-lopenblas -lblas"])
  for poa_b in $poa_blas_try; do
    AS_IF([test "x$BLAS_LIBS" != x], [poa_b="$BLAS_LIBS"])
    LIBS="$poa_b $poa_save_LIBS"; CPPFLAGS="$poa_save_CPPFLAGS $BLAS_CFLAGS"
    AC_MSG_CHECKING([for cblas_sgemm in $poa_b])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cblas.h>]],
        [[float a = 1, b = 1, c = 0; cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1); return c != 1;]])],
      [AC_MSG_RESULT([yes]); BLAS_LIBS="$poa_b"; poa_blas_name="$poa_b"; break], [AC_MSG_RESULT([no])])
    AS_IF([test "x$BLAS_LIBS" != x && test "x$poa_blas_name" = x], [break])
  done
  POA_RESTORE_FLAGS
  AS_IF([test "x$poa_blas_name" = x],
        [AC_MSG_ERROR([no CBLAS with cblas_sgemm found (apt-get install libopenblas-dev, or set BLAS_LIBS)])])
  AS_CASE([$poa_blas_name], [*openblas*], [AC_DEFINE([POA_HAVE_OPENBLAS], [1], [CBLAS is OpenBLAS])
                                          poa_blas_name="OpenBLAS ($poa_blas_name)"])
  AC_SUBST([BLAS_CFLAGS])
  AC_SUBST([BLAS_LIBS])
])

# AX_PTHREAD_SIMPLE: POSIX threads via -pthread (glibc).
AC_DEFUN([AX_PTHREAD_SIMPLE], [
  PTHREAD_CFLAGS="-pthread"; PTHREAD_LIBS="-pthread"
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])

# POA_CHECK_CUDA: --with-cuda[=DIR], --with-cuda-arch=LIST.  Auto-detect by default; an explicit
# --with-cuda that cannot be satisfied is an error.
AC_DEFUN([POA_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@], [build the CUDA backend (default: auto-detect in /usr/local/cuda)])],
    [], [with_cuda=auto])
  AC_ARG_WITH([cuda-arch],
    [AS_HELP_STRING([--with-cuda-arch=LIST], [comma-separated SM architectures (default: 80,90)])],
    [], [with_cuda_arch="80,90"])
  AC_ARG_VAR([NVCC], [CUDA compiler])
  have_cuda=no; poa_cuda_summary=
  AS_CASE([$with_cuda], [yes|auto], [poa_cuda_dir=/usr/local/cuda], [no], [poa_cuda_dir=], [poa_cuda_dir="$with_cuda"])
  AS_IF([test "x$poa_cuda_dir" != x], [
    AS_IF([test "x$NVCC" = x], [NVCC="$poa_cuda_dir/bin/nvcc"])
    AC_MSG_CHECKING([for nvcc ($NVCC)])
    AS_IF([test -x "$NVCC"], [AC_MSG_RESULT([yes]); poa_nvcc_ok=yes], [AC_MSG_RESULT([no]); poa_nvcc_ok=no])
    # -isystem: warnings of the CUDA headers (cublasLt.h) are not ours
    CUDA_CFLAGS="-isystem $poa_cuda_dir/include"
    poa_cuda_libdir="$poa_cuda_dir/lib64"
    AS_IF([test -d "$poa_cuda_dir/targets/x86_64-linux/lib"], [poa_cuda_libdir="$poa_cuda_dir/targets/x86_64-linux/lib"])
    CUDA_LIBS="-L$poa_cuda_libdir -Wl,-rpath,$poa_cuda_libdir -lcublasLt -lcublas -lcudart -lstdc++"
    POA_SAVE_FLAGS
    CPPFLAGS="$CPPFLAGS $CUDA_CFLAGS"; LIBS="$CUDA_LIBS $LIBS"
    AC_MSG_CHECKING([for cuBLAS, cuBLASLt and the CUDA runtime])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cuda_runtime_api.h>
#include <cublas_v2.h>
#include <cublasLt.h>]], [[cublasHandle_t h; cublasLtHandle_t lt; int n; cudaGetDeviceCount(&n); return cublasCreate(&h) != 0 || cublasLtCreate(&lt) != 0;]])],
      [poa_cudalib_ok=yes], [poa_cudalib_ok=no])
    AC_MSG_RESULT([$poa_cudalib_ok])
    POA_RESTORE_FLAGS
    AS_IF([test "x$poa_nvcc_ok$poa_cudalib_ok" = xyesyes], [have_cuda=yes])
    AS_IF([test "x$have_cuda" = xno && test "x$with_cuda" != xauto],
          [AC_MSG_ERROR([--with-cuda: no usable CUDA toolkit in $poa_cuda_dir (nvcc: $poa_nvcc_ok, cuBLAS/cuBLASLt/cudart: $poa_cudalib_ok)])])
  ])
  NVCC_GENCODE=
  AS_IF([test "x$have_cuda" = xyes], [
    for poa_arch in `echo "$with_cuda_arch" | tr ',' ' '`; do
      AS_CASE([$poa_arch], [*[[!0-9]]*|""], [AC_MSG_ERROR([--with-cuda-arch: '$poa_arch' is not a number like 80 or 90])])
      NVCC_GENCODE="$NVCC_GENCODE -gencode arch=compute_$poa_arch,code=sm_$poa_arch"
    done
    poa_cuda_version=`$NVCC --version | sed -n 's/.*release \([[0-9.]]*\).*/\1/p'`
    poa_cuda_summary="($poa_cuda_dir, CUDA $poa_cuda_version, sm_`echo $with_cuda_arch | sed 's/,/ sm_/g'`)"
    AC_DEFINE([POA_HAVE_CUDA], [1], [CUDA backend built])
  ])
  AS_IF([test "x$NVCCFLAGS" = x], [NVCCFLAGS="-O3 -std=c++17 -lineinfo"])
  AC_ARG_VAR([NVCCFLAGS], [flags for nvcc (default: -O3 -std=c++17 -lineinfo)])
  AC_SUBST([CUDA_CFLAGS])
  AC_SUBST([CUDA_LIBS])
  AC_SUBST([NVCC_GENCODE])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$have_cuda" = xyes])
])

# POA_CHECK_NCCL: --with-nccl[=DIR]; needs CUDA.
AC_DEFUN([POA_CHECK_NCCL], [
  AC_ARG_WITH([nccl],
    [AS_HELP_STRING([--with-nccl@<:@=DIR@:>@], [NCCL for the GPU gradient all-reduce (default: auto, with CUDA)])],
    [], [with_nccl=auto])
  have_nccl=no; poa_nccl_summary=
  AS_IF([test "x$with_nccl" != xno && test "x$have_cuda" = xyes], [
    AS_CASE([$with_nccl], [yes|auto], [poa_nccl_dir="$poa_cuda_dir"], [poa_nccl_dir="$with_nccl"])
    poa_nccl_libdir="$poa_nccl_dir/lib64"
    AS_IF([test -d "$poa_nccl_dir/lib" && test ! -d "$poa_nccl_libdir"], [poa_nccl_libdir="$poa_nccl_dir/lib"])
    AS_IF([test -d "$poa_nccl_dir/targets/x86_64-linux/lib"], [poa_nccl_libdir="$poa_nccl_dir/targets/x86_64-linux/lib"])
    NCCL_CFLAGS="-I$poa_nccl_dir/include"
    NCCL_LIBS="-L$poa_nccl_libdir -Wl,-rpath,$poa_nccl_libdir -lnccl"
    POA_SAVE_FLAGS
    CPPFLAGS="$CPPFLAGS $CUDA_CFLAGS $NCCL_CFLAGS"; LIBS="$NCCL_LIBS $CUDA_LIBS $LIBS"
    AC_MSG_CHECKING([for NCCL in $poa_nccl_dir])
    AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <nccl.h>]], [[int v; return ncclGetVersion(&v) != ncclSuccess;]])],
                   [have_nccl=yes], [have_nccl=no])
    AC_MSG_RESULT([$have_nccl])
    POA_RESTORE_FLAGS
  ])
  AS_IF([test "x$with_nccl" != xno && test "x$with_nccl" != xauto && test "x$have_nccl" = xno],
        [AC_MSG_ERROR([--with-nccl: NCCL not usable (needs CUDA; looked in ${poa_nccl_dir:-nowhere})])])
  AS_IF([test "x$have_nccl" = xyes], [
    AC_DEFINE([POA_HAVE_NCCL], [1], [NCCL available])
    poa_nccl_summary="($poa_nccl_libdir)"
  ], [NCCL_CFLAGS=""; NCCL_LIBS=""])
  AC_SUBST([NCCL_CFLAGS])
  AC_SUBST([NCCL_LIBS])
  AM_CONDITIONAL([HAVE_NCCL], [test "x$have_nccl" = xyes])
])
