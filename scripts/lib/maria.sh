# shellcheck shell=bash
# Helpers for a private MariaDB 10.11 server run as the mysql user, for
# scripts/maria-run and scripts/db-crash-loop: install a data directory,
# start mariadbd --no-defaults on a private socket directory and a
# 127.0.0.1 port (compiled-in defaults otherwise: O_DIRECT flush method,
# doublewrite, innodb_flush_log_at_trx_commit=1), stop it cleanly or kill
# it, and the bank-transfer load with its checks.
# Every wait has a timeout. The caller registers cfs_maria_stop_or_kill with
# cfs_on_exit (scripts/lib/common.sh) so the server never outlives a script.
#
# State (set by cfs_maria_setup DATADIR RUNDIR):
#   CFS_MY_DATA  data directory (on the mount)
#   CFS_MY_RUN   socket, pid file and error log (off the mount, mode 0755)
#   CFS_MY_PORT  127.0.0.1 port
# Source it after common.sh; it does not change shell options.

CFS_MY_USER=${CFS_MY_USER:-mysql}
# shellcheck source=dbserver.sh
source "$(dirname "${BASH_SOURCE[0]}")/dbserver.sh"

cfs_maria_setup() { # DATADIR RUNDIR
  CFS_MY_DATA=$1 CFS_MY_RUN=$2
  CFS_MY_PORT=$(cfs_free_port)
  command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]] ||
    cfs_die "mariadbd not found (install mariadb-server: scripts/lib/deps.sh test)"
  id "$CFS_MY_USER" >/dev/null 2>&1 || cfs_die "no $CFS_MY_USER user (install mariadb-server)"
  install -d -o "$CFS_MY_USER" -g "$CFS_MY_USER" -m 755 "$CFS_MY_RUN"
}

cfs_maria_bin() { if [[ -x /usr/sbin/mariadbd ]]; then echo /usr/sbin/mariadbd; else command -v mariadbd; fi; }

# Runs a client as root over the private socket (unix_socket auth for root).
cfs_maria_sql() { mariadb --no-defaults -uroot -S "$CFS_MY_RUN/sock" -N -B "$@"; }

# cfs_as_mysql CMD...: runs CMD as the mysql user (exec, no fork). Everything
# that touches the data directory runs as mysql: with a daemon run by mysql
# (no allow_other) even root gets EACCES on the mount.
cfs_as_mysql() { setpriv --reuid="$CFS_MY_USER" --regid="$(id -g "$CFS_MY_USER")" --init-groups -- "$@"; }

cfs_maria_install() { # mariadb-install-db into CFS_MY_DATA, as the mysql user
  # Root creates it under a root daemon (allow_other); under a daemon run by
  # mysql root gets EACCES on the mount, and mysql creates it.
  install -d -o "$CFS_MY_USER" -g "$CFS_MY_USER" -m 750 "$CFS_MY_DATA" 2>/dev/null ||
    cfs_as_mysql mkdir -m 750 "$CFS_MY_DATA"
  [[ $(cfs_as_mysql stat -c %U "$CFS_MY_DATA") == "$CFS_MY_USER" ]] || cfs_die "$CFS_MY_DATA is not owned by $CFS_MY_USER"
  cfs_as_mysql mariadb-install-db --no-defaults --datadir="$CFS_MY_DATA" \
    --auth-root-authentication-method=socket --skip-test-db >"$CFS_MY_RUN/install.log" 2>&1 ||
    { tail -30 "$CFS_MY_RUN/install.log" >&2; cfs_die "mariadb-install-db failed"; }
}

cfs_maria_pid() { cat "$CFS_MY_RUN/mariadbd.pid" 2>/dev/null || true; }

# cfs_maria_start [TIMEOUT_S]: starts mariadbd as mysql and waits until it
# answers. Fails (with the error log) if it exits or does not answer in time.
cfs_maria_start() {
  local t=${1:-180} i pid
  rm -f "$CFS_MY_RUN/mariadbd.pid"
  # Run as mysql from the start; --no-defaults: compiled-in settings only.
  setsid setpriv --reuid="$CFS_MY_USER" --regid="$(id -g "$CFS_MY_USER")" --init-groups -- \
    "$(cfs_maria_bin)" --no-defaults --datadir="$CFS_MY_DATA" \
    --socket="$CFS_MY_RUN/sock" --port="$CFS_MY_PORT" --bind-address=127.0.0.1 \
    --pid-file="$CFS_MY_RUN/mariadbd.pid" --log-error="$CFS_MY_RUN/error.log" \
    </dev/null >>"$CFS_MY_RUN/stdout.log" 2>&1 &
  pid=$!
  disown "$pid" 2>/dev/null || true
  echo "$pid" >"$CFS_MY_RUN/launcher.pid"
  for ((i = 0; i < t * 5; i++)); do
    if mariadb-admin --no-defaults -uroot -S "$CFS_MY_RUN/sock" ping >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -40 "$CFS_MY_RUN/error.log" >&2
      cfs_die "mariadbd exited during startup"
    fi
    sleep 0.2
  done
  tail -40 "$CFS_MY_RUN/error.log" >&2
  cfs_die "mariadbd did not answer within ${t}s"
}

