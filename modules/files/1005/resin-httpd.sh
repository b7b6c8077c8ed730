#!/bin/sh
# /usr/local/resin/bin/httpd.sh, synced by OMServer module 1005 (option
# "resinhttpd"): the classic Resin start script, delegating to resin.sh.
# Example: replace with your fleet's script.
RESIN_HOME=${RESIN_HOME:-/usr/local/resin}
JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/default-java}
export RESIN_HOME JAVA_HOME

if [ ! -x "$RESIN_HOME/bin/resin.sh" ]; then
    echo "httpd.sh: $RESIN_HOME/bin/resin.sh not found" >&2
    exit 1
fi

case "$1" in
    start|stop|restart|status)
        exec "$RESIN_HOME/bin/resin.sh" -conf "$RESIN_HOME/conf/resin.xml" "$1"
        ;;
    *)
        echo "usage: $0 {start|stop|restart|status}" >&2
        exit 2
        ;;
esac
