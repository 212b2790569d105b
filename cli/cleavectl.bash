# bash completion for cleavectl: source this file (or install it as
# /usr/share/bash-completion/completions/cleavectl). The candidates come from cleavectl itself
# (`cleavectl __complete WORDS...` reads its command table), so they always match the binary.
_cleavectl() {
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n'
	COMPREPLY=($(compgen -W "$(cleavectl __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _cleavectl cleavectl
