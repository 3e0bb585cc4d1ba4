#!/bin/sh
# test_fault_enospc.sh — the disk fills up (tests/fault/enospc_shim.c, LD_PRELOAD: writes to the
# output folder fail with ENOSPC once a byte budget is spent):
#   1. during a checkpoint of a 2-rank run (tiny config, checkpoint every 4 iterations, room for
#      one checkpoint): exit 4 on every rank with a message naming the file and "No space left on
#      device", no crash at exit (libhdf5 1.10 used to SIGSEGV in H5F__close_cb), the previous
#      checkpoint kept and loadable, no temporary file left; the rerun with space resumes and
#      ends bit-identical to an undisturbed run;
#   2. during packing (4 shards, room for one): exit 4 with the message, every complete shard
#      kept, no metadata.h5; the rerun with space keeps the complete shard, packs the rest, and
#      the result equals an undisturbed pack (same_packed.py);
#   3. both again on a file system without fallocate (POA_FAULT_NO_FALLOCATE=1: some NFS and
#      Lustre versions), where libhdf5 itself meets the full disk in its flush and cannot close
#      the file: still exit 4 with the message, no signal at exit, nothing partial left;
#   4. during poa-extract (the 9 sub-networks of the run's last checkpoint): HDF5 files with their
#      space reserved, safetensors files cut short in their data, both formats without
#      fallocate, and 2 ranks: exit 4 naming the file and the cause, no signal at exit, no HDF5
#      object left open, the complete files kept and equal to an undisturbed extraction, no
#      partial or temporary file; the rerun with space completes the extraction.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
fault_test
setup_out enospc
need_python
make_data "$out" 64
shim=$top_build/tests/fault/libpoa_enospc.so
[ -f "$shim" ] || { echo "FAIL: $shim not built"; exit 1; }
# a sanitizer build: the shim is preloaded ahead of the ASan runtime
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:verify_asan_link_order=0"
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4
        train.checkpoint_period_iterations=4 evaluation.eval_period_iterations=0"

# full NAME BUDGET CMD...: CMD with writes under $out/NAME/ limited to BUDGET bytes
full() {
    dir=$out/$1/ budget=$2
    shift 2
    LD_PRELOAD=$shim POA_FAULT_PATH=$dir POA_FAULT_ENOSPC_AFTER=$budget "$@"
}

# ---- 1. a checkpoint
run_ranks 2 $common --output "$out/ref" --max-steps 12 >"$out/ref.log" 2>&1 ||
    { tail -20 "$out/ref.log"; bad "undisturbed run failed"; finish; }
size=$(stat -c %s "$out/ref/checkpoint_0000003.h5")
budget=$((2 * size)) # the first checkpoint fits, the second does not
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS -x ASAN_OPTIONS \
    -x LD_PRELOAD="$shim" -x POA_FAULT_PATH="$out/full/" -x POA_FAULT_ENOSPC_AFTER=$budget \
    "$train" $common --output "$out/full" --max-steps 12 >"$out/full.log" 2>&1
rc=$?
[ $rc -eq 4 ] && ok "checkpoint on a full disk: exit 4" || { tail -30 "$out/full.log"; bad "checkpoint on a full disk: exit $rc (want 4)"; }
grep -q "error: writing a checkpoint: writing checkpoint .*checkpoint_0000007.h5: .*No space left on device" "$out/full.log" &&
    ok "the message names the checkpoint and the cause" || bad "no message naming checkpoint_0000007.h5 and ENOSPC"
grep -q -E "Segmentation fault|signal 11|H5F__close_cb" "$out/full.log" && bad "a process crashed at exit" ||
    ok "no crash at exit"
kept=$(checkpoint_names "$out/full")
[ "$kept" = "checkpoint_0000003.h5 " ] && ok "previous checkpoint kept, no temporary file left" || bad "left in the output: $kept"
[ "$(check iteration "$out/full/checkpoint_0000003.h5")" = 3 ] && ok "the kept checkpoint loads" || bad "kept checkpoint unreadable"
run_ranks 2 $common --output "$out/full" --max-steps 8 >"$out/full2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "resuming from .*checkpoint_0000003.h5" "$out/full2.log" &&
    ok "the rerun with space resumes from iteration 3" || { tail -20 "$out/full2.log"; bad "rerun: exit $rc"; }
check identical "$out/ref/checkpoint_0000011.h5" "$out/full/checkpoint_0000011.h5" &&
    ok "the rerun ends bit-identical to the undisturbed run" || bad "rerun differs from the undisturbed run"

