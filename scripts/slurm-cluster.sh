#!/usr/bin/env bash
# slurm-cluster.sh - a private single-node Slurm cluster for partita's tests.
#
# Usage:  bash scripts/slurm-cluster.sh start    # idempotent; prints `export VAR='...'` lines
#         bash scripts/slurm-cluster.sh status   # exit 0 if every daemon runs, 3 otherwise
#         bash scripts/slurm-cluster.sh stop     # cancel jobs, stop the daemons we started
#
#   eval "$(bash scripts/slurm-cluster.sh start)"
#
# stdout carries only the export lines of `start` (and the report of `status`);
# every log line goes to stderr. The exports are also written to $DIR/slurm.env.
#
# What runs (all as root, all on 127.0.0.1, nothing under /etc or /run is touched):
#   munged     private key and socket under $DIR
#   mariadbd   datadir on tmpfs (fsync on the disk is slow), for slurmdbd
#   slurmdbd   accounting, so that `sacct` works
#   slurmctld  + slurmd: one node advertising $PARTITA_SLURM_CPUS CPUs, partition `debug`
#
# Settings (environment variables):
#   PARTITA_SLURM_DIR         state, config, logs and pid files     [/tmp/partita-slurm]
#   PARTITA_SLURM_CPUS        CPUs the node advertises (may exceed nproc)          [4]
#   PARTITA_SLURM_PORT_BASE   slurmctld port; slurmd +1, slurmdbd +2           [16917]
#   PARTITA_SLURM_DB_PORT     MariaDB port                                     [13406]
#   PARTITA_SLURM_WAIT        seconds allowed for each readiness check            [60]
#   PARTITA_SLURM_MIN_JOB_AGE seconds a finished job stays visible in squeue     [300]
#   PARTITA_SLURM_RESET=1     start from empty state (job ids, accounting, logs)
#   PARTITA_SLURM_NO_INSTALL=1  never call apt-get; fail when a program is missing
#
# Only processes whose pid is in $DIR/run/*.pid are ever signalled, and only while
# /proc/PID/comm still names the expected daemon. Nothing is killed by name.
set -euo pipefail
# The daemons live in /usr/sbin, which a test runner's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

DIR=${PARTITA_SLURM_DIR:-/tmp/partita-slurm}
CPUS=${PARTITA_SLURM_CPUS:-4}
PORT_BASE=${PARTITA_SLURM_PORT_BASE:-16917}
DB_PORT=${PARTITA_SLURM_DB_PORT:-13406}
WAIT=${PARTITA_SLURM_WAIT:-60}
MIN_JOB_AGE=${PARTITA_SLURM_MIN_JOB_AGE:-300}
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
CLUSTER=partita
PARTITION=debug
WARMUP_NAME=partita-slurm-warmup

ETC=$DIR/etc RUN=$DIR/run LOGS=$DIR/log
SOCKET=$RUN/munge.sock
DB_DIR=/dev/shm/partita-slurm-db-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
export SLURM_CONF=$ETC/slurm.conf

# The daemons in start order: "pidfile-name:comm".
DAEMONS=(munged:munged mariadb:mariadbd slurmdbd:slurmdbd slurmctld:slurmctld slurmd:slurmd)

T_START=$(date +%s%N)
log() {
  local ms=$((($(date +%s%N) - T_START) / 1000000))
  printf '[slurm-cluster %3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2
}
die() {
  log "ERROR: $*"
  exit 1
}

# shquote WORD -> WORD in single quotes, readable by sh and by Python's shlex.split
shquote() {
  local q="'\\''"
  printf "'%s'" "${1//\'/$q}"
}

# ------------------------------------------------------------------ processes

# pid_of NAME -> the pid recorded in $RUN/NAME.pid (empty if none)
pid_of() {
  [ -s "$RUN/$1.pid" ] || return 0
  tr -dc '0-9' <"$RUN/$1.pid"
}

