#!/bin/sh
# gpu-bundle.sh — build poa's CUDA configuration out of tree and gather, into one git-ignored
# folder, everything a GPU machine without poa's Debian packages needs to run the GPU checks
# (tests/gpu/device-check.sh): the programs, the shared libraries they load that such a machine
# lacks, and Open MPI's runtime relocated under the folder (OPAL_PREFIX).  tests/gpu/README.md
# says how a GPU session uses it.
#
# usage: sh tools/gpu-bundle.sh [--out DIR] [--build-dir DIR] [--arch LIST] [--jobs N]
#                               [--all] [--with PATH]... [--no-build] [--reconfigure]
#                               [--pack | --no-pack]
#   --out DIR        the bundle folder (default _gpu; git-ignored)
#   --build-dir DIR  the out-of-tree CUDA build (default _gpubuild; configured when needed)
#   --arch LIST      SM architectures (default 90: H100/H200; 80,90 adds A100 code)
#   --jobs N         make -jN (default 2)
#   --all            every program the build made, not only those the device check runs
#   --with PATH      one more program (path in the build folder, e.g. tests/ops/test_ops_dense)
#   --no-build       gather what is built; --reconfigure: configure again
#   --pack           leave the bundle as DIR/bundle.tar.xz (xz -9: the libraries compress about
#                    threefold, the programs' identical copies of the CUDA kernels to about
#                    one); tests/gpu/device-check.sh unpacks it on the machine.  Default:
#                    packed when the folder and the tracked files together pass 48 MiB
#
# What the GPU machine is expected to have (not bundled): glibc (>= the version here), libstdc++,
# libgcc_s, the NVIDIA driver (libcuda), and CUDA's libcudart, libcublas, libcublasLt and
# libnccl of the same major versions as here (the CUDA toolkit in /usr/local/cuda, NCCL there
# or in Python's nvidia-nccl package; tests/gpu/bundle-env.sh finds them).  Everything else the
# programs load comes from the bundle: HDF5 and what it links, libturbojpeg, libyaml, cmocka,
# a CBLAS (Debian's reference libblas when installed: 0.4 MiB instead of OpenBLAS's 36), libgomp,
# Open MPI (libraries, mca plugins without the InfiniBand/UCX/OFI/OpenSHMEM ones, orterun/orted,
# help files) and the external PMIx it uses.
#
# Exit codes: 0 bundle ready, 1 build or gathering failed, 2 bad command line.
set -eu

srcdir=$(cd "$(dirname "$0")/.." && pwd)
out=$srcdir/_gpu
build=$srcdir/_gpubuild
arch=90
jobs=2
all=no
extra=
do_build=yes
reconfigure=no
pack=auto

usage() {
    sed -n '/^# usage:/,/^# Exit codes/p' "$0" | sed 's/^# \{0,1\}//'
}
die() {
    echo "gpu-bundle: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --out) out=${2:?--out needs a folder}; shift ;;
    --build-dir) build=${2:?--build-dir needs a folder}; shift ;;
    --arch) arch=${2:?--arch needs a list like 90 or 80,90}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --all) all=yes ;;
    --with) extra="$extra ${2:?--with needs a program path relative to the build folder}"; shift ;;
    --no-build) do_build=no ;;
    --reconfigure) reconfigure=yes ;;
    --pack) pack=yes ;;
    --no-pack) pack=no ;;
    -h | --help) usage; exit 0 ;;
    *) echo "gpu-bundle: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
