#!/bin/sh
# make-seeds.sh — (re)generate the seed corpora tests/fuzz/corpus/<target>/ of the fuzz targets.
#   sh tests/fuzz/make-seeds.sh BUILD_DIR      (a configured and built tree: make check once)
# HDF5 and JPEG seeds come from poa's own writers (tests/fuzz/fuzz_seeds.c), a few more JPEG
# variants (progressive, CMYK, restart markers) from PIL, the configuration seeds from configs/,
# the rest is written here.  Every seed is a few KB at most.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
py=${POA_PYTHON_REF:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/tests/fuzz/fuzz_seeds" "$tmp"
for t in config cli jpeg labels shard metadata checkpoint; do
    rm -rf "${corpus:?}/$t"
    mkdir -p "$corpus/$t"
done

cp "$tmp"/jpeg/*.jpg "$corpus/jpeg/"
"$py" - "$corpus/jpeg" <<'PY'
import sys, io
from PIL import Image
out = sys.argv[1]
img = Image.new("RGB", (24, 16))
img.putdata([((x * 11) % 256, (y * 23) % 256, ((x + y) * 7) % 256) for y in range(16) for x in range(24)])
img.save(f"{out}/progressive.jpg", quality=70, progressive=True)
img.convert("L").save(f"{out}/progressive-gray.jpg", quality=70, progressive=True)
img.convert("CMYK").save(f"{out}/cmyk.jpg", quality=70)
# restart markers and an EXIF segment
img.save(f"{out}/restart.jpg", quality=60, restart_marker_blocks=1, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00")
PY

cp "$tmp/shard/train.h5" "$tmp/shard/test.h5" "$corpus/shard/"
cp "$tmp/metadata/metadata.h5" "$corpus/metadata/"
cp "$tmp/checkpoint/checkpoint_0000007.h5" "$corpus/checkpoint/full.h5"
cp "$tmp/checkpoint/eval/training_7/teacher_checkpoint.h5" "$corpus/checkpoint/teacher.h5"

# config: byte 0 even = a YAML document, odd = key=value lines (tests/fuzz/fuzz_config.c)
{ printf '\000'; cat "$src/configs/tiny.yaml"; } >"$corpus/config/tiny.yaml"
{ printf '\000'; cat "$src/configs/demo.yaml"; } >"$corpus/config/demo.yaml"
printf '\000optim:\n  epochs: 2\n  base_lr: 1.0e-3\ncrops:\n  global_crops_scale: [0.4, 1.0]\n' \
    >"$corpus/config/flow.yaml"
printf '\001student.arch=vit_small\noptim.epochs=3\ncrops.local_crops_number=2\n' \
    >"$corpus/config/overrides.txt"
printf '\003crops.global_crops_scale=[0.3,1]\ntrain.output_dir=a path with spaces\nibot.mask_ratio_min_max=0.1,0.5\n' \
    >"$corpus/config/overrides-lists.txt"

# cli: byte 0 even = a poa-train-like table, odd = a poa-pack-like one; NUL-separated arguments
printf '\000--data\000d\000-o\000out\000--max-steps=3\000optim.epochs=2\000--\000train.seed=1' \
    >"$corpus/cli/train.argv"
printf '\000--config=a.yaml\000-n\000--ranks\0008\000--scale\0000.5\000--no-resume' \
    >"$corpus/cli/train-options.argv"
printf '\001--root\000r\000-j\0002\000--verify\000a.h5\000b.h5' >"$corpus/cli/pack.argv"

# labels.txt
printf 'n01440764,tench\nn01443537,"goldfish, Carassius auratus"\n' >"$corpus/labels/labels.txt"
printf '\357\273\277n1,"say ""hi"""\r\n\r\nn2,two\r\n' >"$corpus/labels/bom-crlf.txt"
ls -l "$corpus"/*