# cfs_maria_stop: clean shutdown (innodb_fast_shutdown default), or SIGKILL
# after a timeout. Returns 1 if a kill was needed.
cfs_maria_stop() {
  local pid
  pid=$(cfs_maria_running)
  [[ -n $pid ]] || return 0
  cfs_stop_server mariadbd "$pid" 180 cfs_maria_kill mariadb-admin --no-defaults -uroot -S "$CFS_MY_RUN/sock" --shutdown-timeout=120 shutdown
}

# cfs_maria_kill: SIGKILL of the server (a crash), waits until it is gone.
cfs_maria_kill() {
  local pid
  pid=$(cat "$CFS_MY_RUN/launcher.pid" 2>/dev/null || true)
  [[ -n $pid ]] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  cfs_wait_gone "$pid" 60 || cfs_say "warning: mariadbd $pid still present after SIGKILL (stuck in the kernel?)"
  return 0
}

cfs_maria_stop_or_kill() { cfs_maria_stop || true; }

# ---------------------------------------------------------- bank load --
# Table bank.accounts(id, balance): N accounts of 1000. Each transfer moves
# an amount between two accounts inside one transaction (rows locked in id
# order: no deadlocks) and inserts its id into bank.transfers. A worker
# prints "ACK id" only after COMMIT returned; acks go to files off the mount.

cfs_maria_bank_init() { # ACCOUNTS
  local n=$1
  cfs_maria_sql -e "CREATE DATABASE bank;
    USE bank;
    CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
    CREATE TABLE bank.transfers (id BIGINT PRIMARY KEY, src INT NOT NULL, dst INT NOT NULL,
      amount INT NOT NULL, pad VARCHAR(200)) ENGINE=InnoDB;
    INSERT INTO bank.accounts SELECT seq, 1000 FROM seq_1_to_$n;" ||
    cfs_die "bank schema creation failed"
}

# One worker: batches of transfers through one client per batch until STOPFILE exists.
# Transfer ids: round * 10^12 + worker * 10^9 + batch * 100 + i, unique
# across the load's restarts (a reused id would fail every batch).
cfs_maria_bank_worker() { # W ACCOUNTS ACKFILE STOPFILE SEED ROUND
  local w=$1 n=$2 ack=$3 stop=$4 seed=$5 round=$6 batch=0
  while [[ ! -e $stop ]]; do
    awk -v w="$w" -v n="$n" -v b="$batch" -v seed="$seed" -v r="$round" 'BEGIN {
      srand(seed + w * 7919 + b);
      for (i = 0; i < 100; i++) {
        id = sprintf("%d%03d%09d", r, w, b * 100 + i);
        a = 1 + int(rand() * n); c = 1 + int(rand() * n); if (a == c) c = (c % n) + 1;
        lo = a < c ? a : c; hi = a < c ? c : a; amt = 1 + int(rand() * 50);
        sa = (a == lo) ? -amt : amt;
        printf "START TRANSACTION;\n";
        printf "UPDATE bank.accounts SET balance = balance + %d WHERE id = %d;\n", sa, lo;
        printf "UPDATE bank.accounts SET balance = balance + %d WHERE id = %d;\n", -sa, hi;
        printf "INSERT INTO bank.transfers VALUES (%d, %d, %d, %d, REPEAT(\"x\", 150));\n", id, a, c, amt;
        printf "COMMIT;\nSELECT \"ACK %d\";\n", id;
      }
    }' | cfs_maria_sql -n >>"$ack" 2>>"$ack.err" || sleep 0.5
    batch=$((batch + 1))
  done
}

# cfs_maria_bank_start WORKERS ACCOUNTS DIR SEED: starts workers in the
# background; acks in DIR/ack.W; PIDs in CFS_MY_WORKERS. Each start is a new
# round (counted in DIR/round).
cfs_maria_bank_start() {
  local workers=$1 n=$2 dir=$3 seed=$4 w round
  rm -f "$dir/stop"
  round=$(($(cat "$dir/round" 2>/dev/null || echo 0) + 1))
  echo "$round" >"$dir/round"
  CFS_MY_WORKERS=()
  for ((w = 1; w <= workers; w++)); do
    cfs_maria_bank_worker "$w" "$n" "$dir/ack.$w" "$dir/stop" "$seed" "$round" &
    CFS_MY_WORKERS+=($!)
  done
}

