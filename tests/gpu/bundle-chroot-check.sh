#!/bin/sh
# bundle-chroot-check.sh — run the GPU bundle (tools/gpu-bundle.sh) where only what a GPU machine
# is expected to have is installed: a chroot holding glibc, libstdc++, libgcc_s, the CUDA
# libraries the bundle leaves out (libcudart, libcublas, libcublasLt, libnccl) and a few basic
# tools (sh, bash, coreutils, sed, grep, awk, find), with the repository and its bundle mounted
# at /repo.  No GPU is needed: the checks run the CPU backend.  In the chroot:
#   1. tests/gpu/device-check.sh --dry-run: the bundle is complete (manifest, libraries);
#   2. poa-train --help under LD_DEBUG=libs: every library it loads comes from the bundle, or is
#      one of those the chroot provides;
#   3. poa-train, one step of the tiny model on synthetic data (CPU backend): as an MPI
#      singleton (Open MPI forks orted from the bundle), under mpiexec -n 1 and under
#      mpiexec -n 2 (ranks over shared memory), each writing its checkpoint (HDF5);
#   4. the GPU test programs exit 77 (skipped: no device) rather than failing to load.
# Needs root (mount namespace, chroot).  usage: sh tests/gpu/bundle-chroot-check.sh [BUNDLE]
# Exit codes: 0 all passed, 1 a check failed, 2 cannot set up the chroot.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bundle=${1:-$repo/_gpu}
case $bundle in "$repo"/*) rel=${bundle#"$repo"/} ;; *) echo "bundle-chroot-check: the bundle must be inside $repo" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "bundle-chroot-check: needs root" >&2; exit 2; }
for t in unshare chroot mount ldd; do
    command -v $t >/dev/null 2>&1 || { echo "bundle-chroot-check: '$t' not found" >&2; exit 2; }
done
[ -f "$bundle/BUILD-INFO" ] || { echo "bundle-chroot-check: no bundle at $bundle (sh tools/gpu-bundle.sh)" >&2; exit 2; }

root=$(mktemp -d "${TMPDIR:-/tmp}/poa-bundle-root.XXXXXX") || exit 2
# The mounts live in the unshared namespace only; never delete through one all the same.
trap 'rmdir "$root/repo" "$root/dev" "$root/proc" "$root/sys" 2>/dev/null && rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/usr/bin" "$root/lib/x86_64-linux-gnu" "$root/lib64" "$root/etc" \
    "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/repo" "$root/root" "$root/usr/local/cuda/lib64" \
    "$root/sbin"
chmod 1777 "$root/tmp"

# The tools, and the libraries they need (none of them is one the bundle carries).
tools="sh bash env timeout cat ls mkdir rm sed grep awk date tee dirname basename head tail sort
find du wc od tr cut sleep sha256sum mktemp chmod uname xargs true false nproc id readlink ldd
printf tar xz"
for t in $tools; do
    p=$(command -v "$t") || { echo "bundle-chroot-check: '$t' not found" >&2; exit 2; }
    case $p in /*) ;; *) continue ;; esac # a shell builtin
    cp -L "$p" "$root/usr/bin/$t"
    ldd "$p" 2>/dev/null | awk '/=>/ {print $3} /^\t\/lib64/ {print $1}' >>"$root/libs.txt"
done
ln -s ../usr/bin/sh "$root/bin/sh"
ln -s ../usr/bin/bash "$root/bin/bash"
cp -L /sbin/ldconfig "$root/sbin/ldconfig"
# glibc, libstdc++, libgcc_s: what every GPU machine has
for l in libc.so.6 libm.so.6 libmvec.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 \
    libutil.so.1 libstdc++.so.6 libgcc_s.so.1; do
    p=$(ldconfig -p | awk -v l="$l" '$1 == l && /x86-64/ {print $NF; exit}')
    [ -n "$p" ] && echo "$p" >>"$root/libs.txt"
done
sort -u "$root/libs.txt" | while read -r p; do
    case $p in
    /lib64/*) cp -L "$p" "$root/lib64/" ;;
    *) cp -L "$p" "$root/lib/x86_64-linux-gnu/" ;;
    esac
done
rm -f "$root/libs.txt"
# the CUDA libraries the bundle expects from the machine (hard links where possible)
cudadir=/usr/local/cuda/targets/x86_64-linux/lib
[ -d $cudadir ] || cudadir=/usr/local/cuda/lib64
for l in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
    src=$(readlink -f "$cudadir/$l")
    [ -f "$src" ] || { echo "bundle-chroot-check: $cudadir/$l not found" >&2; exit 2; }
    ln "$src" "$root/usr/local/cuda/lib64/$l" 2>/dev/null || cp "$src" "$root/usr/local/cuda/lib64/$l"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "127.0.0.1 localhost $(uname -n)" >"$root/etc/hosts"
echo "bundle-chroot-check: chroot at $root: $(ls "$root/lib/x86_64-linux-gnu" | wc -l) system libraries ($(ls "$root/lib/x86_64-linux-gnu" | tr '\n' ' '))"

# What runs inside (as /repo).
cat >"$root/check.sh" <<EOF
set -u
cd /repo
B=/repo/$rel
fail=0
ok() { echo "ok: \$1"; }
bad() { echo "FAIL: \$1"; fail=1; }
sh tests/gpu/device-check.sh --dry-run --bundle "\$B" --out /tmp/dc >/tmp/dc.txt 2>&1 &&
    ok "device-check --dry-run: bundle complete" || { cat /tmp/dc.txt; bad "device-check --dry-run"; }
if [ -f "\$B/bundle.tar.xz" ]; then # packed (gpu-bundle.sh --pack)
    mkdir -p /tmp/bundle && xz -dc "\$B/bundle.tar.xz" | tar -C /tmp/bundle -xf - && B=/tmp/bundle
fi
POA_BUNDLE=\$B
. tests/gpu/bundle-env.sh
echo "LD_LIBRARY_PATH=\$LD_LIBRARY_PATH"
LD_DEBUG=libs "\$B/src/poa-train" --help >/dev/null 2>/tmp/ld.txt || bad "poa-train --help"
grep 'calling init:' /tmp/ld.txt | sed 's/.*calling init: //' | sort -u >/tmp/loaded.txt
outside=\$(grep -v -e "^\$B/" -e '^/lib/x86_64-linux-gnu/' -e '^/lib64/' -e '^/usr/local/cuda/lib64/' /tmp/loaded.txt)
[ -z "\$outside" ] || bad "poa-train loads libraries from outside the bundle and the machine: \$outside"
machine=\$(grep -v "^\$B/" /tmp/loaded.txt)
echo "\$machine" | grep -v -E '/(ld-linux-x86-64|libc|libm|libmvec|libpthread|libdl|librt|libresolv|libutil|libstdc\+\+|libgcc_s|libcudart|libcublas|libcublasLt|libnccl)\.so' &&
    bad "the libraries above come from the machine but belong in the bundle" ||
    ok "poa-train loads \$(grep -c "^\$B/" /tmp/loaded.txt) objects from the bundle and only these from the machine: \$(echo "\$machine" | xargs -n1 basename | tr '\n' ' ')"
train() { # LABEL LAUNCHER...
    _l=\$1; shift
    rm -rf /tmp/run-\$_l
    "\$@" "\$B/src/poa-train" --config configs/tiny.yaml --synthetic-data --max-steps 1 \
        --output /tmp/run-\$_l train.backend=cpu >/tmp/train-\$_l.txt 2>&1
    _rc=\$?
    if [ \$_rc -eq 0 ] && find /tmp/run-\$_l -name 'checkpoint_*.h5' | grep -q .; then
        ok "poa-train (\$_l): one step, checkpoint written"
    else
        tail -n 15 /tmp/train-\$_l.txt; bad "poa-train (\$_l): exit \$_rc"
    fi
}
export OMP_NUM_THREADS=1
train singleton env
train mpiexec-n1 mpiexec -n 1 --bind-to none
train mpiexec-n2 mpiexec -n 2 --bind-to none
for t in \$(cd "\$B" && find tests -type f -name 'test_gpu_*' -perm -u+x); do
    "\$B/\$t" >/tmp/t.txt 2>&1
    rc=\$?
    [ \$rc -eq 77 ] && ok "\$t: exit 77 (no device)" || { tail -n 5 /tmp/t.txt; bad "\$t: exit \$rc, expected 77 without a GPU"; }
done
[ \$fail -eq 0 ] && echo "bundle-chroot-check: all passed"
exit \$fail
EOF

unshare -m sh -c '
    set -e
    root=$1 repo=$2
    mount --make-rprivate /
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --bind "$repo" "$root/repo"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root TMPDIR=/tmp sh /check.sh
' sh "$root" "$repo"
