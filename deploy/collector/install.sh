#!/bin/sh
# install.sh: installs OMServer's 安全审计 collector on a target server.
# Run as root from this directory (or a copy of it):
#
#   sh install.sh --url https://omserver.example.com --token omi_... [--ip 192.168.1.10]
#                 [--ca /etc/ssl/omserver-ca.crt] [--bashrc] [--root DIR]
#
#   --url     the web tier's base URL (the collector calls URL/omaudit/omaudit_pull/)
#   --token   an ingest token from the web tier (安全审计 → ingest tokens);
#             one bound to this server is best
#   --ip      this server's IP as the inventory lists it (default: the first
#             address of `hostname -I`); the web tier also checks that the
#             requests come from it
#   --ca      CA file for the web tier's certificate (default: the system's)
#   --bashrc  also hook non-login interactive bash shells (/etc/bash.bashrc
#             or /etc/bashrc)
#   --root    install under DIR instead of / (packaging)
#
# Installs:
#   /usr/local/libexec/omaudit/omaudit-send        sender (POSIX sh, curl or wget)
#   /usr/local/libexec/omaudit/omaudit-hook.bash   bash hook (PROMPT_COMMAND)
#   /etc/profile.d/omaudit.sh                      loads the hook in interactive bash
#   /etc/omaudit/omaudit.conf                      URL, token, IP (mode 0644: every
#                                                  user's shell sends with it)
#   /var/spool/omaudit/                            per-user spools (mode 1733)
set -eu

die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
root= url= token= ip= ca= bashrc=
while [ $# -gt 0 ]; do
	case $1 in
	--url) [ $# -ge 2 ] || die "--url needs a value"; url=$2; shift 2 ;;
	--token) [ $# -ge 2 ] || die "--token needs a value"; token=$2; shift 2 ;;
	--ip) [ $# -ge 2 ] || die "--ip needs a value"; ip=$2; shift 2 ;;
	--ca) [ $# -ge 2 ] || die "--ca needs a value"; ca=$2; shift 2 ;;
	--root) [ $# -ge 2 ] || die "--root needs a value"; root=$2; shift 2 ;;
	--bashrc) bashrc=1; shift ;;
	-h | --help) sed -n '2,30p' "$0"; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
done

case $url in
http://* | https://*) ;;
*) die "--url must be the web tier's http:// or https:// address" ;;
esac
case $token in
omi_?*) ;;
*) die "--token must be an ingest token (omi_...): an admin creates one on the web tier's 安全审计 → ingest tokens page" ;;
esac
case $token in *[!A-Za-z0-9_-]*) die "--token holds characters an ingest token never has" ;; esac
if [ -z "$ip" ]; then
	ip=$(hostname -I 2>/dev/null | awk '{print $1}')
	[ -n "$ip" ] || die "cannot tell this server's IP: give --ip as the inventory lists it"
	printf 'install.sh: this server reports as %s (the inventory must list that IP; use --ip otherwise)\n' "$ip"
fi
case $ip in *[!0-9A-Fa-f.:]*) die "--ip $ip is not an IP address" ;; esac
if [ -n "$ca" ] && [ ! -r "$ca" ]; then
	die "--ca $ca cannot be read"
fi
if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
	die "run as root (or give --root DIR)"
fi
command -v curl >/dev/null 2>&1 || command -v wget >/dev/null 2>&1 ||
	printf 'install.sh: warning: neither curl nor wget is installed; commands will wait in the spool until one is\n' >&2
command -v bash >/dev/null 2>&1 ||
	printf 'install.sh: warning: bash is not installed; only bash shells are recorded\n' >&2

# quote VALUE: VALUE as a single-quoted shell word.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

libexec=$root/usr/local/libexec/omaudit
umask 022
mkdir -p "$libexec" "$root/etc/omaudit" "$root/etc/profile.d" "$root/var/spool/omaudit"
cp "$here/omaudit-send" "$libexec/omaudit-send.new" && chmod 0755 "$libexec/omaudit-send.new" && mv "$libexec/omaudit-send.new" "$libexec/omaudit-send"
cp "$here/omaudit-hook.bash" "$libexec/omaudit-hook.bash.new" && chmod 0644 "$libexec/omaudit-hook.bash.new" && mv "$libexec/omaudit-hook.bash.new" "$libexec/omaudit-hook.bash"
chmod 1733 "$root/var/spool/omaudit"
conf=$root/etc/omaudit/omaudit.conf
{
	printf '# OMServer 安全审计 collector settings (written by install.sh; see omaudit-send for every setting)\n'
	printf 'OMAUDIT_URL=%s\n' "$(quote "$url")"
	printf 'OMAUDIT_TOKEN=%s\n' "$(quote "$token")"
	printf 'OMAUDIT_IP=%s\n' "$(quote "$ip")"
	[ -z "$ca" ] || printf 'OMAUDIT_CA=%s\n' "$(quote "$ca")"
} >"$conf.new"
chmod 0644 "$conf.new" && mv "$conf.new" "$conf"
# The hook goes in last, once everything it calls is in place.
cp "$here/omaudit.sh" "$root/etc/profile.d/omaudit.sh.new" && chmod 0644 "$root/etc/profile.d/omaudit.sh.new" &&
	mv "$root/etc/profile.d/omaudit.sh.new" "$root/etc/profile.d/omaudit.sh"

if [ -n "$bashrc" ]; then
	rc=$root/etc/bash.bashrc
	[ -e "$rc" ] || [ ! -e "$root/etc/bashrc" ] || rc=$root/etc/bashrc
	line='[ -r /etc/profile.d/omaudit.sh ] && . /etc/profile.d/omaudit.sh'
	if ! grep -qF "$line" "$rc" 2>/dev/null; then
		printf '\n# OMServer 安全审计 collector (non-login interactive bash)\n%s\n' "$line" >>"$rc"
	fi
fi
printf 'install.sh: installed; new interactive bash sessions report their commands to %s as %s\n' "$url" "$ip"
