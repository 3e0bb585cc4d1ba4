#!/bin/sh
# test_poa_config_cli.sh — tools/poa-config on good and bad configurations: exit codes, messages
# that name file and line, command-line precedence, --save round trip, --help.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top_src=${POA_TOP_SRCDIR:-$here/../..}
top_build=${POA_TOP_BUILDDIR:-$(pwd)}
tool=$top_build/tools/poa-config
fixtures=$top_src/tests/config
out=$top_build/tests/out/config-cli
mkdir -p "$out" || exit 1
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# run EXPECTED_RC ARGS...: runs the tool, stdout/stderr to $out/last.{out,err}
run() {
    want=$1
    shift
    "$tool" "$@" >"$out/last.out" 2>"$out/last.err"
    rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "poa-config $*: exit $rc, expected $want"
        sed 's/^/  stderr: /' "$out/last.err" >&2
    fi
}

# expect_in FILE TEXT: TEXT (fixed string) must occur in FILE
expect_in() {
    if ! grep -F -q -- "$2" "$1"; then
        fail "expected '$2' in $(basename "$1"); got:"
        sed 's/^/  | /' "$1" >&2
    fi
}

[ -x "$tool" ] || { echo "FAIL: $tool not built" >&2; exit 1; }

# --help, --version
run 0 --help
expect_in "$out/last.out" "optim.base_lr = 0.004"
expect_in "$out/last.out" "train.OFFICIAL_EPOCH_LENGTH = 800"
expect_in "$out/last.out" "--config FILE"
run 0 --version
expect_in "$out/last.out" "poa-config (poa)"

# valid configurations: the fixture and every shipped file
run 0 --config "$fixtures/good_small.yaml"
expect_in "$out/last.out" "configuration is valid"
for f in "$top_src"/configs/*.yaml; do
    run 0 -q --config "$f"
done

# bad configurations: exit 2, message names file:line
run 2 --config "$fixtures/bad_unknown_key.yaml"
expect_in "$out/last.err" "bad_unknown_key.yaml:4:3"
expect_in "$out/last.err" "did you mean 'optim.base_lr'"
run 2 --config "$fixtures/bad_type.yaml"
expect_in "$out/last.err" "bad_type.yaml:5:23"
expect_in "$out/last.err" "expected int"
run 2 --config "$fixtures/bad_syntax.yaml"
expect_in "$out/last.err" "bad_syntax.yaml:5:"
expect_in "$out/last.err" "line 4"
expect_in "$out/last.err" "malformed YAML"
run 2 --config "$fixtures/bad_range.yaml"
expect_in "$out/last.err" "bad_range.yaml:3:19"
expect_in "$out/last.err" "out of range"
run 2 --config "$fixtures/bad_rule.yaml"
expect_in "$out/last.err" "bad_rule.yaml:5:21"
expect_in "$out/last.err" "student.patch_size"
run 2 --config "$fixtures/no_such_file.yaml"
expect_in "$out/last.err" "no_such_file.yaml"
run 2 optim.base_lrr=0.1
expect_in "$out/last.err" "did you mean 'optim.base_lr'"
run 2 optim.epochs=ten
expect_in "$out/last.err" "expected int"
run 2 --confg "$fixtures/good_small.yaml"
expect_in "$out/last.err" "did you mean '--config'"

# the command line beats the file and shows up in the effective configuration
run 0 --config "$fixtures/good_small.yaml" optim.epochs=9
if ! grep -E -q '^  optim\.epochs +9 +# command line' "$out/last.out"; then
    fail "optim.epochs=9 from the command line not in the effective configuration"
    grep 'optim.epochs' "$out/last.out" >&2
fi
expect_in "$out/last.out" "good_small.yaml:6:18"

# --save writes a configuration that reloads to the same values
run 0 -q --config "$fixtures/good_small.yaml" optim.base_lr=0.0123 --save "$out/saved.yaml"
run 0 -q --config "$out/saved.yaml" --save "$out/resaved.yaml"
if ! cmp -s "$out/saved.yaml" "$out/resaved.yaml"; then
    fail "--save output changes when reloaded and saved again"
    diff "$out/saved.yaml" "$out/resaved.yaml" >&2
fi
expect_in "$out/saved.yaml" "base_lr: 0.0123"
run 4 -q --save "$out/no/such/dir/x.yaml"

# the key reference in configs/README.md is the current `poa-config --markdown`
run 0 --markdown
sed -n '/<!-- keys:begin/,/<!-- keys:end/p' "$top_src/configs/README.md" | sed '1d;$d' \
    >"$out/readme-keys.md"
if ! cmp -s "$out/last.out" "$out/readme-keys.md"; then
    fail "the key table in configs/README.md is stale: regenerate it with poa-config --markdown"
    diff "$out/readme-keys.md" "$out/last.out" | head -20 >&2
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all poa-config command-line checks passed"
