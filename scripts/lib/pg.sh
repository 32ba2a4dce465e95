# shellcheck shell=bash
# Helpers for a private PostgreSQL 15 server run as the postgres user, for
# scripts/db-crash-loop: initdb with data checksums, start on a private
# socket directory and a 127.0.0.1 port (default settings), stop cleanly or
# kill, the load (pgbench TPC-B plus an acknowledged-id client) and the
# checks (pgbench invariants, acknowledged ids, pg_amcheck, pg_checksums).
# Every wait has a timeout; the caller registers cfs_pg_stop_or_kill with
# cfs_on_exit (scripts/lib/common.sh).
#
# State (set by cfs_pg_setup DATADIR RUNDIR):
#   CFS_PG_DATA  data directory (on the mount)
#   CFS_PG_RUN   socket, logs, postmaster pid copy (off the mount, mode 0755)
#   CFS_PG_PORT  127.0.0.1 port
# Source it after common.sh; it does not change shell options.

CFS_PG_BIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
# shellcheck source=dbserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/dbserver.sh"

cfs_pg_setup() { # DATADIR RUNDIR
  CFS_PG_DATA=$1 CFS_PG_RUN=$2
  CFS_PG_PORT=$(cfs_free_port)
  [[ -x $CFS_PG_BIN/initdb ]] || cfs_die "PostgreSQL 15 not found in $CFS_PG_BIN (scripts/lib/deps.sh test)"
  id postgres >/dev/null 2>&1 || cfs_die "no postgres user (install postgresql-15)"
  install -d -o postgres -g postgres -m 755 "$CFS_PG_RUN"
}

cfs_as_pg() { runuser -u postgres -- "$@"; }
cfs_pg_sql() { # psql -At on database bench (or -d DB)
  cfs_as_pg "$CFS_PG_BIN/psql" -X -q -At -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" -v ON_ERROR_STOP=1 "$@"
}

cfs_pg_initdb() {
  # Root creates it under a root daemon (allow_other); under a daemon run by
  # postgres root gets EACCES on the mount, and postgres creates it.
  install -d -o postgres -g postgres -m 700 "$CFS_PG_DATA" 2>/dev/null || cfs_as_pg mkdir -m 700 "$CFS_PG_DATA"
  [[ $(cfs_as_pg stat -c %U "$CFS_PG_DATA") == postgres ]] || cfs_die "$CFS_PG_DATA is not owned by postgres"
  cfs_as_pg "$CFS_PG_BIN/initdb" -D "$CFS_PG_DATA" --data-checksums --auth=trust -U postgres \
    >"$CFS_PG_RUN/initdb.log" 2>&1 || { tail -30 "$CFS_PG_RUN/initdb.log" >&2; cfs_die "initdb failed"; }
}

# cfs_pg_start [TIMEOUT_S]: default settings except where the server
# listens; waits until it accepts connections (crash recovery included).
cfs_pg_start() {
  local t=${1:-300}
  cfs_as_pg "$CFS_PG_BIN/pg_ctl" -D "$CFS_PG_DATA" -l "$CFS_PG_RUN/postgres.log" -w -t "$t" \
    -o "-c listen_addresses=127.0.0.1 -p $CFS_PG_PORT -k $CFS_PG_RUN" start >/dev/null ||
    { tail -40 "$CFS_PG_RUN/postgres.log" >&2; cfs_die "PostgreSQL did not start"; }
  # The pid file is on the mount; keep a copy off it (a dead mount hides it).
  cfs_as_pg head -1 "$CFS_PG_DATA/postmaster.pid" >"$CFS_PG_RUN/postmaster.pid"
}

