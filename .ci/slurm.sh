#!/usr/bin/env bash
# A real SLURM cluster on this machine (one node, or several with --nodes), for the tests of the slurm executor.
#
#   .ci/slurm.sh start <dir> [--no-accounting] [--min-job-age S] [--nodes N]
#                              installs Debian's slurm-wlm, slurmdbd, munge and mariadb-server with apt-get
#                              when missing, writes a generated config under <dir>, starts munged, mariadbd
#                              (accounting database, so sacct works as on large clusters), slurmdbd, slurmctld
#                              and slurmd, and waits until `sinfo` shows the node idle. Everything the cluster
#                              writes (state, spool, logs, sockets, pid files, database) stays under <dir>.
#                              <dir>/cluster.env exports SLURM_CONF for clients (sbatch, squeue, sacct, …).
#                              --no-accounting: no database and no slurmdbd, as many small clusters run;
#                              sacct then answers "Slurm accounting storage is disabled".
#                              --min-job-age S: the controller forgets an ended job after S seconds
#                              (SLURM's MinJobAge, default 300; it purges about once a minute).
#                              --nodes N: N compute nodes (N > 1: <host>-n1 … <host>-nN, one slurmd each on this
#                              host, as Debian's build allows (MULTIPLE_SLURMD), each with its own port, spool,
#                              log and node-local tmpfs; each has the machine's 2 CPUs and its share of the memory),
#                              so that a job can span nodes. Their names do not resolve: NodeAddr is 127.0.0.1.
#   .ci/slurm.sh stop <dir>    cancels the cluster's jobs and stops its daemons.
#
# slurmd runs in a private mount namespace with a tmpfs over <dir>/node-local: that folder is
# node-local storage, not shared with the submitting side, so tests can check how sardine reports
# a cache directory the compute node does not see.
set -euo pipefail

packages=(slurm-wlm slurmdbd munge mariadb-server openssh-server openssh-client)
cluster=sardine-ci

install_missing() {
  local missing=0
  for program in slurmctld slurmd slurmdbd sbatch sacct munged mariadbd mariadb-install-db sshd ssh ssh-keygen; do
    command -v "$program" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$program" >/dev/null 2>&1 || missing=1
  done
  if [[ $missing -eq 1 ]]; then
    echo "installing ${packages[*]} with apt-get" >&2
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo -n)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >&2
  fi
}

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

wait_for() {
  local what="$1" log="$2" seconds="$3"
  shift 3
  local deadline=$(( $(date +%s) + seconds ))
  while (( $(date +%s) < deadline )); do
    if timeout 10 "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  echo "$what did not come up within $seconds s; last lines of $log:" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

start() {
  local dir="$1" accounting=yes min_job_age=300 nodes=1
  shift
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --no-accounting) accounting=no ;;
      --min-job-age) min_job_age="${2:?--min-job-age needs seconds}"; shift ;;
      --nodes) nodes="${2:?--nodes needs a count}"; shift ;;
      *) echo "unknown option: $1 (expected --no-accounting, --min-job-age S or --nodes N)" >&2; return 2 ;;
    esac
    shift
  done
  install_missing
  export PATH="$PATH:/usr/sbin"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if ! [[ $nodes =~ ^[1-9][0-9]*$ ]]; then
    echo "--nodes must be a count ≥ 1 (got $nodes)" >&2
    return 2
  fi
  if [[ -f "$dir/cluster.env" ]]; then
    echo "a cluster was already started in $dir (run stop first)" >&2
    return 1
  fi
  mkdir -p "$dir"/{etc,munge,state,spool,log,run,node-local}
  chmod 700 "$dir/munge"
  local host mem ctld_port slurmd_port node_lines="" names=()
  host="$(hostname -s)"
  # Leave a quarter of the memory to the rest of the machine.
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 3 / 4 ))
  ctld_port="$(free_port)"
  slurmd_port="$(free_port)"
  if [[ $nodes -eq 1 ]]; then
    names=("$host")
    node_lines="NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=$mem State=UNKNOWN"
  else
    local i
    for i in $(seq 1 "$nodes"); do
      names+=("$host-n$i")
      mkdir -p "$dir/spool/$host-n$i" "$dir/node-local/$host-n$i"
      node_lines+="NodeName=$host-n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$(free_port) CPUs=2 RealMemory=$(( mem / nodes )) State=UNKNOWN"$'\n'
    done
  fi

  # munge: a fresh key and a private socket, so this cluster shares nothing with a system munged.
  head -c 1024 /dev/urandom > "$dir/munge/munge.key"
  chmod 400 "$dir/munge/munge.key"
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed"
  wait_for munged "$dir/log/munged.log" 20 munge --socket="$dir/munge/munge.socket" -n

  local accounting_conf="AccountingStorageType=accounting_storage/none"
  if [[ $accounting == yes ]]; then accounting_conf="$(start_database "$dir" "$host")"; fi

  cat > "$dir/etc/slurm.conf" <<EOF
