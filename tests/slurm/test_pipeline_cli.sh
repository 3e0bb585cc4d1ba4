#!/bin/sh
# test_pipeline_cli.sh — slurm/pipeline.sh without a Slurm cluster: its --dry-run chains (mpi and
# array packing, the four stages with stand-ins for the stage scripts that do not exist yet), the
# submission itself with a stand-in sbatch (job ids, dependencies, environment, pipeline.jobs,
# the logs folder), the cancellation of the jobs already submitted when sbatch refuses one, and
# its refusals with exit 2 (bad options, missing stage script, program or input, a configuration
# that poa-config rejects) before anything is submitted.  The real cluster runs are
# test_slurm_chain.sh and test_slurm_array.sh (make check-slurm).
set -u
top_src=$(cd "${POA_TOP_SRCDIR:?run through make check}" && pwd)
top_build=${POA_TOP_BUILDDIR:?run through make check}
out=$top_build/tests/out/slurm/pipeline-cli
rm -rf "$out" && mkdir -p "$out/bin" "$out/fake" "$out/images" "$out/slurm"
fail=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fail=1; }

# Stand-in programs (the pipeline only checks that they exist), the real poa-config if built.
for p in poa-pack poa-train poa-extract poa-eval-knn poa-eval-linear; do
    printf '#!/bin/sh\nexit 0\n' >"$out/bin/$p"
    chmod +x "$out/bin/$p"
done
for d in "$top_build/tools" "$top_build"; do
    [ -x "$d/poa-config" ] && { ln -sf "$d/poa-config" "$out/bin/poa-config"; break; }
done
echo "n0,zero" >"$out/images/labels.txt"
export POA_BIN=$out/bin
# A copy of slurm/ with stand-ins for the stage scripts that do not exist yet.
cp "$top_src/slurm/"* "$out/slurm/"
for s in extract eval; do
    [ -f "$out/slurm/$s.sbatch" ] || printf '#!/bin/bash\n# stand-in\n' >"$out/slurm/$s.sbatch"
done
pipe() { bash "$top_src/slurm/pipeline.sh" "$@" 2>&1; }
tiny=$top_src/configs/tiny.yaml
base="--work $out/work --images $out/images --config $tiny"

# ------------------------------------------------------------------ dry runs
o=$(pipe $base --stages pack,pretrain --pack-tasks 2 --set optim.epochs=2 --pretrain-sbatch --nodes=1 --dry-run)
rc=$?
[ $rc -eq 0 ] && [ "$(echo "$o" | grep -c '^JOB_')" = 2 ] && ok "dry run pack,pretrain: 2 sbatch lines" ||
    { echo "$o"; bad "dry run pack,pretrain (exit $rc)"; }
echo "$o" | grep -q "^JOB_pack=\$(POA_BIN=$out/bin IMAGENET=$out/images PACKED=$out/work/packed PACK_ARGS='' sbatch --parsable --job-name=poa-pack --output=$out/work/logs/pack-%j.out --open-mode=append --ntasks=2 $top_src/slurm/pack.sbatch)" &&
    ok "dry run: the pack job (mpi, 2 ranks)" || { echo "$o"; bad "dry run: pack line"; }
echo "$o" | grep -q "^JOB_pretrain=.* PACKED=$out/work/packed OUTPUT=$out/work/pretrain CONFIG=$tiny sbatch .*--dependency=afterok:\$JOB_pack --nodes=1 $top_src/slurm/pretrain.sbatch optim.epochs=2)" &&
    ok "dry run: pretrain after pack (afterok), overrides passed on" || { echo "$o"; bad "dry run: pretrain line"; }
[ ! -e "$out/work" ] && ok "dry run: nothing written" || bad "dry run wrote $out/work"

o=$(pipe $base --stages pack --pack-mode array --pack-tasks 3 --pack-args "--shard-images 32" --dry-run)
echo "$o" | grep -q "^JOB_pack_array=.*PACK_ARGS=--shard-images\\\\ 32 sbatch .*--array=0-2 --ntasks=1 .*pack.sbatch)" &&
    echo "$o" | grep -q "^JOB_pack=.*--dependency=afterok:\$JOB_pack_array --ntasks=1 .*pack.sbatch)" &&
    ok "dry run --pack-mode array: array of 3, then the verifying job" || { echo "$o"; bad "dry run array"; }

o=$(bash "$out/slurm/pipeline.sh" $base --dry-run 2>&1)
echo "$o" | grep -q "^JOB_extract=.* RUN=$out/work/pretrain CONFIG=$tiny OUTPUT=$out/work/extract EXTRACT_ARGS='' sbatch .*--dependency=afterok:\$JOB_pretrain $out/slurm/extract.sbatch)" &&
    echo "$o" | grep -q "^JOB_eval=.* RUN=$out/work/pretrain EXTRACTED=$out/work/extract PACKED=$out/work/packed OUTPUT=$out/work/eval EVAL_ARGS='' sbatch .*--dependency=afterok:\$JOB_extract $out/slurm/eval.sbatch)" &&
    ok "dry run of the four stages (stand-in scripts): extract after pretrain, eval after extract" ||
    { echo "$o"; bad "dry run of the four stages"; }

