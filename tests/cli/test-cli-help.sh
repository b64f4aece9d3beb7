#!/bin/bash
# --help: qemu-img's layout; only the version lines, the program name on the
# usage line, the format list and the closing lines are qimg's own.
. "$(dirname "$0")/../lib.sh"

"$QEMU_IMG" --help >"$T/ref" 2>&1
"$QIMG" --help >"$T/got" 2>"$T/got.err"; rc=$?
expect_eq "--help exit" 0 "$rc"
expect_eq "--help stderr" "" "$(cat "$T/got.err")"
body() { sed -n '/^QEMU disk image utility$/,/^Supported formats:/p' "$1" | sed '$d'; }
body "$T/ref" >"$T/ref.body"
body "$T/got" >"$T/got.body"
[ -s "$T/got.body" ] || check_fail "--help has no body"
cmp -s "$T/ref.body" "$T/got.body" || { check_fail "--help body differs"; diff "$T/ref.body" "$T/got.body" | head >&2; }
expect_eq "usage line" "usage: qimg [standard options] command [command options]" "$(sed -n 3p "$T/got")"
fmts=$(sed -n 's/^Supported formats: //p' "$T/got")
case " $fmts " in *" raw "*) ;; *) check_fail "raw missing from formats: $fmts" ;; esac
case " $fmts " in *" file "*) ;; *) check_fail "file missing from formats: $fmts" ;; esac
expect_eq "formats sorted" "$(printf '%s\n' $fmts | sort | tr '\n' ' ')" "$(printf '%s\n' $fmts | tr '\n' ' ')"
# -h, and -h after a command, print the same
"$QIMG" -h >"$T/h"; cmp -s "$T/h" "$T/got" || check_fail "-h differs from --help"
"$QIMG" create -h >"$T/h2"; rc=$?
expect_eq "create -h exit" 0 "$rc"
cmp -s "$T/h2" "$T/got" || check_fail "create -h differs from --help"
"$QIMG" info --help >"$T/h3"; cmp -s "$T/h3" "$T/got" || check_fail "info --help differs"
# The man page documents every command the help lists, with its synopsis
man="${TEST_SRCDIR:-$(dirname "$0")/..}/../docs/qimg.1"
[ -f "$man" ] || fail "no man page at $man"
sed -n '/^Command syntax:/,/^$/p' "$T/got" | sed -n 's/^  \([a-z]*\) .*/\1/p' >"$T/cmds"
expect_eq "commands in help" 15 "$(wc -l <"$T/cmds")"
while read -r c; do
    grep -q "^\.B $c " "$man" || check_fail "man page lacks command $c"
    # every option of the help synopsis appears in the man page entry
    for o in $(sed -n "s/^  $c //p" "$T/got" | grep -o -- '--\?[a-zA-Z][-a-z_]*' | sort -u); do
        esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
        grep "^\.B $c " "$man" | grep -q -- "$esc" || check_fail "man page: $c lacks $o"
    done
done <"$T/cmds"
finish