# ---- 2. packing
pack="$pack --root $out/root --splits train --shard-images 16 -j 1"
$pack --output "$out/pref" >"$out/pref.log" 2>&1 || { cat "$out/pref.log"; bad "undisturbed pack failed"; finish; }
shard=$(stat -c %s "$out/pref/train-00000-of-00004.h5")
budget=$((3 * (shard + 70000) / 2)) # one shard's reservation fits, two do not
full pfull $budget $pack --output "$out/pfull" >"$out/pfull.log" 2>&1
rc=$?
[ $rc -eq 4 ] && grep -q "writing .*train-00001-of-00004.h5: .*No space left on device" "$out/pfull.log" &&
    ok "packing on a full disk: exit 4 naming the shard" || { tail -10 "$out/pfull.log"; bad "packing on a full disk: exit $rc"; }
grep -q "metadata.h5 not written: packing failed" "$out/pfull.log" && [ ! -e "$out/pfull/metadata.h5" ] &&
    ok "no metadata.h5, and the summary says so" || bad "metadata.h5 written or claimed after a failed pack"
left=$(cd "$out/pfull" && ls -A | tr '\n' ' ')
[ "$left" = "train-00000-of-00004.h5 " ] && ok "the complete shard kept, no partial file" || bad "left after the failed pack: $left"
$pack --output "$out/pfull" >"$out/pfull2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "1 kept from an earlier run" "$out/pfull2.log" &&
    ok "the rerun with space keeps the complete shard and finishes" || { tail -5 "$out/pfull2.log"; bad "pack rerun: exit $rc"; }
"$py" "$top_src/tests/data/same_packed.py" "$out/pref" "$out/pfull" >"$out/same.log" 2>&1 &&
    ok "the finished pack equals the undisturbed one" || { cat "$out/same.log"; bad "the packs differ"; }

# ---- 3. no fallocate: the full disk is met by libhdf5's own writes (budgets in written bytes)
# crashed: CMD exited on a signal or printed libhdf5's crash at exit
crashed() { [ "$1" -gt 128 ] || grep -q -E "Segmentation fault|signal 11|H5F__close_cb" "$2"; }
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x POA_PROGRESS -x ASAN_OPTIONS \
    -x LD_PRELOAD="$shim" -x POA_FAULT_PATH="$out/nofa/" -x POA_FAULT_ENOSPC_AFTER=$((3 * size / 2)) \
    -x POA_FAULT_NO_FALLOCATE=1 "$train" $common --output "$out/nofa" --max-steps 12 >"$out/nofa.log" 2>&1
rc=$?
[ $rc -eq 4 ] && ok "checkpoint, no fallocate: exit 4" || { tail -30 "$out/nofa.log"; bad "checkpoint, no fallocate: exit $rc (want 4)"; }
grep -q "error: writing a checkpoint: writing checkpoint .*checkpoint_0000007.h5: .*No space left on device" "$out/nofa.log" &&
    ok "checkpoint, no fallocate: the message names the checkpoint and the cause, on one line" ||
    bad "checkpoint, no fallocate: no one-line message naming checkpoint_0000007.h5 and ENOSPC"
crashed $rc "$out/nofa.log" && bad "checkpoint, no fallocate: a process died at exit" ||
    ok "checkpoint, no fallocate: no signal at exit (libhdf5's half-closed file is not cleaned up)"
kept=$(checkpoint_names "$out/nofa")
[ "$kept" = "checkpoint_0000003.h5 " ] && [ "$(check iteration "$out/nofa/checkpoint_0000003.h5")" = 3 ] &&
    ok "checkpoint, no fallocate: the previous checkpoint kept and loadable, no temporary file" ||
    bad "checkpoint, no fallocate: left in the output: $kept"
full nofp $((3 * shard / 2)) env POA_FAULT_NO_FALLOCATE=1 $pack --output "$out/nofp" >"$out/nofp.log" 2>&1
rc=$?
[ $rc -eq 4 ] && grep -q "writing .*train-00001-of-00004.h5: .*No space left on device" "$out/nofp.log" &&
    ok "packing, no fallocate: exit 4 naming the shard and the cause" || { tail -10 "$out/nofp.log"; bad "packing, no fallocate: exit $rc"; }
crashed $rc "$out/nofp.log" && bad "packing, no fallocate: died at exit" || ok "packing, no fallocate: no signal at exit"
left=$(cd "$out/nofp" && ls -A | tr '\n' ' ')
[ "$left" = "train-00000-of-00004.h5 " ] && ok "packing, no fallocate: the complete shard kept, nothing else" ||
    bad "packing, no fallocate: left $left"

