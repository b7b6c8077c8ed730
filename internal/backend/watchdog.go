package backend

// WatchdogScript is a POSIX sh script that runs a command ($1) so that
// the end of the script's stdin stops it, with everything it started. The
// caller keeps stdin open and never writes to it; end of file means the
// caller is gone or wants the command stopped.
//
// Why: a command's process tree outlives what started it. sshd does not
// stop a command when the client goes away (it only closes the pipes: a
// "sleep 60; true" lives on), and the "signal" channel request, which
// OpenSSH since 7.9 turns into a kill of the session's process group,
// needs a live connection and a recent server. On the master's own host
// (the local backend) a kill -9 of the master re-parents the command's
// process group to init, where it runs to its end. In both cases the
// script runs as the leader of its own process group (sshd starts every
// session command in a new session; the local backend starts it with
// setpgid), so the command's whole tree shares that group. A background
// watchdog reads stdin; end of file makes it send TERM to the group, then
// KILL two seconds later for whatever ignored TERM. On normal completion
// the watchdog is killed and the command's exit code returned.
//
// The command runs in a subshell of the script's own sh, through eval:
// no second exec of sh per command (on a loaded target every exec shows
// in a fan-out's wall time). The subshell first clears what eval needs
// (the positional parameters and its own variable), so the command sees
// what sh -c would give it: no arguments, $0 "sh". A subshell, not the
// script's shell, so an exit in the command ends only the subshell and
// the script still stops the watchdog; and because dash applies a simple
// command's redirections in the parent around the wait (it would print
// "Killed" into the command's stderr), while a subshell's are applied in
// the child only. The command gets /dev/null as stdin, as under ansible
// or salt, and the script's stderr; the script's own stderr (where sh
// reports a child killed by a signal) goes to /dev/null, so stderr holds
// only the command's.
//
// One line, no single quotes and no "!", so any login shell passes it on.
const WatchdogScript = `exec 3<&0 4>&2 2>/dev/null; ` +
	`(trap "" TERM; while read -r _; do :; done; kill -s TERM 0; sleep 2; kill -s KILL 0) <&3 >/dev/null 4>&- & w=$!; ` +
	`(omserver_cmd=$1; set --; eval "unset omserver_cmd; $omserver_cmd") </dev/null 2>&4 3<&- 4>&-; rc=$?; kill -s KILL $w; exit $rc`

// WatchdogArg0 is the script's $0, which the command also sees.
const WatchdogArg0 = "sh"

// WatchdogCommand returns a command line that runs cmd, a POSIX sh command
// line, under WatchdogScript: for a remote login shell, which execs sh
// with the script and cmd as its first argument.
func WatchdogCommand(cmd string) string {
	return "exec sh -c " + ShellQuote(WatchdogScript) + " " + WatchdogArg0 + " " + ShellQuote(cmd)
}
