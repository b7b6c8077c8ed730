package ssh

import "github.com/omserver/omserver-go/internal/backend"

// watchdogScript runs the step's command ($1) so that closing the session's
// stdin stops it, with everything it started.
//
// Why: sshd does not stop a command when the client goes away (it only
// closes the pipes: a "sleep 60; true" lives on), and the "signal" channel
// request, which OpenSSH since 7.9 turns into a kill of the session's
// process group, needs a live connection and a recent server. But sshd
// starts every session command in a new session (setsid), so the command's
// whole tree shares one process group. A background watchdog reads stdin,
// which the client never writes; end of file (the client cancelled, or the
// connection is gone) makes it send TERM to the group, then KILL two
// seconds later for whatever ignored TERM. On normal completion the
// watchdog is killed and the command's exit code returned.
//
// The command itself gets /dev/null as stdin, as under ansible or salt, and
// the session's stderr; the wrapper's own stderr (where sh reports a child
// killed by a signal) goes to /dev/null, so stderr holds only the command's.
// The subshell matters: dash applies a simple command's redirections in
// the parent around the wait, so it would print "Killed" to the command's
// stderr; a subshell's redirections are applied in the child only.
//
// One line, no single quotes and no "!", so any login shell passes it on.
const watchdogScript = `exec 3<&0 4>&2 2>/dev/null; ` +
	`(trap "" TERM; while read -r _; do :; done; kill -s TERM 0; sleep 2; kill -s KILL 0) <&3 >/dev/null 4>&- & w=$!; ` +
	`(sh -c "$1") </dev/null 2>&4 3<&- 4>&-; rc=$?; kill -s KILL $w; exit $rc`

// wrapCommand returns the command line sent to sshd for cmd, a POSIX sh
// command line: the login shell execs sh with the watchdog script and cmd
// as its first argument.
func wrapCommand(cmd string) string {
	return "exec sh -c " + backend.ShellQuote(watchdogScript) + " omserver-step " + backend.ShellQuote(cmd)
}
