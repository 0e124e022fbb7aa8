# bash completion for clawbox. Verbs and flags come from the CLI's own
# help text, so they are always those of the installed binary.
_clawbox() {
    local cur=${COMP_WORDS[COMP_CWORD]} bin=${COMP_WORDS[0]}
    if [ "$COMP_CWORD" -eq 1 ]; then
        local verbs
        verbs=$("$bin" --help 2>/dev/null | awk '/^  [a-z]/ {print $1}')
        mapfile -t COMPREPLY < <(compgen -W "$verbs help --help --version" -- "$cur")
        return
    fi
    local verb=${COMP_WORDS[1]}
    if [ "$verb" = help ]; then
        mapfile -t COMPREPLY < <(compgen -W "$("$bin" --help 2>/dev/null |
            awk '/^  [a-z]/ {print $1}')" -- "$cur")
        return
    fi
    if [[ $cur == -* ]]; then
        local flags
        flags=$("$bin" "$verb" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
        mapfile -t COMPREPLY < <(compgen -W "$flags --help" -- "$cur")
        return
    fi
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}
complete -F _clawbox clawbox
