# bundle-env.sh — sourced (POSIX sh) by tests/gpu/device-check.sh: the environment in which the
# programs of the GPU bundle (tools/gpu-bundle.sh) run on a machine without poa's Debian
# packages.
#
# In:  POA_BUNDLE   the bundle folder (absolute path).
#      POA_CUDA_LIBDIRS (optional) colon-separated folders searched first for the CUDA libraries.
# Out (exported): LD_LIBRARY_PATH  the bundle's libraries, then the folders holding the CUDA
#                                  libraries the bundle leaves to the machine, then what it was;
#                 PATH             the bundle's Open MPI launchers first;
#                 OPAL_PREFIX, PMIX_PREFIX   Open MPI and PMIx relocated into the bundle;
#                 OMPI_* settings for MPI jobs on one machine, as root, over shared memory.
# Also set (not exported): bundle_saved_ld_path (LD_LIBRARY_PATH before), bundle_cuda_libs
# ("name=folder" for each CUDA library, "name=MISSING" when none was found), bundle_missing
# (the names not found).

# shellcheck shell=sh
bundle_saved_ld_path=${LD_LIBRARY_PATH:-}
bundle_cuda_libs=
bundle_missing=

# Folders holding CUDA libraries: the toolkit's, then the pip packages of NVIDIA's libraries
# (nvidia-nccl-cu13 puts libnccl.so.2 in site-packages/nvidia/nccl/lib).
bundle_python_nvidia_dirs() {
    command -v python3 >/dev/null 2>&1 || return 0
    env -u LD_LIBRARY_PATH python3 - <<'EOF' 2>/dev/null
import os
try:
    import nvidia
except ImportError:
    raise SystemExit(0)
for top in nvidia.__path__:
    for root, _, files in os.walk(top):
        if any(f.startswith(("libnccl.so", "libcublas", "libcudart")) for f in files):
            print(root)
EOF
}

# For each library the first folder that holds it; "(system)" when only the loader's cache
# knows it.
bundle_search_dirs="$(echo "${POA_CUDA_LIBDIRS:-}" | tr ':' '\n')
/usr/local/cuda/lib64
/usr/local/cuda/targets/x86_64-linux/lib
/usr/local/cuda/lib
$(bundle_python_nvidia_dirs)"
bundle_cuda_dirs=
for _lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
    _found=
    for _d in $bundle_search_dirs; do
        if [ -e "$_d/$_lib" ]; then _found=$_d; break; fi
    done
    if [ -z "$_found" ] && ldconfig -p 2>/dev/null | grep -q "[[:space:]]$_lib "; then
        _found="(system)"
    fi
    bundle_cuda_libs="$bundle_cuda_libs $_lib=${_found:-MISSING}"
    case $_found in
    "") bundle_missing="$bundle_missing $_lib" ;;
    "(system)") ;;
    *) case ":$bundle_cuda_dirs:" in *":$_found:"*) ;; *) bundle_cuda_dirs=${bundle_cuda_dirs:+$bundle_cuda_dirs:}$_found ;; esac ;;
    esac
done
unset _lib _found _d

LD_LIBRARY_PATH=$POA_BUNDLE/lib${bundle_cuda_dirs:+:$bundle_cuda_dirs}${bundle_saved_ld_path:+:$bundle_saved_ld_path}
PATH=$POA_BUNDLE/mpi/bin:$PATH
OPAL_PREFIX=$POA_BUNDLE/mpi
PMIX_PREFIX=$POA_BUNDLE/pmix
# hwloc: no plugins (a machine's own would not match the bundled library)
HWLOC_PLUGINS_PATH=$POA_BUNDLE/mpi/no-hwloc-plugins
export LD_LIBRARY_PATH PATH OPAL_PREFIX PMIX_PREFIX HWLOC_PLUGINS_PATH

# Open MPI on one machine, as root: shared memory between ranks, no warnings about the fabrics
# whose plugins the bundle leaves out.
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
OMPI_MCA_btl=self,vader
OMPI_MCA_btl_vader_single_copy_mechanism=none
OMPI_MCA_btl_base_warn_component_unused=0
OMPI_MCA_rmaps_base_oversubscribe=1
# launch on this machine only: no ssh/rsh needed (a GPU machine may have neither)
OMPI_MCA_plm=isolated
export OMPI_MCA_plm
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_btl
export OMPI_MCA_btl_vader_single_copy_mechanism OMPI_MCA_btl_base_warn_component_unused
export OMPI_MCA_rmaps_base_oversubscribe
