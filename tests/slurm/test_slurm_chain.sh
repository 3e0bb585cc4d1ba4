#!/bin/sh
# test_slurm_chain.sh — slurm/pipeline.sh on the real test cluster: Fashion-MNIST (256 images per
# split) packed by 2 MPI ranks (srun --mpi=pmix, 4 + 4 shards), then pretrained with the tiny
# configuration on 2 ranks, as a chain of two jobs (pretrain: --dependency=afterok:<pack>).
# Checks: the job ids and the output table printed and saved, the dependency, both jobs COMPLETED
# in order, the packed folder verified, the run complete (16 iterations, final and evaluation
# checkpoints).  Also: pack.sbatch with its ranks started by mpirun inside the allocation
# (POA_LAUNCH=mpirun) instead of srun --mpi=pmix; a chain whose pack job fails leaves the pretrain
# job waiting forever (DependencyNeverSatisfied) instead of running it; the extract stage
# (extract.sbatch, 2 ranks) after the finished run, and the eval stage (eval.sbatch, 2 ranks)
# after it.
# shellcheck source=tests/slurm/lib.sh
. "$POA_TOP_SRCDIR/tests/slurm/lib.sh"
setup_out chain
pipeline=$top_src/slurm/pipeline.sh
make_root "$out/images" 256

# every job 10 minutes at most; pack: 2 ranks of 1 CPU; pretrain: 1 node, 2 ranks, no GPU
set -- --config "$tiny" --sbatch --time=10 --pack-tasks 2 --pack-args "--shard-images 64" \
    --pack-sbatch --cpus-per-task=1 \
    --pretrain-sbatch --nodes=1 --pretrain-sbatch --ntasks-per-node=2 \
    --pretrain-sbatch --gpus-per-node=0 --pretrain-sbatch --cpus-per-task=1 \
    --set train.batch_size_per_gpu=4 --set train.checkpoint_keep=1
t0=$(date +%s)
bash "$pipeline" --work "$out/work" --images "$out/images" --stages pack,pretrain "$@" >"$out/pipeline.out" 2>&1
rc=$?
cat "$out/pipeline.out"
[ $rc -eq 0 ] && ok "pipeline.sh --stages pack,pretrain: exit 0" || { bad "pipeline.sh exited $rc"; finish; }
pack=$(awk '$1 == "pack" {print $2}' "$out/work/pipeline.jobs")
train=$(awk '$1 == "pretrain" {print $2}' "$out/work/pipeline.jobs")
case "$pack$train" in '' | *[!0-9]*) bad "no job ids in $out/work/pipeline.jobs"; finish ;; esac
grep -q "submitted 2 job(s): $pack $train" "$out/pipeline.out" && ok "job ids printed ($pack, $train)" ||
    bad "job ids not printed"
grep -q "^pretrain *$train *afterok:$pack *$out/work/pretrain *$out/work/logs/pretrain-$train.out" \
    "$out/work/pipeline.jobs" && ok "pipeline.jobs: outputs and logs" || bad "pipeline.jobs rows"
dep=$(job_field "$train" Dependency)
case "$dep" in "afterok:$pack"* | "(null)") ok "pretrain job depends on the pack job ($dep)" ;;
*) bad "pretrain job dependency: $dep" ;; esac

wait_done "$pack" 150 || { bad "the pack job did not finish in 150 s"; dump "$pack"; finish; }
[ "$(job_field "$pack" JobState)" = COMPLETED ] || { bad "pack job: $(job_field "$pack" JobState)"; dump "$pack" "$train"; finish; }
wait_done "$train" 240 || { bad "the pretrain job did not finish in 240 s"; dump "$train"; finish; }
t1=$(date +%s)
for j in "$pack" "$train"; do
    [ "$(job_field "$j" JobState)" = COMPLETED ] && [ "$(job_field "$j" ExitCode)" = 0:0 ] &&
        ok "job $j ($(job_field "$j" JobName)) COMPLETED" ||
        { bad "job $j: $(job_field "$j" JobState), exit $(job_field "$j" ExitCode)"; dump "$j"; }
done
pack_end=$(job_field "$pack" EndTime)
train_start=$(job_field "$train" StartTime)
[ "$(date -d "$pack_end" +%s)" -le "$(date -d "$train_start" +%s)" ] &&
    ok "pretrain started ($train_start) after pack ended ($pack_end)" || bad "pretrain started $train_start, pack ended $pack_end"
log=$out/work/logs/pack-$pack.out
grep -q "512 images packed.*8 shards written.*(2 rank(s)" "$log" && ok "pack: 2 ranks packed 8 shards" ||
    bad "pack log: no '512 images packed ... 8 shards written ... (2 rank(s)'"
grep -q "poa-pack --verify $out/work/packed: OK" "$log" && ok "pack: --verify OK" || bad "pack: no verification"
log=$out/work/logs/pretrain-$train.out
grep -q "poa-train: iterations 0-15 of 16 .*exit 0" "$log" && ok "pretrain: 16 iterations, exit 0" ||
    bad "pretrain log: no 'iterations 0-15 of 16 ... exit 0'"
[ -f "$out/work/pretrain/checkpoint_0000015.h5" ] && [ -f "$out/work/pretrain/eval/training_15/teacher_checkpoint.h5" ] &&
    [ "$(wc -l <"$out/work/pretrain/training_metrics.json")" = 16 ] &&
    ok "pretrain: final checkpoint, teacher checkpoint and 16 metric records" || bad "pretrain outputs"
echo "chain: pack + pretrain took $((t1 - t0)) s from submission to the end (load $(cut -d' ' -f1-3 /proc/loadavg))"

