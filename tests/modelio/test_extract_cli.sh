#!/bin/sh
# test_extract_cli.sh — poa-extract end to end on a demo-configuration checkpoint with seeded
# weights (ckpt_write_seeded) and on a real poa-train checkpoint (tiny, synthetic data):
#   --help, --version, --list; --all (12 sub-networks, 24 files named vit_<W>x<D>.h5 /
#   .safetensors, progress lines, no temporary file left); --arch, --subnet (repeated, comma
#   lists, duplicates once), --format, a run directory, --from student (the metadata says so);
#   rejected with a message and the README exit code, nothing written: bad --subnet syntax, a
#   size outside the run's elastic grid, a named size the run does not have, bad --format /
#   --from, a missing option (2); a missing, truncated, wrong-version, incomplete (missing
#   dataset) or non-checkpoint file (3); an output that cannot be written (4, the message names
#   the path, no partial or temporary file); two MPI ranks share the work and write the same
#   tensors as one process.
# shellcheck source=tests/lib/testlib.sh
. "$POA_TOP_SRCDIR/tests/lib/testlib.sh"
program_test poa-extract modelio/cli
extract=$prog
seeded_demo_checkpoint

# ------------------------------------------------------------------ help, list
expect help 0 "--subnet WxD" --help
grep -q -- "--arch NAME" "$out/help.log" && grep -q -- "--from WHICH" "$out/help.log" &&
    grep -q -- "--format FMT" "$out/help.log" && grep -q "Exit codes: 0 ok, 2" "$out/help.log" &&
    ok "--help lists the options and the exit codes" || bad "--help incomplete"
expect version 0 "poa-extract" --version
expect list 0 "sub-networks (12): 64x3 64x4 64x5 64x6 96x3 96x4 96x5 96x6 128x3 128x4 128x5 128x6" \
    --checkpoint "$ck" --list
grep -q "named sizes: demo (128x6)" "$out/list.log" && ok "--list: named sizes" || bad "--list named sizes"

# ------------------------------------------------------------------ extraction
expect all 0 "wrote 24 file(s) for 12 sub-network(s)" --checkpoint "$ck" --output "$out/all" --all
want=""
for w in 128 64 96; do for d in 3 4 5 6; do want="$want vit_${w}x$d.h5 vit_${w}x$d.safetensors"; done; done
want=$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$(files "$out/all")" = "$want" ] && ok "--all: the 24 files vit_<W>x<D>.{h5,safetensors}, nothing else" ||
    bad "--all wrote: $(files "$out/all")"
grep -q "^\[12/12\] 128x6 (blocks 0,1,2,3,4,5): .*vit_128x6.h5 [0-9.]* MiB, .*vit_128x6.safetensors" "$out/all.log" &&
    grep -q "^\[1/12\] 64x3 (blocks 0,2,5)" "$out/all.log" && ok "--all: a progress line per sub-network" ||
    bad "--all progress lines"
expect arch 0 "1 sub-network(s)" --checkpoint "$ck" --output "$out/arch" --arch demo --format h5
[ "$(files "$out/arch")" = "vit_128x6.h5 " ] && ok "--arch demo --format h5: vit_128x6.h5 only" ||
    bad "--arch wrote: $(files "$out/arch")"
expect subnets 0 "2 sub-network(s)" --checkpoint "$ck" --output "$out/sub" --subnet 96x4 \
    -s 64x3,64x3 --format safetensors,h5
[ "$(files "$out/sub")" = "vit_64x3.h5 vit_64x3.safetensors vit_96x4.h5 vit_96x4.safetensors " ] &&
    ok "--subnet repeated and as a list, duplicates once" || bad "--subnet wrote: $(files "$out/sub")"
expect rundir 0 "of $out/run/checkpoint_0000399.h5 (teacher weights, iteration 399)" \
    --checkpoint "$out/run" --output "$out/dir" --subnet 64x5 --format safetensors
