#!/usr/bin/env bash
# local-cluster.sh runs on loopback what deployments/docker-compose.yml runs in
# containers: a 3-node NATS JetStream cluster and two instances each of
# command-api, query-api and projector, with stream and bucket at 3 replicas.
# It waits until every process is ready, prints the addresses, and runs until
# SIGINT or SIGTERM; then it stops the services, then the NATS nodes, and
# exits 0 (1 if a process did not stop cleanly).
#
# Usage (from anywhere; `make cluster` runs `up`):
#   deployments/local-cluster.sh [up]   build bin/, start everything, wait
#   deployments/local-cluster.sh nats   only the three NATS nodes
#   deployments/local-cluster.sh render only write the node configs into $CLUSTER_DIR
#
# Environment:
#   CLUSTER_DIR          configs, JetStream stores and logs  (<repo>/data/cluster)
#   CLUSTER_PORT_OFFSET  added to every port below           (0)
#   CLUSTER_TIMEOUT      seconds each process may take to be ready (60)
#   CLUSTER_BUILD        1: go build into $BIN first; 0: use $BIN as it is (1)
#   BIN                  directory of the binaries           (<repo>/bin)
#   GO                   the go command                      (go)
#
# Ports (+ CLUSTER_PORT_OFFSET), all on 127.0.0.1:
#   nats-1..3     clients 4222-4224, routes 6222-6224, monitoring 8222-8224
#   command-api   8080, 8090     query-api   8081, 8091     projector   8082, 8092
#
# Data survives a restart; remove $CLUSTER_DIR to start from nothing. Stopping
# one NATS node by hand (kill <pid> from the table) shows a failover: the
# script reports it and keeps the rest running.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-up}
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/data/cluster}
OFFSET=${CLUSTER_PORT_OFFSET:-0}
TIMEOUT=${CLUSTER_TIMEOUT:-60}
BUILD=${CLUSTER_BUILD:-1}
BIN=${BIN:-$ROOT/bin}
GO=${GO:-go}
STOP_TIMEOUT=30

case $MODE in
up | nats | render) ;;
-h | --help | help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
	exit 0
	;;
*)
	echo "local-cluster.sh: unknown mode \"$MODE\" (up, nats or render)" >&2
	exit 2
	;;
esac
# non_negative name value: exit 2 unless value is a non-negative integer.
non_negative() {
	if ! [[ $2 =~ ^[0-9]+$ ]]; then
		echo "local-cluster.sh: $1 must be a non-negative integer, not \"$2\"" >&2
		exit 2
	fi
}
non_negative CLUSTER_PORT_OFFSET "$OFFSET"
non_negative CLUSTER_TIMEOUT "$TIMEOUT"
if ((OFFSET + 8224 > 65535)); then
	echo "local-cluster.sh: CLUSTER_PORT_OFFSET $OFFSET puts ports above 65535" >&2
	exit 2
fi

mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
LOG_DIR=$CLUSTER_DIR/logs
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac

NODES=(nats-1 nats-2 nats-3)
client_port() { echo $((4222 + $1 + OFFSET)); }
route_port() { echo $((6222 + $1 + OFFSET)); }
monitor_port() { echo $((8222 + $1 + OFFSET)); }
NATS_URL=""
for i in 0 1 2; do
	NATS_URL+="${NATS_URL:+,}nats://127.0.0.1:$(client_port "$i")"
done

# name process base-port: two instances of each, at base and base+10.
SERVICES=(
	"command-api-1 command-api 8080"
	"command-api-2 command-api 8090"
	"query-api-1 query-api 8081"
	"query-api-2 query-api 8091"
	"projector-1 projector 8082"
	"projector-2 projector 8092"
)

say() { printf 'local-cluster: %s\n' "$*"; }
die() {
	printf 'local-cluster: %s\n' "$*" >&2
	exit 1
}

# sed_escape makes $1 safe as the replacement of s|...|...|.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
# conf_escape makes $1 safe inside a double-quoted NATS config string.
conf_escape() { printf '%s' "$1" | sed -e 's/[\\"]/\\&/g'; }

