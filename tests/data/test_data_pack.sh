#!/bin/sh
# test_data_pack.sh — Fashion-MNIST end to end: poa-prep-fmnist → poa-pack → --verify, the shards
# checked against the source files (check_pack.py: torchvision ImageFolder order, PIL, original
# bytes); resuming (complete shards kept, missing/truncated ones rewritten, stale temporary files
# removed, changed input re-planned); 2 MPI ranks and --shard-range tasks give the same content as
# one process; --verify catches a flipped byte; --max-side re-encodes.
set -u
top_src=${POA_TOP_SRCDIR:?}
top_build=${POA_TOP_BUILDDIR:?}
py=${POA_PYTHON_REF:-/usr/bin/python3}
mpiexec=${POA_MPIEXEC:-mpiexec}
pack=$top_build/poa-pack
prep=$top_build/poa-prep-fmnist
out=$top_build/tests/out/data/pack
rm -rf "$out"
mkdir -p "$out"
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }
same() { "$py" "$top_src/tests/data/same_packed.py" "$1" "$2" >"$out/same.log" 2>&1 && ok "$3" || { cat "$out/same.log"; bad "$3"; }; }

# --- conversion
"$prep" --output "$out/fm" --limit 120 >"$out/prep.log" 2>&1 || { cat "$out/prep.log"; bad "poa-prep-fmnist failed"; exit 1; }
n_train=$(find "$out/fm/train" -name '*.JPEG' | wc -l)
n_val=$(find "$out/fm/val" -name '*.JPEG' | wc -l)
[ "$n_train" -eq 120 ] && [ "$n_val" -eq 120 ] && ok "poa-prep-fmnist --limit 120 writes 120 + 120 JPEGs" || bad "wrote $n_train + $n_val JPEGs"
"$py" - "$out/fm" <<'PY' && ok "JPEGs are 28x28 grayscale and match the idx pixels" || bad "converted images differ from the idx data"
import gzip, os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
src = "/usr/share/datasets/fashion-mnist"
with gzip.open(f"{src}/train-images-idx3-ubyte.gz") as f:
    imgs = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
with gzip.open(f"{src}/train-labels-idx1-ubyte.gz") as f:
    labels = np.frombuffer(f.read(), np.uint8, offset=8)
classes = sorted(os.listdir(f"{root}/train"))
assert len(classes) == 10, classes
rows = open(f"{root}/labels.txt").read().splitlines()
assert [r.split(",")[0] for r in rows] == classes, rows
worst = 0
for i in range(120):
    c = classes[labels[i]]
    im = Image.open(f"{root}/train/{c}/{c}_{i}.JPEG")
    assert im.mode == "L" and im.size == (28, 28), (im.mode, im.size)
    worst = max(worst, np.abs(np.asarray(im, np.int16) - imgs[i]).mean())
print("mean abs JPEG error (worst image):", worst)
assert worst < 4.0
PY

# --- pack + verify + independent check
"$pack" --root "$out/fm" --output "$out/p1" --shard-images 50 -j 2 >"$out/pack1.log" 2>&1 \
    && ok "poa-pack of Fashion-MNIST" || { cat "$out/pack1.log"; bad "poa-pack failed"; }
[ -e "$out/p1/train-00002-of-00003.h5" ] && ok "shard names <split>-KKKKK-of-NNNNN.h5" || bad "shard names: $(ls "$out/p1")"
"$pack" --verify "$out/p1" --decode >"$out/verify1.log" 2>&1 && ok "--verify --decode passes" || { cat "$out/verify1.log"; bad "--verify failed"; }
"$py" "$top_src/tests/data/check_pack.py" "$out/fm" "$out/p1" >"$out/check1.log" 2>&1 \
    && ok "shards = source bytes in ImageFolder order (check_pack.py)" || { cat "$out/check1.log"; bad "check_pack.py"; }
grep -q "images/s" "$out/pack1.log" && grep -q "240 images packed" "$out/pack1.log" && ok "summary line" || { cat "$out/pack1.log"; bad "summary"; }