# The extract stage after the finished run (pretrain taken as done): 2 ranks of extract.sbatch
# write every sub-network of the tiny run (3 widths x 3 depths, both formats).
bash "$pipeline" --work "$out/work" --config "$tiny" --stages extract --sbatch --time=10 \
    --extract-sbatch --ntasks=2 --extract-sbatch --cpus-per-task=1 >"$out/extract.out" 2>&1
rc=$?
x=$(awk '$1 == "extract" {print $2}' "$out/work/pipeline.jobs" 2>/dev/null)
if [ $rc -eq 0 ] && [ -n "$x" ] && wait_done "$x" 120 && [ "$(job_field "$x" JobState)" = COMPLETED ] &&
    grep -q "poa-extract: wrote 18 file(s) for 9 sub-network(s) to $out/work/extract" "$out/work/logs/extract-$x.out" &&
    grep -q "9/9 sub-networks written by the 2 ranks" "$out/work/logs/extract-$x.out" &&
    [ "$(find "$out/work/extract" -mindepth 1 -maxdepth 1 -name 'vit_*' | sed 's|.*/||' |
        grep -c '^vit_[0-9]*x[0-9]*\.\(h5\|safetensors\)$')" = 18 ]; then
    ok "extract stage: job $x, 2 ranks wrote the 18 files of the run's 9 sub-networks"
else
    cat "$out/extract.out"
    bad "extract stage (pipeline.sh exit $rc, job ${x:-none})"
    [ -n "$x" ] && dump "$x"
fi

# The eval stage after the extract stage: 2 ranks of eval.sbatch run poa-eval-knn on the run's
# teacher, the 9 extracted sub-networks and the raw pixels, on the packed train and val splits.
bash "$pipeline" --work "$out/work" --config "$tiny" --stages eval --sbatch --time=10 \
    --eval-sbatch --ntasks=2 --eval-sbatch --cpus-per-task=1 --eval-args "--k 5 --pixels" \
    >"$out/eval.out" 2>&1
rc=$?
e=$(awk '$1 == "eval" {print $2}' "$out/work/pipeline.jobs" 2>/dev/null)
[ -n "$e" ] && wait_done "$e" 180
nets=$("$py" -c '
import json, sys
print(len({json.loads(l)["network"] for l in open(sys.argv[1]) if l.strip()}))' \
    "$out/work/eval/knn/results_eval_knn.json" 2>/dev/null)
if [ $rc -eq 0 ] && [ -n "$e" ] && [ "$(job_field "$e" JobState)" = COMPLETED ] && [ "${nets:-0}" = 11 ] &&
    grep -q '"network": "pixels"' "$out/work/eval/knn/results_eval_knn.json"; then
    ok "eval stage: job $e, 2 ranks: k-NN of the teacher, the 9 extracted sub-networks and the pixels"
else
    cat "$out/eval.out"
    bad "eval stage (pipeline.sh exit $rc, job ${e:-none}, ${nets:-no} networks in the results)"
    [ -n "$e" ] && dump "$e"
fi

# mpirun inside the allocation instead of srun --mpi=pmix (POA_LAUNCH=mpirun): 2 ranks pack.
j=$(IMAGENET=$out/images PACKED=$out/packed-mpirun PACK_ARGS="--shard-images 64" POA_LAUNCH=mpirun \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 sbatch --parsable --ntasks=2 \
    --cpus-per-task=1 --time=10 --output="$out/logs/pack-mpirun-%j.out" "$top_src/slurm/pack.sbatch")
if wait_done "$j" 120 && [ "$(job_field "$j" JobState)" = COMPLETED ] &&
    grep -q "512 images packed.*8 shards written.*(2 rank(s)" "$out/logs/pack-mpirun-$j.out" &&
    grep -q "poa-pack --verify $out/packed-mpirun: OK" "$out/logs/pack-mpirun-$j.out"; then
    ok "POA_LAUNCH=mpirun: 2 ranks started by mpirun inside the allocation packed and verified"
else
    bad "POA_LAUNCH=mpirun pack job $j"
    dump "$j"
fi

# A failing stage stops the chain: the pack job fails (no train folder), pretrain never starts.
mkdir -p "$out/broken"
cp "$out/images/labels.txt" "$out/broken/"
bash "$pipeline" --work "$out/work-broken" --images "$out/broken" --stages pack,pretrain "$@" >"$out/broken.out" 2>&1 ||
    { cat "$out/broken.out"; bad "pipeline.sh (broken input) refused to submit"; finish; }
pack=$(awk '$1 == "pack" {print $2}' "$out/work-broken/pipeline.jobs")
train=$(awk '$1 == "pretrain" {print $2}' "$out/work-broken/pipeline.jobs")
wait_done "$pack" 120 || { bad "broken pack job did not end"; dump "$pack"; }
i=0
while [ "$(job_field "$train" Reason)" != DependencyNeverSatisfied ] && [ $i -lt 40 ]; do
    sleep 0.25
    i=$((i + 1))
done
[ "$(job_field "$pack" JobState)" = FAILED ] && [ "$(job_field "$pack" ExitCode)" = 3:0 ] &&
    grep -q "poa-pack failed with exit code 3" "$out/work-broken/logs/pack-$pack.out" &&
    ok "broken input: pack job FAILED with exit 3, its log says why" || { bad "broken pack job"; dump "$pack"; }
[ "$(job_field "$train" JobState)" = PENDING ] && [ "$(job_field "$train" Reason)" = DependencyNeverSatisfied ] &&
    ok "broken input: the pretrain job never starts (DependencyNeverSatisfied)" ||
    { bad "pretrain job after a failed pack: $(job_field "$train" JobState) $(job_field "$train" Reason)"; dump "$train"; }
scancel "$train"
finish