ClusterName=$cluster
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool$([[ $nodes -eq 1 ]] || echo /%n)
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd$([[ $nodes -eq 1 ]] || echo -%n).pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd$([[ $nodes -eq 1 ]] || echo -%n).log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
SlurmdParameters=config_overrides
$accounting_conf
JobCompType=jobcomp/none
# How long the controller keeps an ended job, visible to squeue and scontrol (SLURM's default: 300).
MinJobAge=$min_job_age
$node_lines
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/etc/slurm.conf"
  printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" > "$dir/cluster.env.tmp"

  if [[ $accounting == yes ]]; then
    setsid slurmdbd -D </dev/null >>"$dir/log/slurmdbd.log" 2>&1 &
    wait_for slurmdbd "$dir/log/slurmdbd.log" 120 sacctmgr -n list cluster
    sacctmgr -i add cluster "$cluster" >/dev/null
  fi

  setsid slurmctld -D -i </dev/null >>"$dir/log/slurmctld.log" 2>&1 &
  wait_for slurmctld "$dir/log/slurmctld.log" 120 scontrol ping
  # Each node's own mount namespace: its folder under <dir>/node-local is a tmpfs only its slurmd and jobs see.
  local name local_dir="$dir/node-local" node_log="$dir/log/slurmd.log"
  for name in "${names[@]}"; do
    if [[ $nodes -gt 1 ]]; then local_dir="$dir/node-local/$name" node_log="$dir/log/slurmd-$name.log"; fi
    setsid unshare --mount --propagation private sh -c \
      'mount -t tmpfs -o size=16m sardine-node-local "$1" && exec slurmd -D -N "$2"' sh "$local_dir" "$name" \
      </dev/null >>"$node_log" 2>&1 &
  done
  wait_for "the nodes" "$node_log" 120 sh -c '[ "$(sinfo -h -o %t)" = idle ]'
  start_login_node "$dir"
  mv "$dir/cluster.env.tmp" "$dir/cluster.env"
  echo "slurm cluster $cluster up, $nodes node(s), $([[ $accounting == yes ]] && echo with || echo without) accounting, MinJobAge=$min_job_age: SLURM_CONF=$SLURM_CONF" >&2
}

