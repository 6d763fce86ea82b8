# lib.sh - helpers for the CLI tests: run a command, check its exit code,
# its stderr and that no output (or temporary file) was left behind.
# Sourced by tests/cli/*.sh; each check prints "ok" or "FAIL" and the
# script exits non-zero if anything failed.

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
BIN=$top_builddir
MK=$top_builddir/tests/mkcifar
T=$(mktemp -d /tmp/tl_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok - $*"; }
bad() { failed=$((failed + 1)); echo "FAIL - $*"; }

# run CODE NAME -- CMD...: run CMD with stdout/stderr in $T/out, $T/err
run() {
	local want=$1 name=$2
	shift 3
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name (exit $rc)"
	else
		bad "$name: exit $rc, expected $want; stderr: $(head -c 600 "$T/err")"
	fi
}

# err_has NAME PATTERN...: every fixed string appears in stderr
err_has() {
	local name=$1
	shift
	for p in "$@"; do
		if ! grep -qF -- "$p" "$T/err"; then
			bad "$name: stderr lacks '$p': $(head -c 600 "$T/err")"
			return
		fi
	done
	ok "$name: message"
}

out_has() {
	local name=$1
	shift
	for p in "$@"; do
		if ! grep -qF -- "$p" "$T/out"; then
			bad "$name: stdout lacks '$p': $(head -c 600 "$T/out")"
			return
		fi
	done
	ok "$name: output"
}

# nothing_left NAME DIR [FILE...]: DIR holds no temporary file (.*.tmp.*)
# and none of the FILEs exists
nothing_left() {
	local name=$1 dir=$2 left
	shift 2
	left=$(find "$dir" -maxdepth 1 -name '.*.tmp.*' | head -5)
	for f in "$@"; do [ -e "$f" ] && left="$left $f"; done
	if [ -z "$left" ]; then ok "$name: nothing left behind"; else bad "$name: left $left"; fi
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
