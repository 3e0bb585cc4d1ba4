#!/usr/bin/python3
"""check_headers.py — the Slurm scripts document what they read (tests/slurm/test_sbatch_headers.sh).

  check_headers.py TOP_SRCDIR SCRATCH_DIR

Every slurm/*.sbatch:
  * every environment variable it reads ($NAME, ${NAME...}) is listed in its header, either as an
    entry of the "Environment:" list (a line '#   NAME  description') or, for the variables Slurm
    sets, in the "Set by Slurm:" paragraph; and every name listed there is read (no stale entry);
  * a script that passes its arguments on ("$@") has an "Arguments:" line;
  * it has #SBATCH --job-name and --output lines, and `bash SCRIPT --help` prints the header
    (without the #SBATCH lines) with every listed variable, exit 0.
slurm/pipeline.sh:
  * every option it parses is in its --help, and every option its --help lists is parsed;
  * every environment variable it reads is named in its header;
  * the variables it hands to each stage's script (seen in its --dry-run output, all four stages,
    with stand-ins for the stage scripts that do not exist yet) are read and documented by that
    stage's script, for every stage script that exists.
Prints one line per check; exit status 1 when any fails.
"""
import glob
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys

SHELL_VARS = {"PWD", "OLDPWD", "HOME", "PATH", "IFS", "RANDOM", "LINENO", "SECONDS", "UID",
              "EUID", "HOSTNAME", "BASH_SOURCE", "PIPESTATUS"}
failures = 0


def check(ok, what):
    global failures
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1


def header_lines(lines):
    """The comment block from line 2 to the first line that is not a comment."""
    out = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        out.append(line.rstrip("\n"))
    return out


def read_names(lines):
    """Upper-case variables the code (not the comments) expands; \\$NAME is literal text."""
    names = set()
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        for m in re.finditer(r"(?<!\\)\$\{?([A-Z_][A-Z0-9_]*)", line):
            names.add(m.group(1))
    return names - SHELL_VARS


def environment_entries(header):
    return {m.group(1) for line in header for m in [re.match(r"^#   ([A-Z][A-Z0-9_]*)\s", line)] if m}


def slurm_paragraph(header):
    """SLURM_* names of the 'Set by Slurm:' paragraph (up to the next 'Word...:' line)."""
    names, inside = set(), False
    for line in header:
        if line.startswith("# Set by Slurm:"):
            inside = True
        elif inside and re.match(r"^# [A-Z][A-Za-z ]*:", line):
            break
        if inside:
            names.update(re.findall(r"\bSLURM_[A-Z0-9_]+\b", line))
    return names


def check_sbatch(path):
    name = os.path.basename(path)
    lines = open(path).read().splitlines()
    header = header_lines(lines)
    env_doc, slurm_doc = environment_entries(header), slurm_paragraph(header)
    read = read_names(lines)
    missing = sorted(read - env_doc - slurm_doc)
    check(not missing, "%s: every variable it reads is in its header%s" %
          (name, " (not documented: %s)" % ", ".join(missing) if missing else ""))
    stale = sorted((env_doc | slurm_doc) - read)
    check(not stale, "%s: every variable its header lists is read%s" %
          (name, " (never read: %s)" % ", ".join(stale) if stale else ""))
    if any('"$@"' in line for line in lines if not line.lstrip().startswith("#")):
        check(any(line.startswith("# Arguments:") for line in header),
              "%s: passes its arguments on and documents them ('Arguments:')" % name)
    sbatch = [line for line in lines if line.startswith("#SBATCH")]
    for opt in ("--job-name", "--output"):
        check(any(opt in line for line in sbatch), "%s: #SBATCH %s" % (name, opt))
    env = {k: v for k, v in os.environ.items() if k not in env_doc and not k.startswith("SLURM_")}
    run = subprocess.run(["bash", path, "--help"], capture_output=True, text=True, env=env, timeout=30)
    text = run.stdout
    good = (run.returncode == 0 and "Environment:" in text and "#SBATCH" not in text and
            all(re.search(r"\b%s\b" % n, text) for n in env_doc | slurm_doc))
    check(good, "%s --help: exit 0, prints the header with every variable (exit %d)" %
          (name, run.returncode))
    return env_doc