head -c 65536 "$out/dir/vit_64x5.safetensors" | grep -aq '"source_weights":"teacher"' &&
    head -c 65536 "$out/dir/vit_64x5.safetensors" | grep -aq '"blocks":"0,1,2,3,5"' &&
    ok "safetensors metadata: teacher weights, blocks 0,1,2,3,5" || bad "metadata of vit_64x5"
expect student 0 "(student weights" --checkpoint "$ck" --output "$out/student" --subnet 64x5 \
    --from student --format safetensors
head -c 65536 "$out/student/vit_64x5.safetensors" | grep -aq '"source_weights":"student"' &&
    ! cmp -s "$out/student/vit_64x5.safetensors" "$out/dir/vit_64x5.safetensors" &&
    ok "--from student: other weights, the metadata says so" || bad "--from student file"
expect evalck 0 "1 sub-network(s)" --checkpoint "$eval_ck" --output "$out/eval" --subnet 96x6

# ------------------------------------------------------------------ refused: command line (2)
expect syntax1 2 "--subnet '64x': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet 64x
expect syntax2 2 "--subnet 'abc': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet abc
expect syntax3 2 "--subnet '64\*3': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet '64*3'
expect syntax4 2 "--subnet '0x3': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet 0x3
expect syntax5 2 "--subnet '64x3x2': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet 64x3x2
expect syntax6 2 "--subnet '64xx3': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet 64xx3
expect syntax7 2 "--subnet '+64x3': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet +64x3
expect syntax8 2 "--subnet '99999999999x3': expected WIDTHxDEPTH" --checkpoint "$ck" --output "$out/no" --subnet 99999999999x3
expect width 2 "width 160 is not an elastic width of this model (widths 64, 96, 128; depths 3, 4, 5, 6)" \
    --checkpoint "$ck" --output "$out/no" --subnet 160x3
expect depth 2 "depth 7 is not an elastic depth" --checkpoint "$ck" --output "$out/no" --subnet 64x7
expect small 2 "named sizes of this model: demo (128x6)" --checkpoint "$ck" --output "$out/no" --arch vit_small
expect archname 2 "--arch 'vit_gigantic': not an architecture name" --checkpoint "$ck" --output "$out/no" --arch vit_gigantic
expect format 2 "--format 'onnx': expected h5 or safetensors" --checkpoint "$ck" --output "$out/no" --all --format onnx
expect from 2 "'teachers': the weights are 'teacher' or 'student'" --checkpoint "$ck" --output "$out/no" --all --from teachers
expect nockpt 2 "--checkpoint PATH is required" --output "$out/no" --all
expect noout 2 "--output DIR is required" --checkpoint "$ck" --all
expect nothing 2 "say which sub-networks" --checkpoint "$ck" --output "$out/no"
expect unknown 2 "unknown option" --checkpoint "$ck" --output "$out/no" --al
expect evalstudent 2 "is an evaluation checkpoint (teacher weights only)" --checkpoint "$eval_ck" \
    --output "$out/no" --all --from student
[ ! -e "$out/no" ] && ok "refused runs wrote nothing" || bad "refused runs wrote $out/no"

# ------------------------------------------------------------------ refused: input (3)
mkdir -p "$out/bad"
expect missing 3 "cannot open $out/bad/none.h5: No such file" --checkpoint "$out/bad/none.h5" --output "$out/no" --all
head -c 100000 "$ck" >"$out/bad/truncated.h5"
expect truncated 3 "$out/bad/truncated.h5: truncated: the HDF5 superblock records" --checkpoint "$out/bad/truncated.h5" --output "$out/no" --all
echo "not a model" >"$out/bad/notes.txt"
expect notmodel 3 "neither an HDF5 nor a safetensors file" --checkpoint "$out/bad/notes.txt" --output "$out/no" --all
expect extracted 3 "is an extracted model, not a training checkpoint" --checkpoint "$out/all/vit_64x3.h5" --output "$out/no" --all
if "$py" -c 'import h5py' 2>/dev/null; then
    cp "$ck" "$out/bad/version.h5"
    "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'r+').attrs['format_version']=2" "$out/bad/version.h5"
    expect version2 3 "format version 2 (written by poa" --checkpoint "$out/bad/version.h5" --output "$out/no" --all
    cp "$ck" "$out/bad/nodataset.h5"
    "$py" -c "import h5py,sys; del h5py.File(sys.argv[1],'r+')['teacher/backbone.blocks.2.mlp.fc1.linear.weight']" "$out/bad/nodataset.h5"
    expect nodataset 3 "backbone.blocks.2.mlp.fc1.linear.weight" --checkpoint "$out/bad/nodataset.h5" --output "$out/no" --all
    cp "$ck" "$out/bad/meta.h5"
    "$py" -c "import h5py,sys; h5py.File(sys.argv[1],'r+')['model'].attrs['embed_dim']=256" "$out/bad/meta.h5"
    expect meta 3 "/model attribute 'embed_dim' = 256 does not match" --checkpoint "$out/bad/meta.h5" --output "$out/no" --all
