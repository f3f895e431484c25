#!/bin/sh
# Runs deploy/nginx.native.conf in the foreground on loopback, in a private prefix directory:
#
#     deploy/nginx-native.sh PREFIX_DIR LISTEN_PORT GATEWAY1_PORT GATEWAY2_PORT [--test]
#
# PREFIX_DIR gets nginx.conf (rendered), the two shared includes, logs/ (error.log, access.log,
# nginx.pid) and tmp/. The script execs nginx, so the process id you started is nginx's master:
# stop it with SIGTERM (or SIGQUIT to let open requests finish). --test only checks the
# configuration (nginx -t) and exits. Needs /usr/sbin/nginx (Debian: apt-get install nginx-light)
# or NGINX=/path/to/nginx.
set -eu

usage() { echo "usage: $0 PREFIX_DIR LISTEN_PORT GATEWAY1_PORT GATEWAY2_PORT [--test]" >&2; exit 64; }
[ $# -ge 4 ] || usage
prefix=$1 listen=$2 gw1=$3 gw2=$4
mode=${5:-run}
for port in "$listen" "$gw1" "$gw2"; do
  case "$port" in ''|*[!0-9]*) echo "$0: not a port: '$port'" >&2; exit 64;; esac
done

here=$(cd "$(dirname "$0")" && pwd)
nginx=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$nginx" ] || { echo "$0: nginx not found (Debian: apt-get install nginx-light, or set NGINX=)" >&2; exit 69; }

mkdir -p "$prefix/logs" "$prefix/tmp"
prefix=$(cd "$prefix" && pwd)
sed -e "s/\${LISTEN_PORT}/$listen/g" -e "s/\${GATEWAY1_PORT}/$gw1/g" -e "s/\${GATEWAY2_PORT}/$gw2/g" \
  "$here/nginx.native.conf" > "$prefix/nginx.conf"
cp "$here/nginx-gateway-maps.conf" "$here/nginx-gateway-routes.conf" "$prefix/"

if [ "$mode" = "--test" ]; then
  exec "$nginx" -t -q -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log"
fi
exec "$nginx" -p "$prefix/" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log"
