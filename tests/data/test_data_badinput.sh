#!/bin/sh
# test_data_badinput.sh — poa-pack on a corpus of bad input (tests/data/make_bad_corpus.py):
# exactly the decodable JPEGs are packed (checked against torchvision's ImageFolder order and
# PIL by check_pack.py), the others are listed with their reason; --strict fails; a missing or
# malformed labels.txt and missing/empty splits stop the run with a clear message.
set -u
top_src=${POA_TOP_SRCDIR:?}
top_build=${POA_TOP_BUILDDIR:?}
py=${POA_PYTHON_REF:-/usr/bin/python3}
pack=$top_build/poa-pack
out=$top_build/tests/out/data/badinput
rm -rf "$out"
mkdir -p "$out"
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

"$py" "$top_src/tests/data/make_bad_corpus.py" "$out/root" || { echo "corpus generation failed"; exit 1; }

# 1. Skip and list: the run succeeds, packs the decodable images, lists the rest.
"$pack" --root "$out/root" --output "$out/packed" --shard-images 4 -j 2 >"$out/log1" 2>&1
rc=$?
cat "$out/log1"
[ $rc -eq 0 ] && ok "pack of the bad corpus exits 0" || bad "pack of the bad corpus exited $rc"
"$py" "$top_src/tests/data/check_pack.py" "$out/root" "$out/packed" --reasons \
    "train/n001/n001_6.JPEG:12-bit JPEG" \
    "train/n001/n001_7.JPEG:truncated JPEG" \
    "train/n001/n001_8.JPEG:empty file (0 bytes)" \
    "train/n001/n001_9.JPEG:not a JPEG file: PNG data" \
    "train/n001/n001_10.JPEG:not a JPEG file" \
    "train/n001/n001_11.JPEG:dangling symbolic link" \
    "train/n001/n001_12.JPEG:a FIFO" \
    "train/n001/n001_17.JPEG:holds no image" \
    "train/n002/n002_2.png:not a JPEG file: PNG data" \
    && ok "packed = decodable JPEGs in ImageFolder order, skipped files listed with reasons" \
    || bad "check_pack.py found differences"
for f in n001_6 n001_7 n001_8 n001_9 n001_10 n001_11 n001_12 n001_17; do
    grep -q "skipped train/n001/$f.JPEG: " "$out/log1" && ok "$f reported in the log" || bad "$f not reported in the log"
done
grep -q "n003: class folder has no row in .*labels.txt" "$out/log1" && ok "class folder missing from labels.txt reported" || bad "missing labels.txt row not reported"
grep -q "n004: class folder without image files" "$out/log1" && ok "empty class folder reported" || bad "empty class folder not reported"
grep -q "ignored train/stray.JPEG: not inside a class folder" "$out/log1" && ok "stray file reported" || bad "stray file not reported"
grep -q "ignored train/n001/README.txt: not an image file name" "$out/log1" && ok "non-image name reported" || bad "non-image name not reported"
"$pack" --verify "$out/packed" --decode >"$out/log_verify" 2>&1 && ok "--verify --decode passes" || { cat "$out/log_verify"; bad "--verify failed"; }
# No temporary files left (the atomic writes' are hidden: .NAME.tmp.PID, src/common/atomic_io.c).
find "$out/packed" -mindepth 1 -maxdepth 1 -name '*.tmp.*' | grep -q . && bad "temporary files left in the output" || ok "no temporary files left"

# 2. --strict: the run fails with exit 3, shards with undecodable files are not written.
cp -R "$out/root" "$out/strictroot"
printf 'n003,a third class\n' >>"$out/strictroot/labels.txt"
"$pack" --root "$out/strictroot" --output "$out/strict" --shard-images 100 --strict -j 2 >"$out/log2" 2>&1
rc=$?
[ $rc -eq 3 ] && ok "--strict exits 3" || { cat "$out/log2"; bad "--strict exited $rc"; }
grep -q -- "--strict: 9 file(s) of train could not be packed" "$out/log2" && ok "--strict failure counts the bad files" || { cat "$out/log2"; bad "--strict message"; }
grep -q "undecodable train/n001/n001_9.JPEG: not a JPEG file: PNG data" "$out/log2" && ok "--strict lists the bad files" || bad "--strict does not list the bad files"
"$pack" --root "$out/root" --output "$out/strict2" --strict >"$out/log2b" 2>&1
[ $? -eq 3 ] && grep -q -- "--strict: 1 class folder(s) of train have no row in" "$out/log2b" && ok "--strict refuses class folders missing from labels.txt" || { cat "$out/log2b"; bad "--strict and missing labels row"; }
[ ! -e "$out/strict/metadata.h5" ] && ok "--strict writes no metadata" || bad "--strict wrote metadata"
[ ! -e "$out/strict/train-00000-of-00001.h5" ] && ok "--strict writes no shard holding a bad file" || bad "--strict wrote the bad shard"

# 3. Broken layouts: exit 3 and a message naming the problem and the file.
expect_fail() { # name, expected text, root, extra options
    name=$1 text=$2 r=$3
    shift 3
    "$pack" --root "$r" --output "$out/x_$name" "$@" >"$out/log_$name" 2>&1
    rc=$?
    if [ $rc -eq 3 ] && grep -q -- "$text" "$out/log_$name"; then ok "$name: exit 3, '$text'"
    else cat "$out/log_$name"; bad "$name: exit $rc, wanted 3 and '$text'"; fi
}
mkdir -p "$out/nolabels" && cp -r "$out/root/val" "$out/nolabels/val" && cp -r "$out/root/val" "$out/nolabels/train"
expect_fail missing_labels "labels.txt: cannot open" "$out/nolabels"
mkdir -p "$out/badlabels" && cp -r "$out/nolabels/train" "$out/nolabels/val" "$out/badlabels/"
printf 'n001,fish\nn002,cat,extra\n' >"$out/badlabels/labels.txt"
expect_fail malformed_labels "labels.txt:2: wrong number of fields" "$out/badlabels"
mkdir -p "$out/emptysplit/train" "$out/emptysplit/val/n001"
printf 'n001,fish\n' >"$out/emptysplit/labels.txt"
expect_fail empty_split "train: empty split: no class folders" "$out/emptysplit"
mkdir -p "$out/emptysplit2/train/n001" "$out/emptysplit2/val/n001"
printf 'n001,fish\n' >"$out/emptysplit2/labels.txt"
expect_fail empty_split_no_files "empty split: no image files" "$out/emptysplit2"
mkdir -p "$out/noval/train" && cp -r "$out/root/val/n001" "$out/noval/train/" && printf 'n001,fish\n' >"$out/noval/labels.txt"
expect_fail missing_split "val: split folder missing" "$out/noval"
"$pack" --root "$out/noval" --output "$out/noval_packed" --splits train >/dev/null 2>&1 \
    && ok "--splits train packs a root without val" || bad "--splits train failed"
"$pack" --root "$out/root" --output "$out/x" --splits train,bogus >"$out/log_usage" 2>&1
[ $? -eq 2 ] && grep -q "unknown split 'bogus'" "$out/log_usage" && ok "unknown split: exit 2" || bad "unknown split handling"
"$pack" --output "$out/x" >"$out/log_usage2" 2>&1
[ $? -eq 2 ] && grep -q -- "--root ROOT is required" "$out/log_usage2" && ok "missing --root: exit 2" || bad "missing --root"
"$pack" --help | grep -q "Usage: poa-pack" && ok "--help" || bad "--help"
exit $fail