else
    echo "note: $py lacks h5py: the version, dataset and /model corruptions are not checked"
fi
[ ! -e "$out/no" ] && ok "bad inputs wrote nothing" || bad "bad inputs wrote $out/no"

# ------------------------------------------------------------------ cannot write (4)
: >"$out/afile"
expect outfile 4 "$out/afile exists and is not a directory" --checkpoint "$ck" --output "$out/afile" --all
mkdir -p "$out/blocked/vit_64x3.h5"
expect blocked 4 "writing $out/blocked/vit_64x3.h5" --checkpoint "$ck" --output "$out/blocked" --subnet 64x3
[ "$(files "$out/blocked")" = "vit_64x3.h5 " ] && [ -z "$(ls -A "$out/blocked/vit_64x3.h5")" ] &&
    ok "a failed write leaves no partial or temporary file" || bad "after a failed write: $(files "$out/blocked")"

# ------------------------------------------------------------------ ranks
"$mpiexec" -n 2 -x OMP_NUM_THREADS=1 "$extract" --checkpoint "$ck" --output "$out/mpi" --all >"$out/mpi.log" 2>&1
rc=$?
[ $rc -eq 0 ] && [ "$(files "$out/mpi")" = "$want" ] && grep -q "12/12 sub-networks written by the 2 ranks" "$out/mpi.log" &&
    ok "2 ranks: the 24 files, progress over both ranks" || { cat "$out/mpi.log"; bad "2 ranks: exit $rc"; }
if "$py" -c 'import h5py, numpy' 2>/dev/null; then
    "$py" - "$out/all" "$out/mpi" <<'EOF' && ok "2 ranks wrote the same tensors as 1 process" || bad "2 ranks differ from 1"
import glob, os, sys, h5py, numpy as np
for a in sorted(glob.glob(os.path.join(sys.argv[1], "*.h5"))):
    with h5py.File(a, "r") as x, h5py.File(os.path.join(sys.argv[2], os.path.basename(a)), "r") as y:
        assert list(x["state_dict"]) == list(y["state_dict"]), a
        for k in x["state_dict"]:
            assert np.array_equal(x["state_dict"][k][()], y["state_dict"][k][()]), (a, k)
EOF
fi
"$mpiexec" -n 2 -x OMP_NUM_THREADS=1 "$extract" --checkpoint "$ck" --output "$out/mpibad" --subnet 64x9 >"$out/mpibad.log" 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c "depth 9 is not an elastic depth" "$out/mpibad.log")" = 1 ] &&
    ok "2 ranks, a bad size: exit 2, said once" || { cat "$out/mpibad.log"; bad "2 ranks, bad size: exit $rc"; }

# ------------------------------------------------------------------ a real poa-train checkpoint
if "$top_build/src/poa-train" --config "$top_src/configs/tiny.yaml" --synthetic-data --output "$out/train" \
    --max-steps 2 train.batch_size_per_gpu=4 >"$out/train.log" 2>&1; then
    expect trained 0 "wrote 18 file(s) for 9 sub-network(s)" --checkpoint "$out/train" --output "$out/trained" --all
else
    cat "$out/train.log"
    bad "poa-train (tiny, synthetic data) failed"
fi

finish
