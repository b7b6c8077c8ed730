# omaudit-hook.bash: the bash half of OMServer's 安全审计 collector, read
# by /etc/profile.d/omaudit.sh in interactive bash shells only (it uses
# bash syntax, which /etc/profile must not show to sh). See omaudit.sh.

[ -z "${__omaudit_hooked:-}" ] || return 0
__omaudit_hooked=1
__omaudit_send=${OMAUDIT_SEND:-/usr/local/libexec/omaudit/omaudit-send}
__omaudit_user=$(id -un 2>/dev/null || printf '%s' "${USER:-unknown}")
__omaudit_last=
__omaudit_started=

__omaudit_hook() {
	local rc=$? line id when cmd
	line=$(HISTTIMEFORMAT='%F %T ' builtin history 1 2>/dev/null)
	# The first prompt shows what the history file ended with: an earlier
	# session's command, not one typed here.
	if [ -z "$__omaudit_started" ]; then
		__omaudit_started=1
		__omaudit_last=$line
		return $rc
	fi
	# An empty line (just Enter) leaves the history as it was.
	if [ -z "$line" ] || [ "$line" = "$__omaudit_last" ]; then
		return $rc
	fi
	__omaudit_last=$line
	# "  501* 2014-05-20 10:11:12 ls -l": the number (a * marks a line
	# edited in the history), the time, the command (which may span lines).
	if [[ $line =~ ^[[:space:]]*([0-9]+)\*?[[:space:]]+([0-9]{4}-[0-9]{2}-[0-9]{2}[[:space:]][0-9]{2}:[0-9]{2}:[0-9]{2})[[:space:]](.*)$ ]]; then
		id=${BASH_REMATCH[1]}
		when=${BASH_REMATCH[2]}
		cmd=${BASH_REMATCH[3]}
	else
		return $rc
	fi
	cmd=${cmd%"${cmd##*[![:space:]]}"}
	[ -n "$cmd" ] && [ -x "$__omaudit_send" ] || return $rc
	("$__omaudit_send" "$id" "$__omaudit_user" "$when" "$cmd" </dev/null >/dev/null 2>&1 &)
	return $rc
}

if [[ "$(declare -p PROMPT_COMMAND 2>/dev/null)" == "declare -a"* ]]; then
	PROMPT_COMMAND=(__omaudit_hook "${PROMPT_COMMAND[@]}")
else
	PROMPT_COMMAND="__omaudit_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