cfs_pg_pm() { # the postmaster's PID if it is running
  local pid
  pid=$(cat "$CFS_PG_RUN/postmaster.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# cfs_pg_kill: SIGKILL of the postmaster and of every server process (a
# crash); waits until all are gone, so a restart does not find the old
# shared memory in use.
cfs_pg_kill() {
  local pm kids p
  pm=$(cfs_pg_pm)
  [[ -n $pm ]] || return 0
  kids=$(pgrep -P "$pm" || true)
  kill -KILL "$pm" 2>/dev/null || true
  for p in $kids; do kill -KILL "$p" 2>/dev/null || true; done
  cfs_wait_gone "$pm" 60 || cfs_say "warning: postmaster $pm still present after SIGKILL"
  for p in $kids; do cfs_wait_gone "$p" 60 || cfs_say "warning: backend $p still present after SIGKILL"; done
  rm -f "$CFS_PG_RUN/postmaster.pid"
}

# cfs_pg_stop [MODE]: pg_ctl stop (fast by default); SIGKILL if that fails.
cfs_pg_stop() {
  local mode=${1:-fast} pm rc=0
  pm=$(cfs_pg_pm)
  [[ -n $pm ]] || return 0
  cfs_stop_server postmaster "$pm" 60 cfs_pg_kill cfs_as_pg "$CFS_PG_BIN/pg_ctl" -D "$CFS_PG_DATA" -m "$mode" -w -t 180 stop ||
    rc=1
  rm -f "$CFS_PG_RUN/postmaster.pid"
  return "$rc"
}
cfs_pg_stop_or_kill() { cfs_pg_stop immediate || true; }

# ---------------------------------------------------------------- load --
# pgbench -i, plus table acked(id) for the acknowledged-id client.
cfs_pg_load_init() { # SCALE
  cfs_as_pg "$CFS_PG_BIN/createdb" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" bench || cfs_die "createdb failed"
  cfs_as_pg "$CFS_PG_BIN/pgbench" -i -s "$1" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" bench \
    >"$CFS_PG_RUN/pgbench-init.log" 2>&1 || { tail -20 "$CFS_PG_RUN/pgbench-init.log" >&2; cfs_die "pgbench -i failed"; }
  cfs_pg_sql -d bench -c "CREATE TABLE acked (id bigint PRIMARY KEY, pad text)" || cfs_die "cannot create acked"
  echo 0 >"$CFS_PG_RUN/processed.total"
}

# The acknowledged-id client: autocommit INSERTs; "ACK id" is printed only
# after the INSERT returned (psql stops at the first error).
cfs_pg_ack_client() { # ACKFILE STOPFILE BASE
  local ack=$1 stop=$2 base=$3 batch=0
  while [[ ! -e $stop ]]; do
    awk -v b="$batch" -v base="$base" 'BEGIN {
      for (i = 0; i < 200; i++) { id = base + b * 200 + i;
        printf "INSERT INTO acked VALUES (%d, repeat(%s, 100));\n\\echo ACK %d\n", id, "'\''a'\''", id } }' |
      cfs_pg_sql -d bench >>"$ack" 2>>"$ack.err" || sleep 0.5
    batch=$((batch + 1))
  done
}

# cfs_pg_load_start CLIENTS DURATION DIR ROUND: pgbench (TPC-B) and the
# ack client in the background (PIDs in CFS_PG_LOADERS).
cfs_pg_load_start() {
  local clients=$1 duration=$2 dir=$3 round=$4
  rm -f "$dir/stop"
  CFS_PG_LOADERS=()
  # -n: no vacuum and, above all, no TRUNCATE pgbench_history before the run
  # (the history must keep every round's rows for the invariants).
  cfs_as_pg "$CFS_PG_BIN/pgbench" -n -c "$clients" -j 2 -T "$duration" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" bench \
    >"$dir/pgbench.$round.log" 2>&1 &
  CFS_PG_LOADERS+=($!)
  cfs_pg_ack_client "$dir/ack.$round" "$dir/stop" $((round * 1000000000)) &
  CFS_PG_LOADERS+=($!)
}

# cfs_pg_load_stop DIR ROUND: waits for pgbench (it ends at -T or when the
# server goes away), stops the ack client, adds pgbench's processed count.
cfs_pg_load_stop() {
  local dir=$1 round=$2 processed total
  cfs_stop_clients "$dir/stop" 120 "${CFS_PG_LOADERS[@]}"
  CFS_PG_LOADERS=()
  processed=$(awk '/number of transactions actually processed/ {split($NF, a, "/"); print a[1]}' "$dir/pgbench.$round.log")
  [[ $processed =~ ^[0-9]+$ ]] || { tail -20 "$dir/pgbench.$round.log" >&2; cfs_die "no processed count in pgbench's output"; }
  total=$(cat "$CFS_PG_RUN/processed.total")
  echo $((total + processed)) >"$CFS_PG_RUN/processed.total"
  cfs_say "pgbench round $round: $processed transactions acknowledged"
}

# cfs_pg_check_online DIR CLIENTS ROUNDS: invariants, acknowledged ids, pg_amcheck.
cfs_pg_check_online() {
  local dir=$1 clients=$2 rounds=$3 sums sa st sb sd nh processed acked missing
  sums=$(cfs_pg_sql -d bench -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts), (SELECT sum(tbalance) FROM pgbench_tellers),
      (SELECT sum(bbalance) FROM pgbench_branches), (SELECT coalesce(sum(delta),0) FROM pgbench_history),
      (SELECT count(*) FROM pgbench_history)") || cfs_die "cannot read the pgbench tables"
  IFS='|' read -r sa st sb sd nh <<<"$sums"
  [[ $sa == "$st" && $st == "$sb" && $sb == "$sd" ]] || cfs_die "pgbench balance invariant broken: $sums"
  processed=$(cat "$CFS_PG_RUN/processed.total")
  # Every acknowledged transaction is durable; at most one unacknowledged
  # commit per client per interrupted round may have made it too.
  ((nh >= processed)) || cfs_die "history has $nh rows but pgbench acknowledged $processed: commits lost"
  ((nh <= processed + clients * rounds)) || cfs_die "history has $nh rows, more than $processed acknowledged + in flight"
  cat "$dir"/ack.* 2>/dev/null | awk '$1 == "ACK" {print $2}' | sort -u >"$dir/acked.sorted"
  cfs_pg_sql -d bench -c "SELECT id FROM acked" | sort -u >"$dir/present.sorted" || cfs_die "cannot read acked"
  acked=$(wc -l <"$dir/acked.sorted")
  missing=$(comm -23 "$dir/acked.sorted" "$dir/present.sorted" | wc -l)
  ((missing == 0)) || cfs_die "$missing acknowledged id(s) missing (of $acked)"
  ((acked > 0)) || cfs_die "the ack client acknowledged nothing (load broken)"
  cfs_say "pg ok: sums $sa, $nh history rows for $processed acknowledged, all $acked acknowledged ids present"
  cfs_as_pg "$CFS_PG_BIN/pg_amcheck" -h "$CFS_PG_RUN" -p "$CFS_PG_PORT" --install-missing --heapallindexed \
    --parent-check -d bench >"$CFS_PG_RUN/amcheck.log" 2>&1 ||
    { cat "$CFS_PG_RUN/amcheck.log" >&2; cfs_die "pg_amcheck found problems"; }
  cfs_say "pg_amcheck --heapallindexed --parent-check: clean"
}

# cfs_pg_check_offline: pg_checksums --check on the cleanly stopped cluster.
cfs_pg_check_offline() {
  [[ -z $(cfs_pg_pm) ]] || cfs_die "pg_checksums needs the server stopped"
  cfs_as_pg "$CFS_PG_BIN/pg_checksums" --check -D "$CFS_PG_DATA" >"$CFS_PG_RUN/checksums.log" 2>&1 ||
    { cat "$CFS_PG_RUN/checksums.log" >&2; cfs_die "pg_checksums found bad blocks"; }
  cfs_say "pg_checksums: $(grep -E 'Blocks scanned' "$CFS_PG_RUN/checksums.log" | tr -s ' '), no bad checksum"
}
