#!/bin/sh
# test_sbatch_paths.sh — slurm/*.sbatch find the poa programs next to the submitted script even
# though sbatch runs a spooled copy of it (the copy's $0 is in slurmd's spool directory): they
# ask Slurm for the submitted path (scontrol show job: Command=).  Fake scontrol and srun on
# PATH stand in for Slurm; srun prints the command it would run.  Also: run by hand ($0 is the
# script itself), and a clear error with exit code 2 when the programs are not there; the
# command lines extract.sbatch builds from RUN, OUTPUT and EXTRACT_ARGS and eval.sbatch from RUN,
# EXTRACTED, PACKED, OUTPUT and EVAL_ARGS (and, with LINEAR=1, LINEAR_ARGS).
set -u
top_src=${POA_TOP_SRCDIR:?run through make check}
work=${POA_TOP_BUILDDIR:?run through make check}/tests/out/slurm/paths
rm -rf "$work" && mkdir -p "$work/fake" "$work/install/bin" "$work/install/slurm" "$work/spool"
fail=0
expect() { if [ "$2" -ne 0 ]; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

cat >"$work/fake/scontrol" <<EOS
#!/bin/sh
[ "\$1 \$2 \$3" = "show job 4242" ] || exit 1
echo "JobId=4242 JobName=poa"
echo "   Command=$work/install/slurm/\$SCRIPT"
echo "   WorkDir=/tmp"
EOS
printf '#!/bin/sh\necho "srun $*"\n' >"$work/fake/srun"
printf '#!/bin/sh\nexit 0\n' >"$work/install/bin/poa-pack"
cp "$work/install/bin/poa-pack" "$work/install/bin/poa-train"
cp "$work/install/bin/poa-pack" "$work/install/bin/poa-extract"
cp "$work/install/bin/poa-pack" "$work/install/bin/poa-eval-knn"
chmod +x "$work/fake/scontrol" "$work/fake/srun" "$work/install/bin/"*
for s in pack pretrain extract eval; do
    cp "$top_src/slurm/$s.sbatch" "$work/install/slurm/" && cp "$top_src/slurm/$s.sbatch" "$work/spool/slurm_script"
    prog=poa-$s; [ $s = pretrain ] && prog=poa-train; [ $s = eval ] && prog=poa-eval-knn
    run() { env PATH="$work/fake:$PATH" SCRIPT=$s.sbatch IMAGENET=/in PACKED=/packed RUN=/run OUTPUT=/out "$@" 2>&1; }
    out=$(run SLURM_JOB_ID=4242 bash "$work/spool/slurm_script"); rc=$?
    echo "$out" | grep -q "^srun .*$work/install/slurm/../bin/$prog "
    expect "$s.sbatch under sbatch (spooled copy) runs $work/install/bin/$prog (rc $rc)" $?
    out=$(run bash "$work/install/slurm/$s.sbatch"); rc=$?
    echo "$out" | grep -q "^srun .*$work/install/slurm/../bin/$prog "
    expect "$s.sbatch run by hand finds its own ../bin (rc $rc)" $?
    out=$(run bash "$work/spool/slurm_script"); rc=$?
    echo "$out" | grep -q "no $prog in $work/spool/../bin (set POA_BIN)"
    expect "$s.sbatch without the programs: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ]; echo $?)"
done
# extract.sbatch: RUN and OUTPUT become --checkpoint and --output, EXTRACT_ARGS (default --all)
# follow; without RUN it stops with exit 2.
x() { env PATH="$work/fake:$PATH" SCRIPT=extract.sbatch OUTPUT=/out "$@" bash "$work/install/slurm/extract.sbatch" 2>&1; }
x RUN=/run | grep -q "^srun --mpi=pmix $work/install/slurm/../bin/poa-extract --checkpoint /run --output /out --all$"
expect "extract.sbatch: poa-extract --checkpoint RUN --output OUTPUT --all by default" $?
x RUN=/run EXTRACT_ARGS="--arch vit_small,vit_base --format safetensors" |
    grep -q "poa-extract --checkpoint /run --output /out --arch vit_small,vit_base --format safetensors$"
expect "extract.sbatch: EXTRACT_ARGS passed on" $?
out=$(x); rc=$?
echo "$out" | grep -q "set RUN to the pretraining run directory"
expect "extract.sbatch without RUN: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ] && echo "$out" | grep -q RUN; echo $?)"
# eval.sbatch: RUN and every extracted sub-network (its .safetensors, else its .h5) become
# --checkpoint options, PACKED --data, OUTPUT/knn --output, EVAL_ARGS follow; without PACKED, or
# with nothing to evaluate, it stops with exit 2.
mkdir -p "$work/ext"
: >"$work/ext/vit_64x3.h5"; : >"$work/ext/vit_64x3.safetensors"; : >"$work/ext/vit_96x4.h5"
e() { env PATH="$work/fake:$PATH" SCRIPT=eval.sbatch OUTPUT=/out "$@" bash "$work/install/slurm/eval.sbatch" 2>&1; }
e RUN=/run EXTRACTED="$work/ext" PACKED=/packed EVAL_ARGS="--pixels --k 20" |
    grep -q "^srun --mpi=pmix $work/install/slurm/../bin/poa-eval-knn --checkpoint /run --checkpoint $work/ext/vit_64x3.safetensors --checkpoint $work/ext/vit_96x4.h5 --data /packed --output /out/knn --pixels --k 20$"
expect "eval.sbatch: the run and each extracted sub-network once (safetensors first), EVAL_ARGS passed on" $?
e RUN=/run PACKED=/packed | grep -q "poa-eval-knn --checkpoint /run --data /packed --output /out/knn$"
expect "eval.sbatch: without EXTRACTED, the run alone" $?
out=$(e RUN=/run); rc=$?
expect "eval.sbatch without PACKED: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ] && echo "$out" | grep -q PACKED; echo $?)"
out=$(e PACKED=/packed EXTRACTED="$work/none"); rc=$?
expect "eval.sbatch with nothing to evaluate: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ] && echo "$out" | grep -q "nothing to evaluate"; echo $?)"
# LINEAR=1: then poa-eval-linear on the same models into OUTPUT/linear, LINEAR_ARGS following;
# without the program, or with another LINEAR value, exit 2; LINEAR unset: the k-NN only.
out=$(e RUN=/run EXTRACTED="$work/ext" PACKED=/packed LINEAR=1); rc=$?
echo "$out" | grep -q "no poa-eval-linear in"
expect "eval.sbatch LINEAR=1 without poa-eval-linear: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ]; echo $?)"
cp "$work/install/bin/poa-pack" "$work/install/bin/poa-eval-linear"
out=$(e RUN=/run EXTRACTED="$work/ext" PACKED=/packed LINEAR=1 LINEAR_ARGS="--pixels --epochs 2"); rc=$?
echo "$out" | grep -q "^srun --mpi=pmix $work/install/slurm/../bin/poa-eval-knn --checkpoint /run --checkpoint $work/ext/vit_64x3.safetensors --checkpoint $work/ext/vit_96x4.h5 --data /packed --output /out/knn$" &&
    echo "$out" | grep -q "^srun --mpi=pmix $work/install/slurm/../bin/poa-eval-linear --checkpoint /run --checkpoint $work/ext/vit_64x3.safetensors --checkpoint $work/ext/vit_96x4.h5 --data /packed --output /out/linear --pixels --epochs 2$"
expect "eval.sbatch LINEAR=1: the k-NN, then the linear probe of the same models, LINEAR_ARGS passed on (rc $rc)" $?
e RUN=/run PACKED=/packed | grep -q "poa-eval-linear"
expect "eval.sbatch without LINEAR: no linear probe" "$([ $? -ne 0 ]; echo $?)"
out=$(e RUN=/run PACKED=/packed LINEAR=yes); rc=$?
expect "eval.sbatch LINEAR=yes: clear error, exit 2 (got $rc)" "$([ $rc -eq 2 ] && echo "$out" | grep -q "expected 0 or 1"; echo $?)"
exit $fail