# ------------------------------------------------------------------ submission (stand-in sbatch)
cat >"$out/fake/sbatch" <<EOF
#!/bin/sh
n=\$(cat "$out/fake/count" 2>/dev/null || echo 100)
n=\$((n + 1))
echo \$n >"$out/fake/count"
[ -n "\${FAIL_AT:-}" ] && [ "\$n" = "\$FAIL_AT" ] && { echo "sbatch: error: Batch job submission failed: Invalid partition" >&2; exit 1; }
echo "\$n PACKED=\${PACKED:-} OUTPUT=\${OUTPUT:-} \$*" >>"$out/fake/calls"
echo "\$n"
EOF
printf '#!/bin/sh\necho "$*" >>"%s/fake/cancelled"\n' "$out" >"$out/fake/scancel"
chmod +x "$out/fake/sbatch" "$out/fake/scancel"
o=$(PATH=$out/fake:$PATH pipe $base --stages pack,pretrain)
rc=$?
[ $rc -eq 0 ] && echo "$o" | grep -q "submitted 2 job(s): 101 102" && ok "submission: job ids printed" ||
    { echo "$o"; bad "submission (exit $rc)"; }
grep -q "^102 PACKED=$out/work/packed OUTPUT=$out/work/pretrain .*--dependency=afterok:101 .*pretrain.sbatch" "$out/fake/calls" &&
    ok "submission: pretrain got afterok:101 and its environment" || { cat "$out/fake/calls"; bad "submission: pretrain call"; }
grep -q "^pretrain *102 *afterok:101 *$out/work/pretrain *$out/work/logs/pretrain-102.out" "$out/work/pipeline.jobs" &&
    [ -d "$out/work/logs" ] && ok "submission: pipeline.jobs written, logs folder made" || bad "submission: pipeline.jobs"
o=$(PATH=$out/fake:$PATH FAIL_AT=104 pipe --work "$out/work2" --images "$out/images" --config "$tiny" --stages pack,pretrain)
rc=$?
[ $rc -eq 1 ] && echo "$o" | grep -q "sbatch refused the pretrain job: sbatch: error: .*Invalid partition" &&
    [ "$(cat "$out/fake/cancelled" 2>/dev/null)" = 103 ] && ok "sbatch refusal: exit 1, the pack job 103 cancelled" ||
    { echo "$o"; bad "sbatch refusal (exit $rc)"; }

# ------------------------------------------------------------------ refusals (exit 2)
refuse() { # WHAT TEXT ARGS...
    what=$1 text=$2
    shift 2
    o=$(PATH=$out/fake:$PATH pipe "$@")
    rc=$?
    if [ $rc -eq 2 ] && echo "$o" | grep -q -- "$text"; then ok "refused, exit 2: $what"; else
        echo "$o"
        bad "$what: exit $rc"
    fi
}
before=$(cat "$out/fake/count")
refuse "unknown option" "unknown option '--frobnicate'" $base --frobnicate
refuse "no --work" "--work DIR is required" --images "$out/images"
refuse "stages out of order" "'pack' repeated or out of order" $base --stages pretrain,pack
refuse "unknown stage" "unknown stage 'train'" $base --stages pack,train
refuse "pack without --images" "needs --images ROOT" --work "$out/work" --stages pack
refuse "images without labels.txt" "no labels.txt there" --work "$out/work" --images "$out" --stages pack
refuse "bad --pack-mode" "wants mpi or array" $base --stages pack --pack-mode threads
refuse "bad --pack-tasks" "wants a positive integer" $base --stages pack --pack-tasks 0
refuse "bad --after" "--after wants a job id" $base --stages pack --after 12a
refuse "pretrain without packed data" "metadata.h5 does not exist" --work "$out/none" --config "$tiny" --stages pretrain
o=$(env POA_BIN="$out/nobin" bash "$top_src/slurm/pipeline.sh" $base --stages pack 2>&1)
rc=$?
[ $rc -eq 2 ] && echo "$o" | grep -q "needs $out/nobin/poa-pack, which is not there" &&
    ok "refused, exit 2: missing program" || { echo "$o"; bad "missing program: exit $rc"; }
if [ -x "$out/bin/poa-config" ]; then
    refuse "configuration rejected by poa-config" "optim.epochs = 0 is out of range" $base --stages pack,pretrain --set optim.epochs=0
fi
[ "$(cat "$out/fake/count")" = "$before" ] && ok "refusals submitted nothing" || bad "a refused chain submitted jobs"
[ $fail -eq 0 ] && echo "all checks passed" || echo "some checks FAILED"
exit $fail