# mariadb, the accounting database slurmdbd keeps (sacct reads it), and slurmdbd's configuration.
# Prints slurm.conf's accounting lines.
start_database() {
  local dir="$1" host="$2" mysql_port dbd_port db_password
  mkdir -p "$dir/mysql"
  mysql_port="$(free_port)"
  dbd_port="$(free_port)"
  mariadb-install-db --no-defaults --datadir="$dir/mysql/data" --user="$(id -un)" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/log/mariadb-install.log" 2>&1
  setsid mariadbd --no-defaults --datadir="$dir/mysql/data" --socket="$dir/mysql/mysqld.sock" \
    --port="$mysql_port" --bind-address=127.0.0.1 --user="$(id -un)" --pid-file="$dir/run/mariadbd.pid" \
    --log-error="$dir/log/mariadbd.log" --innodb-buffer-pool-size=16M --innodb-lock-wait-timeout=900 --skip-log-bin \
    </dev/null >/dev/null 2>&1 &
  wait_for mariadbd "$dir/log/mariadbd.log" 120 mariadb --no-defaults --socket="$dir/mysql/mysqld.sock" -uroot -e "select 1"
  db_password="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mariadb --no-defaults --socket="$dir/mysql/mysqld.sock" -uroot -e \
    "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat > "$dir/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
DbdHost=$host
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=$(id -un)
PidFile=$dir/run/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$mysql_port
StorageUser=slurm
StoragePass=$db_password
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$dir/etc/slurmdbd.conf"
  # AccountingStoragePass: the munge socket for talking to slurmdbd (clients such as sacct read it too).
  printf '%s\n' "AccountingStorageType=accounting_storage/slurmdbd" "AccountingStorageHost=127.0.0.1" \
    "AccountingStoragePort=$dbd_port" "AccountingStoragePass=$dir/munge/munge.socket"
}

# sshd as the cluster's login node, the way users reach real clusters.
start_login_node() {
  local dir="$1" port user
  port="$(free_port)"
  user="$(id -un)"
  mkdir -p "$dir/ssh" /run/sshd
  chmod 700 "$dir/ssh"
  ssh-keygen -q -t ed25519 -N "" -C sardine-ci-host -f "$dir/ssh/host_key"
  ssh-keygen -q -t ed25519 -N "" -C sardine-ci-client -f "$dir/ssh/client_key"
  cp "$dir/ssh/client_key.pub" "$dir/ssh/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1-2 "$dir/ssh/host_key.pub")" > "$dir/ssh/known_hosts"
  cat > "$dir/ssh/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/ssh/host_key
PidFile $dir/run/sshd.pid
AuthorizedKeysFile $dir/ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
SetEnv SLURM_CONF=$dir/etc/slurm.conf
EOF
  cat > "$dir/ssh/config" <<EOF
Host sardine-login
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $dir/ssh/client_key
  IdentitiesOnly yes
  StrictHostKeyChecking yes
  UserKnownHostsFile $dir/ssh/known_hosts
  BatchMode yes
EOF
  "$(command -v sshd)" -f "$dir/ssh/sshd_config" -E "$dir/log/sshd.log"
  wait_for "the login node (sshd)" "$dir/log/sshd.log" 30 ssh -F "$dir/ssh/config" sardine-login sinfo
}

stop_pidfile() {
  local file="$1"
  [[ -f "$file" ]] || return 0
  local pid
  pid="$(cat "$file")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

stop() {
  local dir
  dir="$(cd "$1" && pwd)"
  export PATH="$PATH:/usr/sbin"
  export SLURM_CONF="$dir/etc/slurm.conf"
  if [[ -f "$dir/run/slurmctld.pid" ]]; then
    scancel --full --quiet --cluster="$cluster" --user="$(id -un)" 2>/dev/null || true
  fi
  stop_pidfile "$dir/run/sshd.pid"
  local pidfile
  for pidfile in "$dir"/run/slurmd*.pid; do stop_pidfile "$pidfile"; done
  stop_pidfile "$dir/run/slurmctld.pid"
  stop_pidfile "$dir/run/slurmdbd.pid"
  stop_pidfile "$dir/run/mariadbd.pid"
  stop_pidfile "$dir/munge/munged.pid"
  rm -f "$dir/cluster.env"
}

case "${1:-}" in
  start) shift; start "${1:?usage: $0 start <dir> [--no-accounting] [--min-job-age S] [--nodes N]}" "${@:2}" ;;
  stop) stop "${2:?usage: $0 stop <dir>}" ;;
  *) echo "usage: $0 start <dir> [--no-accounting] [--min-job-age S] [--nodes N] | stop <dir>" >&2; exit 2 ;;
esac
