# bash completion for pt, pt-bind, pt-reset, pt-vgaarb, pt-console and pt-drm.
#
# Subcommands, options and the values they take are read from the tool's own
# --help (CLI11's layout), so this file never lists them and cannot drift
# from the binary. Devices come from `pt-bind list`, under the --root DIR the
# command line names: their PCI addresses with the class names pci.ids gives.
# bash shows candidates only, so a device is offered as "BDF (class)" while
# several match (bash then inserts their common prefix, which lies inside
# the address: all addresses have the same length) and as the bare address
# once one matches, which is what gets inserted.

declare -gA _pt_help_cache=()

# _pt_help TOOL [SUB]: TOOL's (or SUB's) --help, cached for the session.
_pt_help() {
	local key="$*"
	if [[ -z ${_pt_help_cache[$key]+set} ]]; then
		_pt_help_cache[$key]=$("$@" --help 2>/dev/null)
	fi
	printf '%s\n' "${_pt_help_cache[$key]}"
}

# _pt_section HELP NAME: the entry lines of section NAME ("Options" ...).
_pt_section() {
	printf '%s\n' "$1" | awk -v s="$2:" '$0 == s { on = 1; next } /^[A-Z][A-Za-z]*:/ { on = 0 } on && /^  [^ ]/'
}

# _pt_subcommands HELP: one name a line.
_pt_subcommands() {
	_pt_section "$1" Subcommands | awk '{ print $1 }'
}

# _pt_options HELP: "NAME TYPE DESCRIPTION" lines, TYPE "-" for a flag; a
# short and long spelling ("-v,--verbose") give a line each.
_pt_options() {
	printf '%s\n' "$1" | awk '
		/^Options:/ { on = 1; next }
		/^[A-Z][A-Za-z]*:/ { on = 0 }
		!on { next }
		/^  -/ {
			line = substr($0, 3)
			split(line, parts, /  +/)
			n = split(parts[1], head, " ")
			type = (n > 1) ? head[2] : "-"
			desc = parts[2]
			count = split(head[1], names, ",")
			for (i = 1; i <= count; i++) print names[i], type, desc
		}'
}

# _pt_positionals HELP: "NAME DESCRIPTION" lines, in order.
_pt_positionals() {
	_pt_section "$1" Positionals | awk '{ line = substr($0, 3); split(line, p, /  +/); print $1, p[2] }'
}

