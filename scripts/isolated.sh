#!/bin/sh
# Runs a command in a new network namespace with only the loopback interface up, when root can;
# otherwise runs it as it is. The tests' Milvus server binds every interface: inside such a
# namespace nothing outside this machine's loopback can reach it.
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    exec unshare --net sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
exec "$@"