case $build in /*) ;; *) build=$(pwd)/$build ;; esac

[ "$(uname -m)" = x86_64 ] || die "the GPU machines are x86-64; this machine is $(uname -m)"
for tool in ldd readelf strip sha256sum ompi_info tar xz; do
    command -v $tool >/dev/null 2>&1 || die "'$tool' not found"
done

# ------------------------------------------------------------------------------------- build
# The reference BLAS keeps the bundle small; poa's CPU backend uses its own AVX-512 GEMM where
# the CPU has it, and the BLAS only for the narrow GEMMs of the CPU side of the parity tests.
ref_blas_dir=/usr/lib/x86_64-linux-gnu/blas
if [ -f $ref_blas_dir/libblas.so.3 ] && nm -D $ref_blas_dir/libblas.so.3 2>/dev/null |
    grep -q ' T cblas_sgemm$'; then
    blas_libs="-L$ref_blas_dir -lblas"
else
    blas_libs=
fi
set -- --with-cuda --with-nccl --with-cuda-arch="$arch" --with-cmocka
[ -n "$blas_libs" ] && set -- "$@" "BLAS_LIBS=$blas_libs"
want_config="$*"

if [ $do_build = yes ]; then
    if [ ! -x "$srcdir/configure" ]; then
        echo "gpu-bundle: autoreconf -fi"
        (cd "$srcdir" && autoreconf -fi) || die "autoreconf failed"
    fi
    mkdir -p "$build"
    have_config=
    [ -f "$build/config.status" ] && have_config=$(cd "$build" && ./config.status --config |
        sed "s/'//g")
    if [ $reconfigure = yes ] || [ "$have_config" != "$want_config" ]; then
        echo "gpu-bundle: configure $want_config (in $build)"
        (cd "$build" && "$srcdir/configure" "$@" >configure.out 2>&1) ||
            die "configure failed: see $build/configure.out and $build/config.log"
    fi
    echo "gpu-bundle: make -j$jobs (programs, test programs) in $build"
    (cd "$build" && make -j"$jobs" >make.out 2>&1 && make -j"$jobs" check TESTS= >>make.out 2>&1) ||
        die "build failed: see $build/make.out"
    # The standalone check of the norm, loss and optimizer kernels (not built by make: it links
    # the three kernel files alone; the command is the one in its header), when out of date.
    norm_check=$build/tests/gpu/cuda_norm_loss_check
    norm_srcs="tests/gpu/cuda_norm_loss_check.cu src/backend/cuda/cuda_norm.cu
        src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu src/backend/cuda/cuda_chunks.cuh
        src/backend/cuda/cuda_common.cuh src/backend/cuda/cuda_impl.h src/backend/cuda/cuda_ops.h
        src/backend/backend.h"
    stale=no
    [ -x "$norm_check" ] || stale=yes
    for f in $norm_srcs; do [ -n "$(find "$srcdir/$f" -newer "$norm_check" 2>/dev/null)" ] && stale=yes; done
    if [ $stale = yes ]; then
        echo "gpu-bundle: nvcc tests/gpu/cuda_norm_loss_check"
        mkdir -p "$build/tests/gpu"
        nvcc=$(sed -n 's/^NVCC = //p' "$build/Makefile")
        gencode=$(sed -n 's/^NVCC_GENCODE = //p' "$build/Makefile")
        # shellcheck disable=SC2086 # NVCC (a command, maybe with options) and -gencode: word lists
        (cd "$srcdir" && $nvcc -std=c++17 -O2 -Xcompiler -ffp-contract=off $gencode \
            -I src -o "$norm_check" tests/gpu/cuda_norm_loss_check.cu src/backend/cuda/cuda_norm.cu \
            src/backend/cuda/cuda_loss.cu src/backend/cuda/cuda_optim.cu) >>"$build/make.out" 2>&1 ||
            die "nvcc of tests/gpu/cuda_norm_loss_check failed: see $build/make.out"
    fi
fi
[ -f "$build/config.status" ] || die "$build is not a configured build folder"
grep -q '^#define POA_HAVE_CUDA 1' "$build/poa_config.h" ||
    die "$build is not a CUDA configuration (configure --with-cuda)"

# ---------------------------------------------------------------------------------- programs
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = 177ELF ]; }

# Every executable the build made (relative paths), and the subset the device check runs:
# poa-train, poa-config, the step benchmark, every test_gpu_* program, the backend op test,
# the standalone norm/loss kernel check, and the programs that the GPU test scripts
# (tests/**/test_gpu_*.sh) name.
# (tests/out holds what tests wrote, copies of programs among it: not programs of the build)
programs_all=$(cd "$build" && find src tools bench tests -path tests/out -prune -o -type f -perm -u+x -print 2>/dev/null |
    while read -r f; do is_elf "$f" && echo "$f"; done | sort)
gpu_scripts=$(cd "$srcdir" && find tests -name 'test_gpu_*.sh' 2>/dev/null | sort)
select_program() {
    case $(basename "$1") in
    poa-train | poa-config | bench_step | bench_step_gpu | test_gpu_* | test_backend_ops | \
        cuda_norm_loss_check) return 0 ;;
    esac
    for s in $gpu_scripts; do
        grep -q "[/\"]$(basename "$1")\\b" "$srcdir/$s" && return 0
    done
    return 1
}
programs=
for f in $programs_all; do
    if [ $all = yes ] || select_program "$f"; then programs="$programs $f"; fi
done
for f in $extra; do
    is_elf "$build/$f" || die "--with $f: no such program in $build"
    programs="$programs $f"