cfs_maria_bank_stop() { # DIR: asks the workers to stop, waits (60 s), then kills them
  cfs_stop_clients "$1/stop" 60 "${CFS_MY_WORKERS[@]}"
  CFS_MY_WORKERS=()
}

cfs_maria_acked() { # DIR: acknowledged transfer ids, sorted
  cat "$1"/ack.* 2>/dev/null | awk '$1 == "ACK" {print $2}' | sort -u
}

# cfs_maria_bank_check ACCOUNTS DIR: the total is unchanged, every account's
# balance matches its logged transfers, every acknowledged transfer exists.
cfs_maria_bank_check() {
  local n=$1 dir=$2 total bad acked missing nt
  total=$(cfs_maria_sql -e "SELECT sum(balance), count(*) FROM bank.accounts") || cfs_die "cannot read accounts"
  [[ $total == "$((n * 1000))"$'\t'"$n" ]] || cfs_die "bank total changed: got '$total', want $((n * 1000)) over $n accounts"
  bad=$(cfs_maria_sql -e "SELECT count(*) FROM bank.accounts a LEFT JOIN
      (SELECT acct, sum(d) s FROM (SELECT dst acct, amount d FROM bank.transfers
                                   UNION ALL SELECT src, -amount FROM bank.transfers) x GROUP BY acct) t
      ON t.acct = a.id WHERE a.balance <> 1000 + coalesce(t.s, 0)") || cfs_die "cannot cross-check transfers"
  [[ $bad == 0 ]] || cfs_die "$bad account balance(s) disagree with the transfers log"
  cfs_maria_acked "$dir" >"$dir/acked.sorted"
  cfs_maria_sql -e "SELECT id FROM bank.transfers" | sort -u >"$dir/present.sorted" || cfs_die "cannot read transfers"
  acked=$(wc -l <"$dir/acked.sorted")
  nt=$(wc -l <"$dir/present.sorted")
  missing=$(comm -23 "$dir/acked.sorted" "$dir/present.sorted" | wc -l)
  if ((missing > 0)); then
    comm -23 "$dir/acked.sorted" "$dir/present.sorted" | head -5 >&2
    cfs_die "$missing acknowledged transfer(s) missing (of $acked acknowledged, $nt present)"
  fi
  cfs_say "bank ok: total $((n * 1000)), balances match $nt logged transfers, all $acked acknowledged present"
}

# cfs_maria_check_online: mariadb-check --extended over every database.
cfs_maria_check_online() {
  mariadb-check --no-defaults -uroot -S "$CFS_MY_RUN/sock" --extended --all-databases >"$CFS_MY_RUN/check.log" 2>&1 ||
    { cat "$CFS_MY_RUN/check.log" >&2; cfs_die "mariadb-check failed"; }
  if grep -Eqi 'error|corrupt|warning' "$CFS_MY_RUN/check.log"; then
    cat "$CFS_MY_RUN/check.log" >&2
    cfs_die "mariadb-check reported problems"
  fi
  cfs_say "mariadb-check --extended: $(grep -c 'OK$' "$CFS_MY_RUN/check.log") tables OK"
}

# cfs_maria_check_offline: innochecksum on ibdata1 and every .ibd (server
# stopped). ibdata1's pages 64-191 are the doublewrite buffer (two extents of
# copies of other pages); innochecksum flags them even on ext4, so ibdata1
# is checked below and above that range.
cfs_maria_check_offline() {
  local f n=0
  [[ -z $(cfs_maria_running) ]] || cfs_die "innochecksum needs the server stopped"
  cfs_innochecksum -e 63 "$CFS_MY_DATA/ibdata1"
  cfs_innochecksum -s 192 "$CFS_MY_DATA/ibdata1"
  while IFS= read -r -d '' f; do
    cfs_innochecksum "$f"
    n=$((n + 1))
  done < <(cfs_as_mysql find "$CFS_MY_DATA" -name '*.ibd' -print0)
  ((n > 0)) || cfs_die "innochecksum found no .ibd files (check is broken)"
  cfs_say "innochecksum: ibdata1 and $n .ibd files clean"
}
cfs_innochecksum() { # [OPTIONS] FILE
  cfs_as_mysql innochecksum "$@" >"$CFS_MY_RUN/innochecksum.log" 2>&1 ||
    { cat "$CFS_MY_RUN/innochecksum.log" >&2; cfs_die "innochecksum: bad pages in ${*: -1}"; }
}

cfs_maria_running() {
  local pid
  pid=$(cat "$CFS_MY_RUN/launcher.pid" 2>/dev/null || true)
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}
