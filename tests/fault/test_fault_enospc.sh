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
#      the file: still exit 4 with the message, no signal at exit, nothing partial left.
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
kept=$(cd "$out/full" && ls -A | grep -E '^\.?checkpoint' | tr '\n' ' ')
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
kept=$(cd "$out/nofa" && ls -A | grep -E '^\.?checkpoint' | tr '\n' ' ')
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
finish
