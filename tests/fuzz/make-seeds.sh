#!/bin/sh
# make-seeds.sh — (re)generate the seed corpora tests/fuzz/corpus/<target>/ of the fuzz targets.
#   sh tests/fuzz/make-seeds.sh BUILD_DIR [TARGET...]   (a configured and built tree: make check
#                                                        once; default: every target)
# HDF5 and JPEG seeds come from poa's own writers (tests/fuzz/fuzz_seeds.c), a few more JPEG
# variants (progressive, CMYK, restart markers) from PIL, the configuration seeds from configs/,
# the extracted models from poa-extract run on a seeded checkpoint of a tiny model
# (tests/modelio/ckpt_write_seeded), the rest is written here.  Every seed is a few KB to a few
# tens of KB.
set -eu
build=$(cd "$1" && pwd)
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
corpus=$src/tests/fuzz/corpus
py=${POA_PYTHON_REF:-/usr/bin/python3}
targets=${*:-config cli jpeg labels shard metadata checkpoint extracted_h5 extracted_st}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
want() { case " $targets " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for t in $targets; do
    rm -rf "${corpus:?}/$t"
    mkdir -p "$corpus/$t"
done
"$build/tests/fuzz/fuzz_seeds" "$tmp"

if want jpeg; then
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
fi

if want shard; then cp "$tmp/shard/train.h5" "$tmp/shard/test.h5" "$corpus/shard/"; fi
if want metadata; then cp "$tmp/metadata/metadata.h5" "$corpus/metadata/"; fi
if want checkpoint; then
    cp "$tmp/checkpoint/checkpoint_0000007.h5" "$corpus/checkpoint/full.h5"
    cp "$tmp/checkpoint/eval/training_7/teacher_checkpoint.h5" "$corpus/checkpoint/teacher.h5"
fi

# extracted models: the sub-networks 8x1 and 8x2 of a tiny run (widths 8 and 16 with heads of 8,
# depths 1 and 2, patch 4 on 8x8 images, small heads), as poa-extract writes them
if want extracted_h5 || want extracted_st; then
    "$build/tests/modelio/ckpt_write_seeded" "$tmp/run" "$src/configs/tiny.yaml" 5 3 \
        student.min_embed_dim=8 student.max_embed_dim=16 student.head_dim=8 student.min_depth=1 \
        student.max_depth=2 student.patch_size=4 crops.global_crops_size=8 crops.local_crops_size=4 \
        'dino.head_n_prototypes=[8,8]' 'ibot.head_n_prototypes=[8,8]' dino.head_hidden_dim=8 \
        dino.head_bottleneck_dim=8 ibot.head_hidden_dim=8 ibot.head_bottleneck_dim=8 >/dev/null
    "$build/src/poa-extract" --checkpoint "$tmp/run" --output "$tmp/x" --subnet 8x1,8x2 >/dev/null
    if want extracted_h5; then cp "$tmp/x/vit_8x1.h5" "$corpus/extracted_h5/"; fi
    if want extracted_st; then
        cp "$tmp/x/vit_8x1.safetensors" "$tmp/x/vit_8x2.safetensors" "$corpus/extracted_st/"
    fi
fi

if want config; then
    # config: byte 0 even = a YAML document, odd = key=value lines (tests/fuzz/fuzz_config.c)
    { printf '\000'; cat "$src/configs/tiny.yaml"; } >"$corpus/config/tiny.yaml"
    { printf '\000'; cat "$src/configs/demo.yaml"; } >"$corpus/config/demo.yaml"
    printf '\000optim:\n  epochs: 2\n  base_lr: 1.0e-3\ncrops:\n  global_crops_scale: [0.4, 1.0]\n' \
        >"$corpus/config/flow.yaml"
    printf '\001student.arch=vit_small\noptim.epochs=3\ncrops.local_crops_number=2\n' \
        >"$corpus/config/overrides.txt"
    printf '\003crops.global_crops_scale=[0.3,1]\ntrain.output_dir=a path with spaces\nibot.mask_ratio_min_max=0.1,0.5\n' \
        >"$corpus/config/overrides-lists.txt"
fi

if want cli; then
    # cli: byte 0 even = a poa-train-like table, odd = a poa-pack-like one; NUL-separated arguments
    printf '\000--data\000d\000-o\000out\000--max-steps=3\000optim.epochs=2\000--\000train.seed=1' \
        >"$corpus/cli/train.argv"
    printf '\000--config=a.yaml\000-n\000--ranks\0008\000--scale\0000.5\000--no-resume' \
        >"$corpus/cli/train-options.argv"
    printf '\001--root\000r\000-j\0002\000--verify\000a.h5\000b.h5' >"$corpus/cli/pack.argv"
fi

if want labels; then
    printf 'n01440764,tench\nn01443537,"goldfish, Carassius auratus"\n' >"$corpus/labels/labels.txt"
    printf '\357\273\277n1,"say ""hi"""\r\n\r\nn2,two\r\n' >"$corpus/labels/bom-crlf.txt"
fi
for t in $targets; do ls -l "$corpus/$t"; done