# _pt_values DESCRIPTION: the words of "a, b or c" (optionally followed by
# " (default ...)"), which is how the tools describe an enumeration.
_pt_values() {
	local d=${1%% (*}
	[[ $d =~ ^[a-z0-9_+-]+(,\ [a-z0-9_+-]+)*\ or\ [a-z0-9_+-]+$ ]] || return 0
	d=${d//,/}
	local -a values
	read -ra values <<<"${d// or / }"
	printf '%s\n' "${values[@]}"
}

# _pt_devices TOOL ROOT CLASS: "BDF<TAB>class name" lines from pt-bind list
# (its "note:" lines after the table are no devices).
_pt_devices() {
	local tool=$1 root=$2 class=$3 bind
	bind=$(type -P "$tool")
	bind=${bind%/*}/pt-bind
	[[ -x $bind ]] || bind=$(type -P pt-bind) || return 0
	"$bind" ${root:+--root "$root"} list --class "$class" 2>/dev/null | awk '
		NR == 1 { c = index($0, "CLASS"); d = index($0, "DRIVER"); next }
		c && d && $1 ~ /^[0-9a-f]+:/ { name = substr($0, c, d - c); sub(/ +$/, "", name); print $1 "\t" name }'
}

# _pt_drivers ROOT: the PCI drivers the kernel (or the tree) has.
_pt_drivers() {
	local d
	for d in "${1:-}"/sys/bus/pci/drivers/*/; do
		[[ -d $d ]] || continue
		d=${d%/}
		printf '%s\n' "${d##*/}"
	done
}

# _pt_reply CUR PREFIX WORDS...: COMPREPLY from the WORDS matching CUR, with
# PREFIX (what bash split off at a ':' or '=') taken off each.
_pt_reply() {
	local cur=$1 prefix=$2 w
	shift 2
	COMPREPLY=()
	for w in "$@"; do
		[[ $w == "$cur"* ]] && COMPREPLY+=("${w#"$prefix"}")
	done
}

# _pt_reply_devices CUR PREFIX TOOL ROOT CLASS: device addresses, with their
# class names while more than one matches and bash lists them.
_pt_reply_devices() {
	local cur=$1 prefix=$2 bdf name
	local -a bdfs=() shown=()
	while IFS=$'\t' read -r bdf name; do
		[[ $bdf == "$cur"* ]] || continue
		bdfs+=("${bdf#"$prefix"}")
		shown+=("${bdf#"$prefix"} (${name:-unknown class})")
	done < <(_pt_devices "$3" "$4" "$5")
	# Menu completion (%) and insert-all (*) insert every candidate whole.
	if ((${#bdfs[@]} > 1)) && [[ ${COMP_TYPE:-9} != 37 && ${COMP_TYPE:-9} != 42 ]]; then
		COMPREPLY=("${shown[@]}")
	else
		COMPREPLY=("${bdfs[@]}")
	fi
}

_pt_complete() {
	COMPREPLY=()
	local tool=${COMP_WORDS[0]}
	[[ $tool == */* ]] || tool=$(type -P "$tool") || tool=${COMP_WORDS[0]}

	# bash splits words at ':' and '=' (COMP_WORDBREAKS): join them again,
	# so "0000:01:00.0" and "--root=DIR" are one word each.
	local -a words=()
	local i w cword=0 joined=0
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		if ((i > 0)) && { [[ $w =~ ^[:=]+$ ]] || ((joined)); }; then
			words[-1]+=$w
			joined=0
			[[ $w =~ ^[:=]+$ ]] && joined=1
		else
			words+=("$w")
		fi
		((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
	done
	local cur=${words[cword]} raw=${COMP_WORDS[COMP_CWORD]}
	local prefix=${cur%"$raw"}

	# What precedes the current word: --root, the subcommand, the options
	# whose value comes next, the positionals given.
	local top sub="" root="" help subs
	top=$(_pt_help "$tool")
	subs=$(_pt_subcommands "$top")
	help=$top
	local -a opts
	local npos=0 expect=""
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if [[ -n $expect ]]; then
			[[ $expect == --root ]] && root=$w
			expect=""
			continue
		fi
		case $w in
		--root=*) root=${w#--root=} ;;
		--)
			# pt-vgaarb lock DEV -- CMD...: a command line of its own.
			mapfile -t COMPREPLY < <(compgen -c -- "$cur")
			((i + 1 == cword)) || mapfile -t COMPREPLY < <(compgen -f -- "$cur")
			return 0
			;;
		-*)
			[[ $w == *=* ]] && continue
			# An option with a TYPE takes the next word.
			if _pt_options "$help"$'\n'"$top" | awk -v n="$w" '$1 == n && $2 != "-" { f = 1 } END { exit !f }'; then
				expect=$w
			fi
			;;
		*)
			if [[ -z $sub ]] && grep -qx -- "$w" <<<"$subs"; then
				sub=$w
				help=$(_pt_help "$tool" "$sub")
				npos=0
			else
				((npos++)) || true
			fi
			;;
		esac
	done
	root=${root/#\~/$HOME}
	local class=all
	case ${tool##*/} in pt-vgaarb | pt-console | pt-drm) class=display ;; esac

	# The value of an option: --opt VALUE or --opt=VALUE.
	local opt="" value=$cur
	if [[ -n $expect ]]; then
		opt=$expect
	elif [[ $cur == --*=* ]]; then
		opt=${cur%%=*}
		value=${cur#*=}
	fi
	if [[ -n $opt ]]; then
		local type desc
		read -r type desc < <(_pt_options "$help"$'\n'"$top" | awk -v n="$opt" '$1 == n { $1 = ""; print substr($0, 2); exit }')
		local -a cands=()
		case $type in
		DIR) mapfile -t cands < <(compgen -d -- "$value") ;;
		FILE) mapfile -t cands < <(compgen -f -- "$value") ;;
		DRIVER) mapfile -t cands < <(_pt_drivers "$root") ;;
		*) mapfile -t cands < <(_pt_values "$desc") ;;
		esac
		[[ $cur == --*=* ]] && cands=("${cands[@]/#/$opt=}")
		_pt_reply "$cur" "$prefix" "${cands[@]}"
		[[ $type == DIR || $type == FILE ]] && compopt -o filenames 2>/dev/null
		return 0
	fi

	if [[ $cur == -* ]]; then
		# After a subcommand the tool's own options are accepted too.
		mapfile -t opts < <({
			_pt_options "$help"
			[[ -n $sub ]] && _pt_options "$top"
		} | awk '!seen[$1]++ { print $1 }')
		_pt_reply "$cur" "$prefix" "${opts[@]}"
		return 0
	fi

	# A positional: the subcommand's, or the tool's own before it.
	local -a pos=() cands=()
	mapfile -t pos < <(_pt_positionals "$help")
	local name desc
	if ((${#pos[@]})); then
		local k=$npos
		# The last positional takes every further word when it is a list.
		((k >= ${#pos[@]})) && k=$((${#pos[@]} - 1))
		read -r name desc <<<"${pos[k]}"
		if ((npos >= ${#pos[@]})) && [[ $desc != *...* ]]; then
			desc=""
		fi
	fi
	if [[ -z $sub && -n $subs ]]; then
		mapfile -t cands <<<"$subs"
		[[ $desc == DEV* ]] && { _pt_reply_devices "$cur" "$prefix" "$tool" "$root" "$class"; }
		local -a devs=("${COMPREPLY[@]}")
		_pt_reply "$cur" "$prefix" "${cands[@]}"
		[[ $desc == DEV* ]] && COMPREPLY+=("${devs[@]}")
		return 0
	fi
	case $desc in
	DEV*) _pt_reply_devices "$cur" "$prefix" "$tool" "$root" "$class" ;;
	DRIVER*)
		mapfile -t cands < <(_pt_drivers "$root")
		_pt_reply "$cur" "$prefix" "${cands[@]}"
		;;
	FILE*)
		# pt diff's snapshots.
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		compopt -o filenames 2>/dev/null
		;;
	*)
		mapfile -t cands < <(_pt_values "$desc")
		_pt_reply "$cur" "$prefix" "${cands[@]}"
		;;
	esac
	return 0
}

complete -F _pt_complete pt pt-bind pt-reset pt-vgaarb pt-console pt-drm