def check_pipeline(top, scratch, documented):
    path = os.path.join(top, "slurm", "pipeline.sh")
    lines = open(path).read().splitlines()
    header = "\n".join(header_lines(lines))
    run = subprocess.run(["bash", path, "--help"], capture_output=True, text=True, timeout=30)
    help_text = run.stdout
    check(run.returncode == 0 and "--work" in help_text, "pipeline.sh --help: exit 0")
    parsed = set(re.findall(r"^\s+(?:-[a-z] \| )?(--[a-z][a-z-]*)\)", "\n".join(lines), re.M))
    listed = set()
    for line in help_text.splitlines():  # the option column: up to the first gap of 2+ blanks
        if line.startswith("  -"):
            listed |= set(re.findall(r"--[a-z][a-z-]*", re.split(r"\s{2,}", line.strip())[0]))
    undocumented = sorted(o for o in parsed if not re.search(r"(?<![\w-])%s\b" % o, help_text))
    check(not undocumented, "pipeline.sh: every option it parses is in --help%s" %
          (" (missing: %s)" % ", ".join(undocumented) if undocumented else ""))
    stale = sorted(listed - parsed)
    check(not stale, "pipeline.sh: every option --help lists is parsed%s" %
          (" (not parsed: %s)" % ", ".join(stale) if stale else ""))
    missing = sorted(n for n in read_names(lines) if not re.search(r"\b%s\b" % n, header))
    check(not missing, "pipeline.sh: every environment variable it reads is in its header%s" %
          (" (not documented: %s)" % ", ".join(missing) if missing else ""))

    # The variables each stage's script receives, from a dry run over all four stages in a copy of
    # slurm/ where stage scripts that do not exist yet are stand-ins.
    copy = os.path.join(scratch, "slurm")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(os.path.join(top, "slurm"), copy, copy_function=shutil.copyfile)
    os.chmod(copy, stat.S_IRWXU)  # the source may be read-only (make distcheck)
    bindir, images = os.path.join(scratch, "bin"), os.path.join(scratch, "images")
    os.makedirs(bindir)
    os.makedirs(images)
    open(os.path.join(images, "labels.txt"), "w").write("n0,zero\n")
    for prog in ("poa-pack", "poa-train", "poa-extract", "poa-eval-knn", "poa-eval-linear"):
        p = os.path.join(bindir, prog)
        open(p, "w").write("#!/bin/sh\nexit 0\n")
        os.chmod(p, stat.S_IRWXU)
    for stage in ("pack", "pretrain", "extract", "eval"):
        p = os.path.join(copy, stage + ".sbatch")
        if not os.path.exists(p):
            open(p, "w").write("#!/bin/bash\n# stand-in\n")
    env = dict(os.environ, POA_BIN=bindir)
    run = subprocess.run(["bash", os.path.join(copy, "pipeline.sh"), "--dry-run", "--work",
                          os.path.join(scratch, "work"), "--images", images, "--config",
                          os.path.join(top, "configs", "tiny.yaml")],
                         capture_output=True, text=True, env=env, timeout=60)
    check(run.returncode == 0, "pipeline.sh --dry-run of the four stages: exit 0 (%d) %s" %
          (run.returncode, run.stderr.strip()))
    passed = {}
    for line in run.stdout.splitlines():
        m = re.match(r"^JOB_\w+=\$\((.*)\)$", line)
        if not m:
            continue
        words = shlex.split(m.group(1))
        k = words.index("sbatch")
        script = next(w for w in words[k:] if w.endswith(".sbatch"))
        passed.setdefault(os.path.basename(script), set()).update(w.split("=")[0] for w in words[:k])
    check(sorted(passed) == ["eval.sbatch", "extract.sbatch", "pack.sbatch", "pretrain.sbatch"],
          "pipeline.sh --dry-run submits the four stage scripts (%s)" % ", ".join(sorted(passed)))
    for script, names in sorted(passed.items()):
        if script not in documented:
            print("note: slurm/%s does not exist yet: pipeline.sh will hand it %s" %
                  (script, ", ".join(sorted(names))))
            continue
        unread = sorted(names - documented[script])
        check(not unread, "pipeline.sh hands %s only variables it reads and documents%s" %
              (script, " (not read: %s)" % ", ".join(unread) if unread else ""))


def main():
    top, scratch = sys.argv[1], sys.argv[2]
    documented = {}
    scripts = sorted(glob.glob(os.path.join(top, "slurm", "*.sbatch")))
    check(len(scripts) >= 2, "slurm/*.sbatch: %d scripts" % len(scripts))
    for path in scripts:
        documented[os.path.basename(path)] = check_sbatch(path)
    check_pipeline(top, scratch, documented)
    print("%d check(s) failed" % failures if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