render_configs() {
	local tmpl=$ROOT/deployments/nats/local.conf.tmpl i name store
	[[ -r $tmpl ]] || die "missing $tmpl"
	for i in 0 1 2; do
		name=${NODES[i]}
		store=$CLUSTER_DIR/$name
		mkdir -p "$store"
		sed -e "s|@NAME@|$name|g" \
			-e "s|@CLIENT_PORT@|$(client_port "$i")|g" \
			-e "s|@CLUSTER_PORT@|$(route_port "$i")|g" \
			-e "s|@HTTP_PORT@|$(monitor_port "$i")|g" \
			-e "s|@ROUTE_PORT_1@|$(route_port 0)|g" \
			-e "s|@ROUTE_PORT_2@|$(route_port 1)|g" \
			-e "s|@ROUTE_PORT_3@|$(route_port 2)|g" \
			-e "s|@STORE_DIR@|$(sed_escape "$(conf_escape "$store")")|g" \
			"$tmpl" >"$CLUSTER_DIR/$name.conf.tmp"
		if grep -q '@[A-Z0-9_]*@' "$CLUSTER_DIR/$name.conf.tmp"; then
			die "$tmpl has a placeholder this script does not fill: $(grep -o '@[A-Z0-9_]*@' "$CLUSTER_DIR/$name.conf.tmp" | head -n1)"
		fi
		mv "$CLUSTER_DIR/$name.conf.tmp" "$CLUSTER_DIR/$name.conf"
	done
}

if [[ $MODE == render ]]; then
	render_configs
	say "wrote $CLUSTER_DIR/nats-1.conf, nats-2.conf, nats-3.conf"
	exit 0
fi

# http_status prints the HTTP status code of GET $1 (000 if there is no answer),
# with curl when installed, otherwise with bash's /dev/tcp.
if command -v curl >/dev/null 2>&1; then
	http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }
else
	http_status() {
		local rest=${1#http://} hostport path code
		hostport=${rest%%/*}
		path=/${rest#*/}
		code=$(
			exec 2>/dev/null
			exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || exit 0
			printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$hostport" >&3
			IFS=' ' read -r -t 2 _ code _ <&3 && printf '%s' "$code"
		) || true
		printf '%s' "${code:-000}"
	}
fi

# port_busy reports whether something already listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Processes we started, in start order.
NAMES=()
PIDS=()
KINDS=()
REAPED=() # 1 once the exit of the process has been reported

# start name kind command... runs the command in the background in a session
# of its own, so that a Ctrl-C in the terminal reaches only this script, which
# then stops the services before the NATS nodes.
start() {
	local name=$1 kind=$2
	shift 2
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
	else
		"$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
	fi
	NAMES+=("$name")
	PIDS+=("$!")
	KINDS+=("$kind")
	REAPED+=(0)
}

# stop_kind kind: SIGTERM to every live process of that kind, then wait for
# each (SIGKILL after $STOP_TIMEOUT s). Returns 1 if one did not exit 0.
# shellcheck disable=SC2317 # runs from the traps
stop_kind() {
	local kind=$1 i status rc=0 deadline
	for i in "${!PIDS[@]}"; do
		if [[ ${KINDS[i]} == "$kind" && ${REAPED[i]} == 0 ]]; then
			kill -TERM "${PIDS[i]}" 2>/dev/null || true
		fi
	done
	for i in "${!PIDS[@]}"; do
		[[ ${KINDS[i]} == "$kind" && ${REAPED[i]} == 0 ]] || continue
		deadline=$((SECONDS + STOP_TIMEOUT))
		while kill -0 "${PIDS[i]}" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "${PIDS[i]}" 2>/dev/null; then
			say "${NAMES[i]} (pid ${PIDS[i]}) did not stop within ${STOP_TIMEOUT}s; killing it"
			kill -KILL "${PIDS[i]}" 2>/dev/null || true
		fi
		status=0
		wait "${PIDS[i]}" 2>/dev/null || status=$?
		REAPED[i]=1
		if ((status == 0)); then
			say "stopped ${NAMES[i]}"
		else
			say "stopped ${NAMES[i]}: exit status $status (log: $LOG_DIR/${NAMES[i]}.log)"
			rc=1
		fi
	done
	return "$rc"
}

# shutdown stops the services, then the NATS nodes, and exits.
# shellcheck disable=SC2317 # runs from the traps
shutdown() {
	local rc=$1 clean=1
	trap - EXIT
	trap 'say "still stopping"' INT TERM
	if ((${#PIDS[@]} > 0)); then
		say "stopping"
		stop_kind service || clean=0
		stop_kind nats || clean=0
	fi
	if ((rc == 0 && !clean)); then rc=1; fi
	exit "$rc"
}
trap 'shutdown 0' INT TERM
trap 'shutdown $?' EXIT

# reap reports processes that exited on their own; returns 1 if none is left.
reap() {
	local i status alive=0
	for i in "${!PIDS[@]}"; do
		[[ ${REAPED[i]} == 0 ]] || continue
		if kill -0 "${PIDS[i]}" 2>/dev/null; then
			alive=1
			continue
		fi
		status=0
		wait "${PIDS[i]}" 2>/dev/null || status=$?
		REAPED[i]=1
		say "${NAMES[i]} (pid ${PIDS[i]}) exited with status $status; log: $LOG_DIR/${NAMES[i]}.log"
	done
	((alive))
}

# wait_ready name url: poll url until it answers 200, the process dies or
# $TIMEOUT s pass.
wait_ready() {
	local name=$1 url=$2 i pid="" deadline=$((SECONDS + TIMEOUT))
	for i in "${!NAMES[@]}"; do
		[[ ${NAMES[i]} == "$name" ]] && pid=${PIDS[i]}
	done
	until [[ $(http_status "$url") == 200 ]]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$LOG_DIR/$name.log" >&2 || true
			die "$name exited before $url answered 200 (log: $LOG_DIR/$name.log)"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 20 "$LOG_DIR/$name.log" >&2 || true
			die "$name: $url did not answer 200 within ${TIMEOUT}s (log: $LOG_DIR/$name.log)"
		fi
		sleep 0.2
	done
}

# Every port must be free before anything starts.
ports=()
for i in 0 1 2; do ports+=("$(client_port "$i")" "$(route_port "$i")" "$(monitor_port "$i")"); done
if [[ $MODE == up ]]; then
	for s in "${SERVICES[@]}"; do
		read -r _ _ base <<<"$s"
		ports+=("$((base + OFFSET))")
	done
fi
for p in "${ports[@]}"; do
	if port_busy "$p"; then
		die "127.0.0.1:$p is already in use (another cluster or \`make run\`? CLUSTER_PORT_OFFSET moves every port)"
	fi
done

if [[ $BUILD == 1 ]]; then
	say "building $BIN"
	(
		cd "$ROOT"
		"$GO" build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
		if [[ $MODE == up ]]; then "$GO" build -o "$BIN/" ./cmd/command-api ./cmd/query-api ./cmd/projector; fi
	)
fi
binaries=(nats-server)
[[ $MODE == up ]] && binaries+=(command-api query-api projector)
for b in "${binaries[@]}"; do
	[[ -x $BIN/$b ]] || die "$BIN/$b is missing (run \`make build\` or leave CLUSTER_BUILD=1)"
done

render_configs
mkdir -p "$LOG_DIR"

for i in 0 1 2; do
	start "${NODES[i]}" nats "$BIN/nats-server" -c "$CLUSTER_DIR/${NODES[i]}.conf"
done
# First JetStream on every node, then a formed cluster: plain /healthz
# answers 200 only once the node knows the JetStream meta leader.
for i in 0 1 2; do
	wait_ready "${NODES[i]}" "http://127.0.0.1:$(monitor_port "$i")/healthz?js-enabled-only=true"
done
for i in 0 1 2; do
	wait_ready "${NODES[i]}" "http://127.0.0.1:$(monitor_port "$i")/healthz"
done
say "NATS cluster inkstream is up: $NATS_URL"

if [[ $MODE == up ]]; then
	for s in "${SERVICES[@]}"; do
		read -r name process base <<<"$s"
		start "$name" service env \
			INKSTREAM_NATS_URL="$NATS_URL" \
			INKSTREAM_STREAM_REPLICAS=3 \
			INKSTREAM_KV_REPLICAS=3 \
			INKSTREAM_LISTEN="127.0.0.1:$((base + OFFSET))" \
			INKSTREAM_NATS_NAME="$name" \
			"$BIN/$process"
	done
	for s in "${SERVICES[@]}"; do
		read -r name _ base <<<"$s"
		wait_ready "$name" "http://127.0.0.1:$((base + OFFSET))/readyz"
	done
fi

echo
printf '%-14s %-28s %-30s %s\n' NAME ADDRESS MONITORING PID
for i in 0 1 2; do
	printf '%-14s %-28s %-30s %s\n' "${NODES[i]}" "nats://127.0.0.1:$(client_port "$i")" \
		"http://127.0.0.1:$(monitor_port "$i")" "${PIDS[i]}"
done
if [[ $MODE == up ]]; then
	j=3
	for s in "${SERVICES[@]}"; do
		read -r name _ base <<<"$s"
		printf '%-14s %-28s %-30s %s\n' "$name" "http://127.0.0.1:$((base + OFFSET))" \
			"http://127.0.0.1:$((base + OFFSET))/metrics" "${PIDS[j]}"
		j=$((j + 1))
	done
fi
cat <<EOF

Logs, configs and JetStream stores: $CLUSTER_DIR
NATS CLI (clients without credentials are the inkstream account; server commands need the system user):
  nats --server $NATS_URL --user sys --password sys server list
  nats --server $NATS_URL stream info ARTICLES
  nats context save inkstream-local --server $NATS_URL --select   # then plain \`nats stream ls\`
Services use NATS_URL=$NATS_URL, stream and KV replicas 3.
EOF
say "ready; Ctrl-C (SIGINT) or SIGTERM stops the services, then the NATS nodes"

# Wait in the background so that a signal runs the trap at once.
while reap; do
	sleep 1 &
	wait $! || true
done
say "every process has exited"
trap - EXIT
exit 1
