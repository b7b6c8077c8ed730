package backend

import "strings"

// ShellQuote returns s as one single-quoted POSIX sh word: inside single
// quotes nothing is special, and each single quote of s ends the quoted
// run, is written escaped (backslash, quote), and a new run starts.
// Module expansion quotes parameter values with it, and backends that wrap
// a step's command in another shell command line quote the command with it.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
