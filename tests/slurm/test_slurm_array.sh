#!/bin/sh
# test_slurm_array.sh — the pack stage as a job array on the real test cluster:
# slurm/pipeline.sh --stages pack --pack-mode array --pack-tasks 3 packs Fashion-MNIST (128
# images per split, 32 per shard: 4 + 4 shards) with 3 array tasks of slurm/pack.sbatch
# (poa-pack --shard-range auto), then one job (afterok on the array) that keeps the shards,
# writes metadata.h5 if no task did, and verifies.  Checks: every task COMPLETED and packed only
# its share (8 shards in all, each task at least one), the final job kept all 8 and verified, and
# the shards are identical to the ones a single poa-pack process writes.  Resuming: after one
# shard is deleted, the same chain submitted again rewrites exactly that shard.
# shellcheck source=tests/slurm/lib.sh
. "$POA_TOP_SRCDIR/tests/slurm/lib.sh"
setup_out array
make_root "$out/images" 128
"$bin/poa-pack" --root "$out/images" --output "$out/direct" --shard-images 32 -j 1 >"$out/direct.log" 2>&1 ||
    { cat "$out/direct.log"; echo "FAIL: poa-pack (single process)"; exit 1; }

# chain NAME: submit the array chain into $out/work, wait for it; sets $array and $final
chain() {
    bash "$top_src/slurm/pipeline.sh" --work "$out/work" --images "$out/images" --stages pack \
        --pack-mode array --pack-tasks 3 --pack-args "--shard-images 32" --pack-sbatch --cpus-per-task=1 \
        --sbatch --time=10 >"$out/$1.out" 2>&1 || { cat "$out/$1.out"; bad "$1: pipeline.sh refused"; finish; }
    array=$(awk '$1 == "pack-array" {print $2}' "$out/work/pipeline.jobs")
    final=$(awk '$1 == "pack" {print $2}' "$out/work/pipeline.jobs")
    grep -q "^pack *$final *afterok:$array " "$out/work/pipeline.jobs" &&
        ok "$1: array job $array (3 tasks), then job $final (afterok:$array)" || bad "$1: pipeline.jobs rows"
    wait_done "$final" 180 || { bad "$1: the chain did not finish in 180 s"; dump "$array" "$final"; finish; }
    states=$(scontrol show job -o "$array" | tr ' ' '\n' | sed -n 's/^JobState=//p' | sort | uniq -c | xargs)
    [ "$states" = "3 COMPLETED" ] && ok "$1: the 3 array tasks COMPLETED" || { bad "$1: array tasks: $states"; dump "$array"; }
    [ "$(job_field "$final" JobState)" = COMPLETED ] && ok "$1: job $final COMPLETED" || { bad "$1: job $final"; dump "$final"; }
}

# written LOG: the number of shards a poa-pack run wrote
written() { sed -n 's/.* \([0-9]*\) shards written.*/\1/p' "$1" | tail -1; }

chain first
total=0
for t in 0 1 2; do
    log=$out/work/logs/pack-array-${array}_$t.out
    n=$(written "$log")
    grep -q "poa-pack --verify .*: OK" "$log" && bad "array task $t verified (only the final job should)"
    [ -n "$n" ] && [ "$n" -ge 1 ] && ok "array task $t wrote $n shard(s)" || bad "array task $t wrote '${n}' shards"
    total=$((total + ${n:-0}))
done
[ $total = 8 ] && ok "the tasks wrote the 8 shards between them" || bad "the tasks wrote $total shards (want 8)"
log=$out/work/logs/pack-$final.out
grep -q "0 shards written, 8 kept from an earlier run" "$log" && ok "final job: 8 shards kept, none rewritten" ||
    bad "final job did not keep the 8 shards"
grep -q "poa-pack --verify $out/work/packed: OK" "$log" && ok "final job: --verify OK" || bad "final job: no verification"
"$py" - "$out/direct" "$out/work/packed" <<'EOF' && ok "shards identical to a single poa-pack process's" || bad "shards differ"
import glob, os, sys
import h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
names = sorted(os.path.basename(p) for p in glob.glob(a + "/*-of-*.h5"))
assert names == sorted(os.path.basename(p) for p in glob.glob(b + "/*-of-*.h5")), "shard names differ"
for n in names:
    fa, fb = h5py.File(os.path.join(a, n), "r"), h5py.File(os.path.join(b, n), "r")
    for k in fa:
        assert np.array_equal(fa[k][()], fb[k][()]), n + ": " + k
    for k in fa.attrs:
        if k != "created_by":
            assert fa.attrs[k] == fb.attrs[k], n + ": @" + k
print("compared %d shards" % len(names))
EOF

# Resume: delete one shard; the same chain rewrites it and keeps the 7 others.
rm "$out/work/packed/train-00001-of-00004.h5"
chain resubmitted
total=0
for t in 0 1 2; do
    total=$((total + $(written "$out/work/logs/pack-array-${array}_$t.out")))
done
[ $total = 1 ] && ok "resubmitted: the tasks rewrote the 1 missing shard" || bad "resubmitted: $total shards written (want 1)"
grep -q "poa-pack --verify $out/work/packed: OK" "$out/work/logs/pack-$final.out" &&
    ok "resubmitted: --verify OK" || bad "resubmitted: no verification"
finish
