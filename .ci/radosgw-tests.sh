#!/usr/bin/env bash
# Recipe uploads against a real S3: a throwaway one-node Ceph (mon + memstore OSD) with radosgw
# on 127.0.0.1:7480, whose bucket notifications the test receives over HTTP on loopback
# (test/radosgw/). Meant to run in a private network namespace (`unshare -n --fork`, as .ci/run
# does), where its fixed ports cannot collide with anything on the host. The cluster lives in a
# scratch dir that is removed afterwards; every daemon is stopped by its PID, also on failure.
# Needs the Debian packages radosgw ceph-mon ceph-osd ceph-common.
set -euo pipefail
cd "$(dirname "$0")/.."
ip link set lo up 2>/dev/null || true # down in a fresh namespace; already up on the host

C=$(mktemp -d /tmp/ims-radosgw.XXXXXX)
DAEMONS=(client.rgw.a:radosgw osd.0:ceph-osd mon.a:ceph-mon)

# Stops each daemon by the PID in its pid file (only if that PID still runs that daemon), then
# removes the scratch dir. The OSD can take a few seconds to free its memstore.
stop_cluster() {
  local status=$? entry name comm pid
  if [ "$status" -ne 0 ] && [ -d "$C/log" ]; then
    for log in "$C"/log/*.log; do echo "--- tail of $log" >&2; tail -n 5 "$log" >&2 || true; done
  fi
  for entry in "${DAEMONS[@]}"; do
    name=${entry%%:*}
    comm=${entry##*:}
    pid=$(cat "$C/run/$name.pid" 2>/dev/null) || continue
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || continue
    kill "$pid"
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  done
  rm -rf "$C"
  exit "$status"
}
trap stop_cluster EXIT

wait_for_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$1 after 60 s" >&2
  return 1
}

# A throwaway single-node Ceph as its documentation builds one by hand: auth is off inside the
# cluster only; the S3 edge still checks SigV4 signatures.
start_cluster() {
  mkdir -p "$C"/{run,log,mon.a,osd.0,rgw}
  local fsid osd_uuid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$C/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:6789
mon initial members = a
public addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = 1073741824
osd crush chooseleaf type = 0
# The OSD does not place itself in the CRUSH map at start (the mon command it sends for that
# races with its first monmap and fails with 'wrong fsid' on a busy machine): the script places
# it before starting it.
osd crush update on start = false
osd class update on start = false
osd data = $C/osd.\$id
mon data = $C/mon.\$id
run dir = $C/run
admin socket = $C/run/\$name.asok
log file = $C/log/\$name.log
pid file = $C/run/\$name.pid
mon warn on pool no redundancy = false
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:7480
rgw data = $C/rgw
CONF
  cd "$C"
  monmaptool --create --add a 127.0.0.1:6789 --fsid "$fsid" monmap >/dev/null
  ceph-mon -c ceph.conf --mkfs -i a --monmap monmap
  ceph-mon -c ceph.conf -i a
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  timeout 60 ceph -c ceph.conf osd new "$osd_uuid" >/dev/null
  timeout 60 ceph -c ceph.conf osd crush add-bucket localhost host >/dev/null 2>&1
  timeout 60 ceph -c ceph.conf osd crush move localhost root=default >/dev/null 2>&1
  timeout 60 ceph -c ceph.conf osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
  ceph-osd -c ceph.conf -i 0 --mkfs --osd-uuid "$osd_uuid" 2>/dev/null
  # The OSD sometimes dies at its first start (a start-up race with the mon): try again.
  for i in 1 2 3 4 5; do
    ceph-osd -c ceph.conf -i 0 2>/dev/null && sleep 1 && kill -0 "$(cat run/osd.0.pid)" 2>/dev/null && break
    echo "osd start attempt $i failed" >&2
    sleep 1
  done
  kill -0 "$(cat run/osd.0.pid)" 2>/dev/null || { echo "the OSD did not start" >&2; return 1; }
  radosgw -c ceph.conf -n client.rgw.a
  wait_for_port 7480
  radosgw-admin -c ceph.conf -n client.rgw.a user create --uid=ims --display-name=ims \
    --access-key=LOCALACCESSKEY --secret=LOCALSECRETKEY0123456789 >/dev/null
  cd - >/dev/null
}

# Seconds since a `date +%s%N` stamp, with one decimal.
elapsed() {
  local ms=$((($(date +%s%N) - $1) / 1000000))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

started=$(date +%s%N)
start_cluster
echo "Ceph + radosgw ready in $(elapsed "$started") s"
ready=$(date +%s%N)

export S3_ENDPOINT=http://127.0.0.1:7480 S3_ACCESS_KEY=LOCALACCESSKEY S3_SECRET_KEY=LOCALSECRETKEY0123456789
# The default test run leaves test/radosgw out (jest.config.js); naming it here brings it in.
npm test -- test/radosgw --testPathIgnorePatterns=/node_modules/
echo "radosgw tests took $(elapsed "$ready") s"
