#!/bin/sh
# install-deps.sh — install the Debian 12 packages poa needs to build, test and run the demo.
#   sh tools/install-deps.sh          the packages to build, test and run poa
#   sh tools/install-deps.sh fuzz     also clang with libFuzzer, the sanitizer runtimes and LLVM's
#                                     OpenMP runtime (with its ThreadSanitizer tool, archer): the
#                                     fuzzing and ThreadSanitizer trees of tests/scripts/ci-tests.sh
# Run as root (or with sudo).  The CUDA toolkit (nvcc, cuBLAS, NCCL) is expected in its standard
# prefix /usr/local/cuda when the CUDA configuration is wanted; it is not a Debian package.
set -eu
FUZZ_PACKAGES="clang libclang-rt-14-dev libomp-14-dev"
PACKAGES="build-essential autoconf automake pkg-config
  libopenmpi-dev openmpi-bin
  libhdf5-dev libturbojpeg0-dev zlib1g-dev libopenblas-dev libyaml-dev libcmocka-dev
  python3-torch python3-torchvision python3-h5py python3-numpy python3-pil python3-skimage
  dataset-fashion-mnist
  clang-format gdb procps"
case "${1:-}" in
fuzz) PACKAGES="$PACKAGES $FUZZ_PACKAGES" ;;
"") ;;
*) echo "usage: $0 [fuzz]" >&2; exit 2 ;;
esac
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
