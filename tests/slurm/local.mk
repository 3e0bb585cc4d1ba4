# tests/slurm/: slurm/*.sbatch find the programs next to the submitted script (fake Slurm on
# PATH).
TESTS += tests/slurm/test_sbatch_paths.sh
EXTRA_DIST += tests/slurm/test_sbatch_paths.sh