done
programs=$(echo $programs | tr ' ' '\n' | sort -u)
[ -n "$programs" ] || die "no programs found in $build"

# A fresh bundle folder: refuse to empty a folder that is not one.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ]; then
    [ -f "$out/BUILD-INFO" ] || die "$out exists and is not a bundle folder; remove it or use --out"
    rm -rf "$out"
fi
mkdir -p "$out/lib"

for f in $programs; do
    mkdir -p "$out/$(dirname "$f")"
    cp "$build/$f" "$out/$f"
    strip --strip-debug "$out/$f" # keeps the symbol table (sanitizer and crash reports)
done

# ------------------------------------------------------------------------------- Open MPI
# Installation folders as Open MPI computes them, re-rooted under $out/mpi (OPAL_PREFIX).
ompi_path() { ompi_info --parsable --path "$1" | sed -n "s/^path:$1://p"; }
ompi_prefix=$(ompi_path prefix)
relocate() { echo "$out/mpi/${1#"$ompi_prefix"/}"; }
ompi_bindir=$(ompi_path bindir)
ompi_pkglibdir=$(ompi_path pkglibdir)
ompi_pkgdatadir=$(ompi_path pkgdatadir)
[ -n "$ompi_prefix" ] && [ -d "$ompi_pkglibdir" ] || die "ompi_info gave no plugin folder"

bindir=$(relocate "$ompi_bindir")
mkdir -p "$bindir"
orterun=$(readlink -f "$ompi_bindir/orterun")
for name in orterun mpiexec mpirun; do cp "$orterun" "$bindir/$name"; done
cp "$(readlink -f "$ompi_bindir/orted")" "$bindir/orted"

