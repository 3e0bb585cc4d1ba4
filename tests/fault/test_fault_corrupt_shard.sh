#!/bin/sh
# test_fault_corrupt_shard.sh — a packed shard that goes bad after packing:
#   1. bytes flipped inside one image's payload, every HDF5 header intact: poa-pack --verify
#      names the shard and the sample (exit 3); poa-train checks each image's stored CRC-32 when
#      its loader reads it and stops with exit 3 naming the shard and the sample, instead of
#      training on the damaged image (before the check it trained to exit 0);
#   2. the shard truncated: --verify and poa-train stop with exit 3 naming it.
# shellcheck source=tests/train/lib.sh
. "$POA_TOP_SRCDIR/tests/train/lib.sh"
fault_test
setup_out corrupt_shard
need_python
make_data "$out" 64
shard='train-00000-of-00001.h5'
common="--config $tiny train.batch_size_per_gpu=4 evaluation.eval_period_iterations=0
        train.checkpoint_period_iterations=1000"

# ---- 1. bytes flipped in the middle of record 5's JPEG data
cp -r "$out/packed" "$out/flipped"
"$py" - "$out/flipped/$shard" <<'PY'
import sys, h5py
p = sys.argv[1]
with h5py.File(p, "r") as f:
    base = f["images"].id.get_offset()
    lo, hi = int(f["offsets"][5]), int(f["offsets"][6])
with open(p, "r+b") as f:
    for k in range(4):  # four bytes in the entropy-coded data, far from the headers
        f.seek(base + lo + (hi - lo) * (5 + k) // 10)
        b = f.read(1)
        f.seek(base + lo + (hi - lo) * (5 + k) // 10)
        f.write(bytes([b[0] ^ 0x5a]))
PY
$pack --verify "$out/flipped" >"$out/verify1.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "$shard: record 5 (.*) has CRC-32 [0-9a-f]*, expected [0-9a-f]* (corrupt data)" "$out/verify1.log" &&
    ok "poa-pack --verify names the shard and the sample (exit 3)" || { cat "$out/verify1.log"; bad "verify of a flipped shard: exit $rc"; }
run_ranks 1 $common --data "$out/flipped" --output "$out/t1" --max-steps 16 >"$out/train1.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "error: reading data: .*$shard: record 5 has CRC-32 .*changed after packing" "$out/train1.log" &&
    ok "poa-train stops with exit 3 naming the shard and the sample" || { tail -5 "$out/train1.log"; bad "training on a flipped shard: exit $rc (want 3)"; }

# ---- 2. the shard cut short
cp -r "$out/packed" "$out/cut"
"$py" -c "import os,sys; p=sys.argv[1]; os.truncate(p, os.path.getsize(p) - 5000)" "$out/cut/$shard"
$pack --verify "$out/cut" >"$out/verify2.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "$shard: truncated" "$out/verify2.log" &&
    ok "poa-pack --verify reports the truncated shard (exit 3)" || { cat "$out/verify2.log"; bad "verify of a truncated shard: exit $rc"; }
run_ranks 1 $common --data "$out/cut" --output "$out/t2" --max-steps 2 >"$out/train2.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "$shard: truncated" "$out/train2.log" &&
    ok "poa-train stops with exit 3 naming the truncated shard" || { tail -5 "$out/train2.log"; bad "training on a truncated shard: exit $rc"; }
finish
