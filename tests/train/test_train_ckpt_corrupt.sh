#!/bin/sh
# test_train_ckpt_corrupt.sh — a truncated or corrupt newest checkpoint: the
# resumed run warns, names the file, falls back to the previous checkpoint and still ends
# bit-identical to an uninterrupted run; a leftover temporary file of an interrupted write is
# ignored; when no checkpoint is loadable the run stops with exit 3 and a message.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
setup_out corrupt
need_python
make_data "$out" 128
common="--config $tiny --data $out/packed train.batch_size_per_gpu=4 train.checkpoint_period_iterations=4
        evaluation.eval_period_iterations=0"

run_ranks 2 $common --output "$out/ref" >"$out/ref.log" 2>&1 || { tail -20 "$out/ref.log"; bad "reference run failed"; }
run_ranks 2 $common --output "$out/a" --max-steps 12 >"$out/a1.log" 2>&1
rc=$?
kept=$(cd "$out/a" && ls checkpoint_*.h5 | tr '\n' ' ')
[ $rc -eq 0 ] && [ "$kept" = "checkpoint_0000003.h5 checkpoint_0000007.h5 checkpoint_0000011.h5 " ] &&
    ok "interrupted run left checkpoints 3, 7, 11" || bad "first run: exit $rc, checkpoints $kept"
cp -r "$out/a" "$out/b"
cp -r "$out/a" "$out/c"

# a: the newest checkpoint truncated to half its size (+ a leftover temporary file)
f=$out/a/checkpoint_0000011.h5
"$py" -c "import os,sys; p=sys.argv[1]; os.truncate(p, os.path.getsize(p)//2)" "$f"
echo junk >"$out/a/.checkpoint_0000012.h5.tmp.99999"
run_ranks 2 $common --output "$out/a" >"$out/a2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "truncated newest: exit 0" || { tail -20 "$out/a2.log"; bad "truncated newest: exit $rc"; }
grep -q "warning: skipping checkpoint: .*checkpoint_0000011.h5" "$out/a2.log" &&
    ok "truncated checkpoint reported by name" || bad "no warning naming the truncated checkpoint"
grep -q "resuming from .*checkpoint_0000007.h5: iteration 7 done" "$out/a2.log" &&
    ok "fell back to checkpoint 7" || bad "did not resume from checkpoint 7"
check identical "$out/ref/checkpoint_0000015.h5" "$out/a/checkpoint_0000015.h5" &&
    ok "run after the fallback is bit-identical to the uninterrupted one" || bad "final checkpoints differ"
[ ! -e "$out/a/.checkpoint_0000012.h5.tmp.99999" ] && ok "leftover temporary file removed" ||
    bad "leftover temporary file still there"

# b: one flipped byte inside a tensor of the newest checkpoint (Fletcher-32 checksum)
"$py" - "$out/b/checkpoint_0000011.h5" <<'PY'
import sys, h5py
p = sys.argv[1]
with h5py.File(p, "r") as f:
    info = f["student/backbone.blocks.1.mlp.fc1.linear.weight"].id.get_chunk_info(0)
with open(p, "r+b") as f:
    f.seek(info.byte_offset + info.size // 2)
    b = f.read(1)
    f.seek(info.byte_offset + info.size // 2)
    f.write(bytes([b[0] ^ 0x10]))
PY
run_ranks 2 $common --output "$out/b" --max-steps 1 >"$out/b2.log" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "warning: skipping checkpoint: .*checkpoint_0000011.h5" "$out/b2.log" &&
    grep -q "resuming from .*checkpoint_0000007.h5" "$out/b2.log" &&
    ok "flipped bit detected, fell back to checkpoint 7" || { tail -20 "$out/b2.log"; bad "flipped bit: exit $rc"; }

# c: no loadable checkpoint at all
for f in "$out"/c/checkpoint_*.h5; do : >"$f"; done
run_ranks 2 $common --output "$out/c" >"$out/c2.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "no loadable checkpoint in" "$out/c2.log" && grep -q "no-resume" "$out/c2.log" &&
    ok "no loadable checkpoint: exit 3 with a message" || { tail -20 "$out/c2.log"; bad "no loadable checkpoint: exit $rc"; }
finish
