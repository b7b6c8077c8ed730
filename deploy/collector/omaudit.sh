# /etc/profile.d/omaudit.sh: OMServer 安全审计 collector hook (bash).
#
# After each interactive command, bash runs PROMPT_COMMAND; this hook reads
# the command back with `history 1` (number, time, command), as the
# original's /etc/profile did for chapter 14's agent, and hands it to
# omaudit-send in the background: the shell never waits for the network.
#
# Read by login shells through /etc/profile; source it from /etc/bash.bashrc
# too for non-login interactive shells (it hooks each shell once). Other
# shells (sh, dash, zsh) are left alone: they have no PROMPT_COMMAND.
#
# Like the original, it sees what bash records in its history: a command
# started with a space under HISTCONTROL=ignorespace, or typed after
# `set +o history`, is not reported. It is an operator's trail, not a
# tamper-proof record (use auditd's execve rules for that).

# This file is read by every login shell, sh included, so it holds only
# POSIX syntax; the hook itself is bash and lives beside omaudit-send.
if [ -n "${BASH_VERSION:-}" ]; then
	case $- in
	*i*)
		if [ -r "${OMAUDIT_HOOK:-/usr/local/libexec/omaudit/omaudit-hook.bash}" ]; then
			. "${OMAUDIT_HOOK:-/usr/local/libexec/omaudit/omaudit-hook.bash}"
		fi
		;;
	esac
fi
