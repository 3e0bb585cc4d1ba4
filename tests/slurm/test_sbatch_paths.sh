#!/bin/sh
# test_sbatch_paths.sh — slurm/*.sbatch find the poa programs next to the submitted script even
# though sbatch runs a spooled copy of it (the copy's $0 is in slurmd's spool directory): they
# ask Slurm for the submitted path (scontrol show job: Command=).  Fake scontrol and srun on
# PATH stand in for Slurm; srun prints the command it would run.  Also: run by hand ($0 is the
# script itself), and a clear error with exit code 2 when the programs are not there.
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
chmod +x "$work/fake/scontrol" "$work/fake/srun" "$work/install/bin/"*
for s in pack pretrain; do
    cp "$top_src/slurm/$s.sbatch" "$work/install/slurm/" && cp "$top_src/slurm/$s.sbatch" "$work/spool/slurm_script"
    prog=poa-$s; [ $s = pretrain ] && prog=poa-train
    run() { env PATH="$work/fake:$PATH" SCRIPT=$s.sbatch IMAGENET=/in PACKED=/packed OUTPUT=/out "$@" 2>&1; }
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
exit $fail