# ---- 4. poa-extract
extract=$top_build/src/poa-extract
ck=$out/ref/checkpoint_0000011.h5
"$extract" --checkpoint "$ck" --output "$out/xref" --all >"$out/xref.log" 2>&1 ||
    { tail -5 "$out/xref.log"; bad "undisturbed extraction failed"; finish; }
# xcheck NAME RC FAILED KEPT: the extraction into $out/NAME exited 4 naming FAILED and the cause,
# died on no signal, left no HDF5 object open, and left exactly the files KEPT, equal to the
# undisturbed ones (no partial or temporary file)
xcheck() {
    name=$1 rc=$2 failed=$3 kept=$4
    log=$out/$name.log
    [ "$rc" -eq 4 ] && grep -q "error: poa-extract: writing .*/$failed: .*No space left on device" "$log" &&
        ok "$name: exit 4 naming $failed and the cause" || { tail -10 "$log"; bad "$name: exit $rc"; }
    crashed "$rc" "$log" && bad "$name: died at exit" || ok "$name: no signal at exit"
    grep -q "HDF5 objects left open" "$log" && bad "$name: $(grep -m1 'HDF5 objects left open' "$log")" ||
        ok "$name: no HDF5 object left open"
    left=$(cd "$out/$name" && ls -A | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ "$left" = "$kept " ] &&
        "$py" "$top_src/tests/fault/same_extracted.py" "$out/xref" "$out/$name" $kept >"$out/$name.same" 2>&1 &&
        ok "$name: $kept kept, equal to the undisturbed extraction; nothing partial" ||
        { cat "$out/$name.same" 2>/dev/null; bad "$name: left $left"; }
}
# a. HDF5: every file's reservation is over 1 MiB (poa_h5_size_bound), so 2 MiB holds the first
#    and not the second: the full disk is found before HDF5 writes anything
full xh5 $((2 * 1048576)) "$extract" --checkpoint "$ck" --output "$out/xh5" --all --format h5 >"$out/xh5.log" 2>&1
xcheck xh5 $? vit_32x3.h5 vit_32x2.h5
grep -q "vit_32x3.h5.tmp.[0-9]*: cannot reserve" "$out/xh5.log" && ok "xh5: found by the reservation" ||
    bad "xh5: not found by the reservation"
# b. safetensors: the second file meets the full disk in the middle of its data
st=$(stat -c %s "$out/xref/vit_32x2.safetensors")
full xst $((3 * st / 2)) "$extract" --checkpoint "$ck" --output "$out/xst" --all --format safetensors \
    >"$out/xst.log" 2>&1
xcheck xst $? vit_32x3.safetensors vit_32x2.safetensors
# c. both formats without fallocate: libhdf5 meets the full disk in its own flush (of the second
#    sub-network's HDF5 file)
h5=$(stat -c %s "$out/xref/vit_32x2.h5")
full xnofa $((h5 + st + h5 / 2)) env POA_FAULT_NO_FALLOCATE=1 "$extract" --checkpoint "$ck" \
    --output "$out/xnofa" --all >"$out/xnofa.log" 2>&1
xcheck xnofa $? vit_32x3.h5 "vit_32x2.h5 vit_32x2.safetensors"
# d. 2 ranks, 2 MiB each (the shim's budget is per process): rank 0 writes 32x2 and fails on
#    32x4, rank 1 writes 32x3 and fails on 48x2; every rank ends with exit 4
"$mpiexec" -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x ASAN_OPTIONS -x LD_PRELOAD="$shim" \
    -x POA_FAULT_PATH="$out/xmpi/" -x POA_FAULT_ENOSPC_AFTER=$((2 * 1048576)) \
    "$extract" --checkpoint "$ck" --output "$out/xmpi" --all --format h5 >"$out/xmpi.log" 2>&1
xcheck xmpi $? vit_32x4.h5 "vit_32x2.h5 vit_32x3.h5"
grep -q "writing .*/vit_48x2.h5: .*No space left on device" "$out/xmpi.log" &&
    ok "xmpi: the other rank names its file too" || bad "xmpi: no message from the second rank"
# e. the rerun with space completes (a) and equals the undisturbed extraction
"$extract" --checkpoint "$ck" --output "$out/xh5" --all >"$out/xh5-2.log" 2>&1 &&
    "$py" "$top_src/tests/fault/same_extracted.py" "$out/xref" "$out/xh5" >"$out/xh5-2.same" 2>&1 &&
    ok "the rerun with space writes the 18 files, equal to the undisturbed extraction" ||
    { tail -5 "$out/xh5-2.log" "$out/xh5-2.same"; bad "extraction rerun"; }
finish