# live PID -> success if PID exists and is not a zombie. PID 1 here reaps orphans
# slowly, so a daemon that has exited can linger as a zombie for about a second.
live() {
  local state
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# running NAME COMM -> success if the recorded pid is live and still runs COMM
running() {
  local pid
  pid=$(pid_of "$1")
  [ -n "$pid" ] && live "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# terminate NAME COMM -> SIGTERM, wait up to 15 s, then SIGKILL; removes the pid file
terminate() {
  local name=$1 comm=$2 pid i
  if running "$name" "$comm"; then
    pid=$(pid_of "$name")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do live "$pid" || break; sleep 0.05; done
    if live "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then
      log "$comm (pid $pid) still there 15 s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do live "$pid" || break; sleep 0.05; done
    fi
    log "stopped $comm (pid $pid)"
  fi
  rm -f "$RUN/$name.pid"
}

# until_ok WHAT CMD... -> run CMD every 0.1 s until it succeeds, for at most $WAIT s
until_ok() {
  local what=$1 deadline=$(($(date +%s) + WAIT))
  shift
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "gave up waiting for $what after ${WAIT}s"
      return 1
    fi
    sleep 0.1
  done
}

# port_taken PORT -> success if something accepts connections on 127.0.0.1:PORT
port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# daemon LOGNAME CMD... -> run CMD detached from our stdin/stdout/stderr and from the
# lock (fd 9), so that `eval "$(slurm-cluster.sh start)"` and pipes return at once.
daemon() {
  local logname=$1
  shift
  "$@" </dev/null >>"$LOGS/$logname.out" 2>&1 9>&-
}

with_lock() {
  mkdir -p "$DIR"
  exec 9>>"$DIR/.lock"
  flock -w 600 9 || die "another slurm-cluster.sh holds $DIR/.lock for 10 minutes"
}

# ------------------------------------------------------------------ install

install_packages() {
  local -a missing=()
  command -v munged >/dev/null || missing+=(munge)
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v slurmdbd >/dev/null || missing+=(slurmdbd)
  { command -v mariadbd && command -v mariadb-install-db; } >/dev/null || missing+=(mariadb-server-core)
  command -v mariadb >/dev/null || missing+=(mariadb-client-core)
  [ ${#missing[@]} -eq 0 ] && return 0

  [ "${PARTITA_SLURM_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${missing[*]} (PARTITA_SLURM_NO_INSTALL=1)"
  [ "$(id -u)" = 0 ] || die "missing packages: ${missing[*]}; run as root to install them with apt-get"
  command -v apt-get >/dev/null || die "missing packages: ${missing[*]} and no apt-get to install them"

  local aptlog=$DIR/apt.log policy_added=0 mandb_moved=0
  log "installing ${missing[*]} (log: $aptlog)"
  # Maintainer scripts must not start system-wide munge/slurm services: a policy-rc.d
  # that answers 101 forbids it (container images usually ship one). man-db's trigger
  # costs several seconds per install: park its flag file meanwhile. Both are put back
  # by restore_system, also when the install fails.
  restore_system() {
    if [ "$policy_added" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$mandb_moved" = 1 ]; then mv -f /var/lib/man-db/auto-update.partita /var/lib/man-db/auto-update; fi
    policy_added=0 mandb_moved=0
  }
  trap restore_system EXIT
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  if [ -e /var/lib/man-db/auto-update ]; then
    mv /var/lib/man-db/auto-update /var/lib/man-db/auto-update.partita
    mandb_moved=1
  fi
  local -a apt=(apt-get -y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
  # The package lists on the machine are often recent enough: try them first.
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >"$aptlog" 2>&1; then
    log "install failed with the current package lists: apt-get update, then again"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >>"$aptlog" 2>&1 || true
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >>"$aptlog" 2>&1; then
      tail -n 20 "$aptlog" >&2
      die "apt-get install ${missing[*]} failed (log: $aptlog)"
    fi
  fi
  restore_system
  trap - EXIT
  log "installed ${missing[*]}"
}

# ------------------------------------------------------------------ configuration

# write_if_changed FILE CONTENT -> success (0) if the file was (re)written
write_if_changed() {
  if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
    return 1
  fi
  printf '%s\n' "$2" >"$1"
}

# hw_field NAME -> the value of NAME=... in `slurmd -C` output
hw_field() {
  sed -n "s/.*[[:space:]]$1=\([0-9]*\).*/\1/p" <<<" $HARDWARE" | head -n 1
}

write_slurm_conf() {
  local host mem node_cpus
  host=$(hostname -s)
  HOST=$host
  HARDWARE=$(slurmd -C 2>/dev/null | head -n 1 || true)
  mem=$(hw_field RealMemory)
  [ -n "$mem" ] || mem=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
  # Leave 1 GiB to the machine, so that slurmd never finds less than it was promised.
  [ "$mem" -gt 2048 ] && mem=$((mem - 1024))
  # Advertising more CPUs than the machine has needs config_overrides, and an explicit
  # socket/core layout avoids "reconfigured socket/core boundaries" warnings.
  node_cpus="CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1"

  CONF_CHANGED=0
  if write_if_changed "$ETC/slurm.conf" "$(
    cat <<EOF
# Written by partita's scripts/slurm-cluster.sh on every start: edits are lost.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, every job would take the whole node's memory.
DefMemPerCPU=1024
SchedulerType=sched/backfill
# Batch jobs start on slurmctld's 1 s background pass; the default 3 s
# batch_sched_delay would make every job wait about 3 s.
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
# Impossible requests (too many CPUs, too much memory) fail at sbatch time
# instead of pending forever.
EnforcePartLimits=ALL
# Memory limits without cgroups: poll every second, kill jobs over --mem.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# The munge socket for slurmctld/sacct/sacctmgr -> slurmdbd.
AccountingStoragePass=$SOCKET
JobCompType=jobcomp/filetxt
JobCompLoc=$LOGS/jobcomp.log
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
KillWait=5
InactiveLimit=0
MailProg=/bin/true
SlurmdParameters=config_overrides
NodeName=$host NodeAddr=127.0.0.1 $node_cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  )"; then
    CONF_CHANGED=1
  fi

  DBD_CHANGED=0
  # slurmdbd reads slurmdbd.conf from the directory of $SLURM_CONF; it must be 0600.
  if write_if_changed "$ETC/slurmdbd.conf" "$(
    cat <<EOF
AuthType=auth/munge
AuthInfo=socket=$SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
  )"; then
    DBD_CHANGED=1
  fi
  chmod 600 "$ETC/slurmdbd.conf"
}

# ------------------------------------------------------------------ daemons

check_port_free() { # check_port_free PORT WHO
  if port_taken "$1"; then
    die "port $1 on 127.0.0.1 (for $2) is used by another program; set PARTITA_SLURM_PORT_BASE or PARTITA_SLURM_DB_PORT"
  fi
}

start_munged() {
  if running munged munged; then return 0; fi
  if [ ! -s "$DIR/munge/munge.key" ]; then
    head -c 1024 /dev/urandom >"$DIR/munge/munge.key"
    chmod 400 "$DIR/munge/munge.key"
  fi
  rm -f "$SOCKET" "$SOCKET.lock" "$RUN/munged.pid"
  daemon munged munged --key-file="$DIR/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$RUN/munged.pid" --log-file="$LOGS/munged.log" \
    --seed-file="$DIR/munge/seed" --num-threads=4 ||
    die "munged did not start (see $LOGS/munged.log, $LOGS/munged.out)"
  # shellcheck disable=SC2016  # $1 is expanded by the inner sh, on purpose
  until_ok munged sh -c 'munge -n -S "$1" | unmunge -S "$1"' sh "$SOCKET" ||
    die "munged does not answer (see $LOGS/munged.log)"
  log "munged started (pid $(pid_of munged))"
}

db_sql() {
  mariadb --no-defaults --socket="$RUN/mysqld.sock" -u root "$@"
}

start_mariadb() {
  if ! running mariadb mariadbd; then
    check_port_free "$DB_PORT" mariadbd
    if [ ! -d "$DB_DIR/mysql" ]; then
      rm -rf "$DB_DIR"
      mariadb-install-db --no-defaults --datadir="$DB_DIR" --user=root --skip-test-db \
        --auth-root-authentication-method=socket >"$LOGS/mariadb-install.log" 2>&1 ||
        { tail -n 20 "$LOGS/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
      log "MariaDB datadir created in $DB_DIR"
    fi
    ln -sfn "$DB_DIR" "$DIR/mysql"
    rm -f "$RUN/mariadb.pid" "$RUN/mysqld.sock"
    # mariadbd stays in the foreground: setsid -f puts it in its own session.
    daemon mariadb setsid -f mariadbd --no-defaults --datadir="$DB_DIR" --user=root \
      --socket="$RUN/mysqld.sock" --port="$DB_PORT" --bind-address=127.0.0.1 \
      --pid-file="$RUN/mariadb.pid" --log-error="$LOGS/mariadb.log" \
      --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
      --innodb-log-file-size=32M --innodb-lock-wait-timeout=900
    until_ok mariadbd db_sql -e 'SELECT 1' || die "mariadbd does not answer (see $LOGS/mariadb.log)"
    log "mariadbd started (pid $(pid_of mariadb))"
  fi
  db_sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  if [ "$DBD_CHANGED" = 1 ] && running slurmdbd slurmdbd; then
    log "slurmdbd.conf changed: restarting slurmdbd"
    terminate slurmdbd slurmdbd
  fi
  if ! running slurmdbd slurmdbd; then
    check_port_free "$DBD_PORT" slurmdbd
    rm -f "$RUN/slurmdbd.pid"
    daemon slurmdbd slurmdbd || die "slurmdbd did not start (see $LOGS/slurmdbd.log, $LOGS/slurmdbd.out)"
    until_ok slurmdbd sacctmgr -n show cluster || die "slurmdbd does not answer (see $LOGS/slurmdbd.log)"
    log "slurmdbd started (pid $(pid_of slurmdbd))"
  fi
  if ! sacctmgr -n -P show cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    log "cluster $CLUSTER registered in slurmdbd"
  fi
}

node_ready() {
  local state
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null) || return 1
  case $state in
    idle* | mixed* | allocated* | completing*) return 0 ;;
    down* | drain* | fail*)
      # Left over from an unclean stop: bring the node back.
      scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
      return 1
      ;;
    *) return 1 ;;
  esac
}

warm_up() {
  # slurmctld reads batch_sched_delay on its first scheduling pass only; until then
  # its built-in 3 s applies. One job gets it past that pass, and proves that the
  # whole sbatch path (munge, slurmd, slurmstepd, accounting) works.
  local job state
  job=$(cd / && sbatch --parsable -J "$WARMUP_NAME" -t 1 -o /dev/null -e /dev/null --wrap true 2>&1) ||
    die "warm-up sbatch failed: $job"
  job=${job%%;*}
  warm_done() {
    state=$(squeue -h -t all -j "$job" -o %T 2>/dev/null)
    case $state in PENDING | CONFIGURING | RUNNING | COMPLETING | "") return 1 ;; esac
  }
  until_ok "warm-up job $job" warm_done || true
  state=$(squeue -h -t all -j "$job" -o '%T %r' 2>&1 || true)
  [ "${state%% *}" = COMPLETED ] ||
    die "warm-up job $job is '$state' (see $LOGS/slurmctld.log, $LOGS/slurmd.log)"
  log "warm-up job $job completed"
}

start_slurm() {
  if [ "$CONF_CHANGED" = 1 ] && { running slurmctld slurmctld || running slurmd slurmd; }; then
    log "slurm.conf changed: restarting slurmctld and slurmd"
    terminate slurmd slurmd
    terminate slurmctld slurmctld
  fi
  local ctld_started=0
  if ! running slurmctld slurmctld; then
    check_port_free "$CTLD_PORT" slurmctld
    rm -f "$RUN/slurmctld.pid"
    daemon slurmctld slurmctld || die "slurmctld did not start (see $LOGS/slurmctld.log, $LOGS/slurmctld.out)"
    ctld_started=1
    log "slurmctld started"
  fi
  if ! running slurmd slurmd; then
    check_port_free "$SLURMD_PORT" slurmd
    rm -f "$RUN/slurmd.pid"
    daemon slurmd slurmd || die "slurmd did not start (see $LOGS/slurmd.log, $LOGS/slurmd.out)"
    log "slurmd started"
  fi
  until_ok slurmctld sh -c 'scontrol ping | grep -q UP' ||
    die "slurmctld does not answer (see $LOGS/slurmctld.log)"
  until_ok "node $HOST" node_ready ||
    die "node $HOST not ready: $(sinfo -h -N -o '%N %T %E' 2>&1) (see $LOGS/slurmd.log)"
  [ "$ctld_started" = 1 ] && warm_up
  log "slurmctld (pid $(pid_of slurmctld)) and slurmd (pid $(pid_of slurmd)) up"
}

# ------------------------------------------------------------------ subcommands

cmd_start() {
  [ "$(id -u)" = 0 ] || die "the cluster runs its daemons as root: run this as root"
  with_lock
  install_packages
  if [ "${PARTITA_SLURM_RESET:-0}" = 1 ]; then
    local entry
    for entry in "${DAEMONS[@]}"; do
      running "${entry%%:*}" "${entry#*:}" && die "PARTITA_SLURM_RESET=1 while ${entry#*:} runs: stop first"
    done
    log "reset: removing the state, the database and the logs"
    rm -rf "$DIR/state" "$DIR/spool" "$LOGS" "$RUN" "$DIR/mysql" "$DB_DIR"
  fi
  mkdir -p "$ETC" "$RUN" "$LOGS" "$DIR/state" "$DIR/spool" "$DIR/munge"
  # munged refuses a socket directory that is not searchable by everyone.
  chmod 755 "$DIR" "$RUN" "$ETC"
  chmod 700 "$DIR/munge"
  log "state in $DIR, slurm $(slurmctld -V | cut -d' ' -f2), ports $CTLD_PORT-$DBD_PORT and $DB_PORT"
  write_slurm_conf
  start_munged
  start_mariadb
  start_slurmdbd
  start_slurm
  {
    printf 'export SLURM_CONF=%s\n' "$(shquote "$SLURM_CONF")"
    printf 'export PARTITA_SLURM_DIR=%s\n' "$(shquote "$DIR")"
  } >"$DIR/slurm.env"
  log "ready: $(sinfo -h -o '%P %a %D nodes, %c CPUs, %T')"
  cat "$DIR/slurm.env"
}

cmd_stop() {
  if [ ! -d "$RUN" ]; then
    log "nothing to stop in $DIR"
    return 0
  fi
  with_lock
  if running slurmctld slurmctld && [ -f "$SLURM_CONF" ]; then
    # Cancel through Slurm first, so that slurmstepd and the job processes end too.
    local jobs
    jobs=$(timeout 10 squeue -h -t PD,CF,R,S,CG -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// /}" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      timeout 10 scancel $jobs 2>/dev/null || true
      local i
      for ((i = 0; i < 150; i++)); do
        [ -z "$(timeout 5 squeue -h -t CF,R,S,CG -o %A 2>/dev/null)" ] && break
        sleep 0.1
      done
    fi
  fi
  local n entry
  # Reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged.
  for ((n = ${#DAEMONS[@]} - 1; n >= 0; n--)); do
    entry=${DAEMONS[$n]}
    terminate "${entry%%:*}" "${entry#*:}"
  done
  rm -f "$SOCKET" "$SOCKET.lock" "$RUN/mysqld.sock"
  log "stopped"
}

cmd_status() {
  local entry name comm all=0 pid
  for entry in "${DAEMONS[@]}"; do
    name=${entry%%:*} comm=${entry#*:}
    if running "$name" "$comm"; then
      pid=$(pid_of "$name")
      printf '%-10s running (pid %s)\n' "$comm" "$pid"
    else
      printf '%-10s stopped\n' "$comm"
      all=3
    fi
  done
  if [ "$all" = 0 ]; then
    printf 'SLURM_CONF=%s\n' "$SLURM_CONF"
    sinfo -h -o 'partition %P: %D node(s), %c CPUs, %T' 2>&1 || all=3
  fi
  return "$all"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 start|stop|status   (see the comment at the top of this script)" >&2
    exit 2
    ;;
esac
