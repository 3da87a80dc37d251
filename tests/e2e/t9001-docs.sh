#!/usr/bin/env bash
# Docs and completions cannot drift from the command table: every
# command has --help, man page entries for it and its options, and the
# committed completion scripts equal what fleetctl generates.
. "$(dirname "$0")/lib.sh"
cd "$FLEET_SRC" || exit 1

fleetctl --list-commands >"$T/cmds"
check_true "--list-commands lists commands" test "$(wc -l <"$T/cmds")" -ge 5

while read -r line; do
	# hidden internals (__complete, for the completions) have no page
	case $line in __*) continue ;; esac
	path=$(echo "$line" | tr ' ' '\n' | grep -v '^--' | tr '\n' ' ' | sed 's/ $//')
	# shellcheck disable=SC2086
	check_grep '^usage: fleetctl ' "'$path --help' prints usage" fleetctl $path --help
	# an entry ".It Nm Cm FIRST ..." that names the rest of the path
	set -- $path
	first=$1
	shift
	grep "^\.It Nm Cm $first\b" man/fleetctl.1 | grep -qw -- "${1:-$first}" ||
		fail "man/fleetctl.1 has no '.It Nm Cm $path' entry"
	for o in $(echo "$line" | tr ' ' '\n' | grep '^--'); do
		grep -q -- "Fl -${o#--}" man/fleetctl.1 ||
			fail "man/fleetctl.1 lacks option $o of '$path'"
	done
done <"$T/cmds"

check "man pages are lint-clean" mandoc -Tlint -Wwarning man/*.[158]

for sh in bash zsh fish; do
	case $sh in bash) f=completions/fleetctl.bash ;; zsh) f=completions/_fleetctl ;;
	fish) f=completions/fleetctl.fish ;; esac
	fleetctl completion "$sh" >"$T/gen.$sh"
	check "$f is up to date (make completions)" cmp "$T/gen.$sh" "$f"
done
# fleetd and fleet-agent: completions generated from their command
# tables (--list-commands), and every command and option in their man page
mkdir -p "$T/comp"
scripts/gen-completions "$FLEET_BUILD" "$T/comp"
for f in fleetd.bash _fleetd fleetd.fish fleet-agent.bash _fleet-agent fleet-agent.fish \
	fleet-sim.bash _fleet-sim fleet-sim.fish; do
	check "completions/$f is up to date (make completions)" cmp "$T/comp/$f" "completions/$f"
done
# the tables pass their rules (sorted, unique, every leaf has usage and
# options: --list-commands refuses otherwise), and each command's
# options in the table are the long options its usage shows
for prog in fleetctl fleetd fleet-agent fleet-sim; do
	check "$prog --list-commands accepts its table" "$prog" --list-commands
done
for prog in fleetd fleet-agent fleet-sim; do
	"$prog" --list-commands >"$T/$prog.cmds"
	while read -r c opts; do
		want=$(echo "$opts" | tr ' ' '\n' | grep . | sort -u | tr '\n' ' ')
		got=$("$prog" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u | tr '\n' ' ')
		[ "$want" = "$got" ] ||
			fail "$prog $c: table options '$want' differ from its usage '$got'"
	done <"$T/$prog.cmds"
done
for prog in fleetd fleet-agent fleet-sim; do
	case $prog in fleetd) page=man/fleetd.8 ;; fleet-sim) page=man/fleet-sim.1 ;;
	*) page=man/fleet-agent.8 ;; esac
	for c in $("$prog" --help | awk '/^commands:/{f=1; next} f && !NF {exit} f {print $1}'); do
		grep -q "Cm $c\b" "$page" || fail "$page has no entry for '$c'"
		for o in $("$prog" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
			grep -q -- "Fl -${o#--}" "$page" || fail "$page lacks option $o of '$c'"
		done
	done
done
check "zsh completion parses" zsh -n completions/_fleetctl
check "fish completion parses" fish -n completions/fleetctl.fish
# bash: offers every top-level command and a command's options
words=$(bash -c '. completions/fleetctl.bash; COMP_WORDS=(fleetctl ""); COMP_CWORD=1; _fleetctl; echo "${COMPREPLY[*]}"')
for top in $(awk '$1 !~ /^__/ {print $1}' "$T/cmds" | sort -u); do
	case " $words " in *" $top "*) ;; *) fail "bash completion lacks '$top'" ;; esac
done
check_grep -- '--role' "bash completes 'token create --'" bash -c \
	'. completions/fleetctl.bash; COMP_WORDS=(fleetctl token create --); COMP_CWORD=3; _fleetctl; echo "${COMPREPLY[*]}"'
check_grep '^create' "fish completes 'token '" fish -c \
	'source completions/fleetctl.fish; complete -C "fleetctl token "'

check_grep 'make demo' "README names make demo" head -n 30 README.md
check_grep 'make check' "README names make check" head -n 30 README.md
finish