# Plugins, except those needing libraries of fabrics a one-GPU machine has no use for
# (InfiniBand verbs, UCX, libfabric, PSM) or OpenSHMEM.
unwanted='lib(oshmem|ucp|ucs|uct|ucm|fabric|psm|psm2|psm_infinipath|ibverbs|rdmacm|efa|nl-3|nl-route-3|infinipath)\.so'
plugdir=$(relocate "$ompi_pkglibdir")
mkdir -p "$plugdir"
n_plugins=0
for p in "$ompi_pkglibdir"/*.so; do
    ldd "$p" | grep -Eq "$unwanted" && continue
    cp "$p" "$plugdir/"
    n_plugins=$((n_plugins + 1))
done
datadir=$(relocate "$ompi_pkgdatadir")
mkdir -p "$datadir"
cp -R "$ompi_pkgdatadir"/. "$datadir/"

# External PMIx (Debian): its own plugins and help files, relocated with PMIX_PREFIX.
pmix_lib=$(ldd "$ompi_pkglibdir"/mca_pmix_ext*.so 2>/dev/null | awk '$1 ~ /^libpmix\.so/ {print $3; exit}')
if [ -n "$pmix_lib" ]; then
    pmix_prefix=$(dirname "$(dirname "$(readlink -f "$pmix_lib")")")
    mkdir -p "$out/pmix/lib" "$out/pmix/share"
    [ -d "$pmix_prefix/lib/pmix" ] && cp -R "$pmix_prefix/lib/pmix" "$out/pmix/lib/"
    [ -d "$pmix_prefix/share/pmix" ] && cp -R "$pmix_prefix/share/pmix" "$out/pmix/share/"
fi

# ------------------------------------------------------------------------ shared libraries
# Provided by the GPU machine (see the header); everything else is copied.
provided='^(linux-vdso|ld-linux-x86-64|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libanl|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt|libnccl)\.so'
# The link's -L folders (the reference BLAS) come first, as they did for the linker.
link_dirs=$(for w in $blas_libs; do case $w in -L*) printf '%s:' "${w#-L}" ;; esac; done)
elfs() {
    for f in $programs; do echo "$out/$f"; done
    find "$out/mpi" "$out/pmix" -type f 2>/dev/null | while read -r f; do is_elf "$f" && echo "$f"; done
    find "$out/lib" -type f
}
# ldd lists the whole closure of each object (the check below catches anything missed)
for f in $(elfs); do
    LD_LIBRARY_PATH="$link_dirs$out/lib" ldd "$f" 2>/dev/null | awk '/=>/ {print $1, $3}' |
        while read -r name path; do
            echo "$name" | grep -Eq "$provided" && continue
            [ -e "$out/lib/$name" ] && continue
            [ "$path" = not ] && die "$f needs $name, which is not installed here"
            cp -L "$path" "$out/lib/$name"
        done
done

# ------------------------------------------------------------------- harness and metadata
mkdir -p "$out/tests/scripts"
cat >"$out/tests/scripts/test-env.sh" <<'EOF'
# test-env.sh — settings for tests/scripts/run-test.sh in the GPU bundle (tools/gpu-bundle.sh):
# tests/gpu/device-check.sh sets them for the GPU machine.
POA_MPIEXEC="${POA_MPIEXEC:-mpiexec}"
POA_PYTHON_REF="${POA_PYTHON_REF:-python3}"
POA_HAVE_TORCH="${POA_HAVE_TORCH:-no}"
POA_TOP_SRCDIR="${POA_TOP_SRCDIR:?set POA_TOP_SRCDIR to the source tree}"
POA_TOP_BUILDDIR="${POA_TOP_BUILDDIR:?set POA_TOP_BUILDDIR to the bundle}"
export POA_MPIEXEC POA_PYTHON_REF POA_HAVE_TORCH POA_TOP_SRCDIR POA_TOP_BUILDDIR
EOF

commit=$(cd "$srcdir" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$srcdir" && git status --porcelain --untracked-files=no 2>/dev/null | head -1)
{
    echo "commit: $commit${dirty:+ (with uncommitted changes)}"
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "configure: $want_config"
    nvcc=$(sed -n 's/^NVCC = //p' "$build/Makefile")
    echo "nvcc: $nvcc ($("$nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"
    echo "cuda_arch: $arch"
    echo "glibc: $(ldd --version | sed -n '1s/.* //p')"
    echo "open_mpi: $(ompi_info --parsable 2>/dev/null | sed -n 's/^ompi:version:full://p') (prefix $ompi_prefix, relocated with OPAL_PREFIX=<bundle>/mpi)"
    [ -n "$pmix_lib" ] && echo "pmix: $pmix_prefix (relocated with PMIX_PREFIX=<bundle>/pmix)"
    echo "mpi_plugins: $n_plugins"
    echo "programs:" $programs
} >"$out/BUILD-INFO"
(cd "$out" && find . -type f ! -name MANIFEST | sed 's|^\./||' | sort | xargs sha256sum) >"$out/MANIFEST"

# ------------------------------------------------------------------------------ check, size
# Every object's libraries resolve into the bundle or to the list the GPU machine provides.
bad=0
for f in $(elfs); do
    LD_LIBRARY_PATH="$out/lib" ldd "$f" 2>/dev/null | awk '/=>/ {print $1, $3}' |
        while read -r name path; do
            echo "$name" | grep -Eq "$provided" && continue
            case $path in "$out"/*) ;; *) echo "gpu-bundle: $f: $name resolves to $path" >&2; exit 1 ;; esac
        done || bad=1
done
[ $bad -eq 0 ] || die "the library closure is incomplete (see above)"

bundle_bytes=$(du -sb "$out" | cut -f1)
repo_bytes=$(cd "$srcdir" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
n_libs=$(ls "$out/lib" | wc -l)
if [ $pack = auto ]; then
    pack=no
    [ $((bundle_bytes + repo_bytes)) -gt $((48 * 1048576)) ] && pack=yes
fi
if [ $pack = yes ]; then
    # one xz stream with a 64 MiB dictionary: each program's copy of the kernels is stored once
    tar -C "$out" -cf - . | xz -9 >"$out.tar.xz.tmp" || die "tar | xz failed"
    rm -rf "$out"
    mkdir -p "$out"
    mv "$out.tar.xz.tmp" "$out/bundle.tar.xz"
    xz -dc "$out/bundle.tar.xz" | tar -xf - -O ./BUILD-INFO >"$out/BUILD-INFO"
    unpacked_bytes=$bundle_bytes
    bundle_bytes=$(du -sb "$out" | cut -f1)
fi
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "gpu-bundle: $out: $(echo $programs | wc -w) programs, $n_libs libraries, $n_plugins Open MPI plugins"
[ $pack = yes ] && echo "gpu-bundle: packed into $out/bundle.tar.xz ($(mib "$unpacked_bytes") unpacked)"
echo "gpu-bundle: size $(mib "$bundle_bytes"); tracked files $(mib "$repo_bytes");" \
    "together $(mib $((bundle_bytes + repo_bytes))) of the 64 MiB a device call may carry"
if [ $((bundle_bytes + repo_bytes)) -gt $((56 * 1048576)) ]; then
    echo "gpu-bundle: warning: over 56 MiB together: use --pack, or fewer programs (no --all," \
        "one --arch); untracked files could push a call over the limit" >&2
fi
