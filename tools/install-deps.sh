#!/bin/sh
# install-deps.sh — install the Debian 12 packages poa needs to build, test and run the demo.
#   sh tools/install-deps.sh [slurm] [fuzz]
# Run as root (or with sudo).  The CUDA toolkit (nvcc, cuBLAS, NCCL) is expected in its standard
# prefix /usr/local/cuda when the CUDA configuration is wanted; it is not a Debian package.
# Optional groups (named on the command line, added to the base packages):
#   slurm   Slurm 22.05 (slurmctld, slurmd, client commands, their plugins) and munge, for the
#           single-node test cluster of `make check-slurm` (tests/slurm/slurm-up.sh).  Installing
#           them starts no daemon: Debian's packages leave that to the init system, and the tests
#           run their own private slurmctld/slurmd/munged.
#   fuzz    clang with libFuzzer, the sanitizer runtimes and LLVM's OpenMP runtime (with archer,
#           its ThreadSanitizer tool): the fuzzing and ThreadSanitizer trees of
#           tests/scripts/ci-tests.sh (tests/fuzz/README.md, README.md "Reliability").
set -eu
FUZZ_PACKAGES="clang libclang-rt-14-dev libomp-14-dev"
PACKAGES="build-essential autoconf automake pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev libturbojpeg0-dev zlib1g-dev libopenblas-dev libyaml-dev libcmocka-dev
  python3-torch python3-torchvision python3-h5py python3-numpy python3-pil python3-skimage python3-matplotlib
  dataset-fashion-mnist
  clang-format shellcheck gdb procps"
SLURM_PACKAGES="slurm-wlm slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge"
for group in "$@"; do
    case "$group" in
    slurm) PACKAGES="$PACKAGES $SLURM_PACKAGES" ;;
    fuzz) PACKAGES="$PACKAGES $FUZZ_PACKAGES" ;;
    *) echo "install-deps: unknown package group '$group' (known: slurm, fuzz)" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
missing=
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all Debian packages present"
    exit 0
fi
echo "install-deps: installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
