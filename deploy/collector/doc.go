// Package collector holds OMServer's 安全审计 collector for target servers
// (the shell files beside this one: omaudit.sh for /etc/profile.d, the
// bash hook omaudit-hook.bash, the POSIX sh sender omaudit-send, and
// install.sh; see README.md) and its end-to-end test: a real interactive
// bash on a loopback sshd, the real web tier, headless Chromium.
package collector