# --- resume
"$pack" --root "$out/fm" --output "$out/p1" --shard-images 50 >"$out/pack2.log" 2>&1
grep -q "0 shards written, 6 kept" "$out/pack2.log" && ok "rerun keeps complete shards" || { cat "$out/pack2.log"; bad "rerun did not keep the shards"; }
cp -r "$out/p1" "$out/p1_ref"
rm "$out/p1/train-00001-of-00003.h5"
head -c 3000 "$out/p1_ref/val-00002-of-00003.h5" >"$out/p1/val-00002-of-00003.h5"
echo junk >"$out/p1/.train-00000-of-00003.h5.tmp.12345"
"$pack" --root "$out/fm" --output "$out/p1" --shard-images 50 >"$out/pack3.log" 2>&1
grep -q "2 shards written, 4 kept" "$out/pack3.log" && ok "missing and truncated shards rewritten, others kept" || { cat "$out/pack3.log"; bad "resume after damage"; }
grep -q "rewriting: .*val-00002-of-00003.h5" "$out/pack3.log" && ok "truncated shard reported" || bad "truncated shard not reported"
find "$out/p1" -mindepth 1 -maxdepth 1 -name '*.tmp.*' | grep -q . && bad "stale temporary file not removed" || ok "stale temporary file removed"
same "$out/p1" "$out/p1_ref" "resumed output equals the original"

# --- changed input: the shard holding the new file (and every later one) is re-planned
cp "$out/fm/train/fm9_ankle_boot/$(ls "$out/fm/train/fm9_ankle_boot" | head -1)" "$out/fm/train/fm9_ankle_boot/fm9_ankle_boot_99999.JPEG"
"$pack" --root "$out/fm" --output "$out/p1" --shard-images 50 >"$out/pack4.log" 2>&1
grep -q "written for another input" "$out/pack4.log" && ok "changed input detected" || { cat "$out/pack4.log"; bad "changed input not detected"; }
"$py" "$top_src/tests/data/check_pack.py" "$out/fm" "$out/p1" >"$out/check4.log" 2>&1 && ok "re-planned output checks" || { cat "$out/check4.log"; bad "re-planned output"; }
rm "$out/fm/train/fm9_ankle_boot/fm9_ankle_boot_99999.JPEG"
rm -rf "$out/p1" && mv "$out/p1_ref" "$out/p1"

# --- MPI ranks and Slurm array tasks produce the same content
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
"$mpiexec" -n 2 --oversubscribe "$pack" --root "$out/fm" --output "$out/p2" --shard-images 50 -j 1 >"$out/mpi.log" 2>&1 \
    && ok "mpiexec -n 2 poa-pack" || { cat "$out/mpi.log"; bad "mpiexec -n 2 poa-pack"; }
same "$out/p1" "$out/p2" "2 ranks = 1 rank"
"$pack" --root "$out/fm" --output "$out/p3" --shard-images 50 --shard-range 0:1 >"$out/range1.log" 2>&1
grep -q "metadata.h5 not written yet: 4 shard(s)" "$out/range1.log" && [ ! -e "$out/p3/metadata.h5" ] \
    && ok "partial --shard-range run leaves metadata for later" || { cat "$out/range1.log"; bad "partial range"; }
"$pack" --root "$out/fm" --output "$out/p3" --shard-images 50 --shard-range 1:3 >"$out/range2.log" 2>&1
[ -e "$out/p3/metadata.h5" ] && ok "the run completing the last shard writes metadata.h5" || { cat "$out/range2.log"; bad "metadata after ranges"; }
same "$out/p1" "$out/p3" "--shard-range 0:1 + 1:3 = one run"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_COUNT=2 "$pack" --root "$out/fm" --output "$out/p4" --shard-images 50 --shard-range auto >"$out/auto1.log" 2>&1
ls "$out/p4" | tr '\n' ' ' | grep -q "^train-00001-of-00003.h5 val-00001-of-00003.h5 $" && ok "--shard-range auto (task 1 of 2) packs the odd shards" || { ls "$out/p4"; bad "--shard-range auto"; }
"$pack" --root "$out/fm" --output "$out/p4" --shard-images 50 --shard-range 0/2 >"$out/auto2.log" 2>&1
same "$out/p1" "$out/p4" "--shard-range 1/2 + 0/2 = one run"

# --- verify catches corruption
cp -r "$out/p1" "$out/p5"
"$py" - "$out/p5/train-00001-of-00003.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    o = f["offsets"][:]
    f["images"][int(o[7]) + 100] ^= 0x10
PY
"$pack" --verify "$out/p5" >"$out/verify5.log" 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q "record 7 .* has CRC-32 .* (corrupt data)" "$out/verify5.log" && ok "--verify finds a flipped byte (exit 3)" || { cat "$out/verify5.log"; bad "--verify missed corruption (rc $rc)"; }

# --- re-encoding to a maximum side
"$pack" --root "$out/fm" --output "$out/p6" --shard-images 1000 --max-side 16 --quality 80 >"$out/p6.log" 2>&1 \
    && "$pack" --verify "$out/p6" --decode >"$out/v6.log" 2>&1 && ok "--max-side 16 output verifies" || { cat "$out/p6.log" "$out/v6.log"; bad "--max-side"; }
"$py" - "$out/p6/train-00000-of-00001.h5" <<'PY' && ok "re-encoded images are 16x16 and the attributes say so" || bad "re-encoded sizes"
import sys, h5py, io, numpy as np
from PIL import Image
with h5py.File(sys.argv[1], "r") as f:
    assert f.attrs["reencode_max_side"] == 16 and f.attrs["reencode_quality"] == 80
    assert (f["image_size"][:] == 16).all()
    o = f["offsets"]
    im = Image.open(io.BytesIO(f["images"][o[0]:o[1]].tobytes()))
    assert im.size == (16, 16) and im.mode == "L", (im.size, im.mode)
PY
# --- the unlabeled test split (ROOT/test/*.JPEG, no class folders)
mkdir -p "$out/fm_test/test"
cp "$out/fm/labels.txt" "$out/fm_test/"
i=1
for f in $(find "$out/fm/val" -name '*.JPEG' | sort | head -12); do
    cp "$f" "$out/fm_test/test/ILSVRC2012_test_$(printf %08d $i).JPEG"; i=$((i + 1))
done
"$pack" --root "$out/fm_test" --output "$out/p7" --splits test >"$out/p7.log" 2>&1 \
    && "$pack" --verify "$out/p7" >"$out/v7.log" 2>&1 && ok "test split packs and verifies" || { cat "$out/p7.log" "$out/v7.log"; bad "test split"; }
"$py" - "$out/p7" <<'PY' && ok "test split: class_index 4294967295, labels -1, actual_index from names" || bad "test split metadata"
import sys, h5py
m = h5py.File(sys.argv[1] + "/metadata.h5", "r")
g = m["test"]
assert g.attrs["num_images"] == 12 and g.attrs["num_classes"] == 0, dict(g.attrs)
assert (g["entries/class_index"][:] == 4294967295).all()
assert list(g["entries/actual_index"][:]) == list(range(1, 13)), g["entries/actual_index"][:]
s = h5py.File(sys.argv[1] + "/test-00000-of-00001.h5", "r")
assert (s["labels"][:] == -1).all()
PY

# --- the official dump_extra() files, byte for byte (a class name with non-ASCII characters)
cp -r "$out/fm" "$out/fm_u"
sed -i 's/^fm9_ankle_boot,.*/fm9_ankle_boot,"Ankle boot, ☃ ünïcode"/' "$out/fm_u/labels.txt"
"$pack" --root "$out/fm_u" --output "$out/p8" --export-extra "$out/extra8" >"$out/p8.log" 2>&1 \
    && "$py" "$top_src/tests/data/check_extra.py" "$out/fm_u" "$out/extra8" >"$out/extra8.log" 2>&1 \
    && ok "--export-extra writes dump_extra's .npy files byte for byte" || { cat "$out/p8.log" "$out/extra8.log"; bad "--export-extra"; }
"$pack" --verify "$out/p7" --export-extra "$out/extra7" >"$out/v7b.log" 2>&1 \
    && "$py" "$top_src/tests/data/check_extra.py" "$out/fm_test" "$out/extra7" --splits test >"$out/extra7.log" 2>&1 \
    && ok "--verify --export-extra of the test split" || { cat "$out/v7b.log" "$out/extra7.log"; bad "--export-extra test split"; }
exit $fail
