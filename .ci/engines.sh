#!/usr/bin/env bash
# Start, stop and inspect single-node OpenSearch and Elasticsearch test engines
# on 127.0.0.1, without Docker.
#
# Usage: bash .ci/engines.sh start|stop|status [opensearch] [elasticsearch]
#
# With no engine named, the command applies to both. `start` writes progress to
# stderr and only `export ENRICHER_TEST_..._URL=http://127.0.0.1:PORT` lines to
# stdout, so a caller can run:  eval "$(bash .ci/engines.sh start)"
#
# The engines are the integ-test-zip distributions from Maven Central: a server
# with a few modules and no bundled JDK, so they run on a separate JDK 21+.
# Each distribution is fetched with Maven and unpacked once into the cache.
# Every `start` of a stopped engine copies it into the run directory with empty
# data and logs, so each start begins with an empty cluster.
#
# Environment variables (default in brackets):
#   ENRICHER_OPENSEARCH_VERSION             OpenSearch version [3.8.0]
#   ENRICHER_ELASTICSEARCH_VERSION          Elasticsearch version [9.5.4]
#   ENRICHER_OPENSEARCH_HTTP_PORT           [9250]
#   ENRICHER_OPENSEARCH_TRANSPORT_PORT      [9350]
#   ENRICHER_ELASTICSEARCH_HTTP_PORT        [9251]
#   ENRICHER_ELASTICSEARCH_TRANSPORT_PORT   [9351]
#   ENRICHER_ENGINE_CACHE          unpacked distributions [$HOME/.cache/enricher-engines]
#   ENRICHER_ENGINE_RUN            engine copies, data, logs and pid files [/tmp/enricher-engines]
#   ENRICHER_ENGINE_USER           account that runs the engines when this script
#                                  runs as root, created if missing [enricher-engine]
#   ENRICHER_ENGINE_JAVA_HOME      JDK 21+ for the engines [newest JDK 21+ in /usr/lib/jvm]
#   ENRICHER_ENGINE_HEAP           JVM heap size, used for -Xms and -Xmx [512m]
#   ENRICHER_ENGINE_START_TIMEOUT  seconds from launch until every engine must
#                                  report yellow cluster health [180]
#   ENRICHER_ENGINE_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL [60]
#
# Maven Central returned "not found" for the integ-test-zip of OpenSearch 3.9.0
# and of Elasticsearch 9.5.6, 9.5.5 and 9.3.0 when these defaults were chosen,
# so the defaults are 3.8.0 and 9.5.4, the versions that resolved and started.

set -euo pipefail
umask 022

readonly OPENSEARCH_VERSION=${ENRICHER_OPENSEARCH_VERSION:-3.8.0}
readonly ELASTICSEARCH_VERSION=${ENRICHER_ELASTICSEARCH_VERSION:-9.5.4}
readonly OPENSEARCH_HTTP_PORT=${ENRICHER_OPENSEARCH_HTTP_PORT:-9250}
readonly OPENSEARCH_TRANSPORT_PORT=${ENRICHER_OPENSEARCH_TRANSPORT_PORT:-9350}
readonly ELASTICSEARCH_HTTP_PORT=${ENRICHER_ELASTICSEARCH_HTTP_PORT:-9251}
readonly ELASTICSEARCH_TRANSPORT_PORT=${ENRICHER_ELASTICSEARCH_TRANSPORT_PORT:-9351}
readonly CACHE_DIR=${ENRICHER_ENGINE_CACHE:-$HOME/.cache/enricher-engines}
readonly RUN_DIR=${ENRICHER_ENGINE_RUN:-/tmp/enricher-engines}
readonly ENGINE_USER=${ENRICHER_ENGINE_USER:-enricher-engine}
readonly HEAP=${ENRICHER_ENGINE_HEAP:-512m}
readonly START_TIMEOUT=${ENRICHER_ENGINE_START_TIMEOUT:-180}
readonly STOP_TIMEOUT=${ENRICHER_ENGINE_STOP_TIMEOUT:-60}

readonly HOST=127.0.0.1
readonly MIN_JAVA_MAJOR=21
# Pinned so that fetching does not depend on the plugin version that the
# installed Maven picks by default.
readonly DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1
readonly ALL_ENGINES=(opensearch elasticsearch)

log() {
    echo "engines.sh: $*" >&2
}

die() {
    echo "engines.sh: error: $*" >&2
    exit 1
}

is_root() {
    [[ $(id -u) -eq 0 ]]
}

# Set the ENGINE_* globals that describe engine $1.
select_engine() {
    case "$1" in
        opensearch)
            ENGINE_NAME=opensearch
            ENGINE_LABEL=OpenSearch
            ENGINE_GROUP=org.opensearch.distribution.integ-test-zip
            ENGINE_VERSION=$OPENSEARCH_VERSION
            ENGINE_HTTP_PORT=$OPENSEARCH_HTTP_PORT
            ENGINE_TRANSPORT_PORT=$OPENSEARCH_TRANSPORT_PORT
            ENGINE_ENV_PREFIX=OPENSEARCH  # OPENSEARCH_JAVA_HOME, OPENSEARCH_JAVA_OPTS, ...
            ENGINE_HOME_PROPERTY=opensearch.path.home
            ENGINE_URL_VARIABLE=ENRICHER_TEST_OPENSEARCH_URL
            ;;
        elasticsearch)
            ENGINE_NAME=elasticsearch
            ENGINE_LABEL=Elasticsearch
            ENGINE_GROUP=org.elasticsearch.distribution.integ-test-zip
            ENGINE_VERSION=$ELASTICSEARCH_VERSION
            ENGINE_HTTP_PORT=$ELASTICSEARCH_HTTP_PORT
            ENGINE_TRANSPORT_PORT=$ELASTICSEARCH_TRANSPORT_PORT
            ENGINE_ENV_PREFIX=ES  # ES_JAVA_HOME, ES_JAVA_OPTS, ...
            ENGINE_HOME_PROPERTY=es.path.home
            ENGINE_URL_VARIABLE=ENRICHER_TEST_ELASTICSEARCH_URL
            ;;
        *)
            die "unknown engine '$1'; expected one of: ${ALL_ENGINES[*]}"
            ;;
    esac
    ENGINE_DIR=$RUN_DIR/$ENGINE_NAME
    ENGINE_HOME=$ENGINE_DIR/home
    ENGINE_PID_FILE=$ENGINE_DIR/$ENGINE_NAME.pid
    ENGINE_LAUNCHER_LOG=$ENGINE_DIR/launcher.log
    ENGINE_CLUSTER_NAME=enricher-$ENGINE_NAME
    ENGINE_URL=http://$HOST:$ENGINE_HTTP_PORT
}

# Reject value $2 of environment variable $1 unless it is a whole number.
check_whole_number() {
    [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a whole number, got '$2'"
}

check_port() {
    check_whole_number "$1" "$2"
    ((10#$2 >= 1 && 10#$2 <= 65535)) || die "$1 must be a port number from 1 to 65535, got '$2'"
}

check_settings() {
    check_port ENRICHER_OPENSEARCH_HTTP_PORT "$OPENSEARCH_HTTP_PORT"
    check_port ENRICHER_OPENSEARCH_TRANSPORT_PORT "$OPENSEARCH_TRANSPORT_PORT"
    check_port ENRICHER_ELASTICSEARCH_HTTP_PORT "$ELASTICSEARCH_HTTP_PORT"
    check_port ENRICHER_ELASTICSEARCH_TRANSPORT_PORT "$ELASTICSEARCH_TRANSPORT_PORT"
    check_whole_number ENRICHER_ENGINE_START_TIMEOUT "$START_TIMEOUT"
    check_whole_number ENRICHER_ENGINE_STOP_TIMEOUT "$STOP_TIMEOUT"
    [[ $HEAP =~ ^[0-9]+[kKmMgG]$ ]] || die "ENRICHER_ENGINE_HEAP must look like 512m or 1g, got '$HEAP'"
    [[ $RUN_DIR == /* ]] || die "ENRICHER_ENGINE_RUN must be an absolute path, got '$RUN_DIR'"
    [[ $CACHE_DIR == /* ]] || die "ENRICHER_ENGINE_CACHE must be an absolute path, got '$CACHE_DIR'"
}

# Print the Java feature version (17, 21, 25, ...) of the JDK at $1.
java_major_version() {
    local java_home=$1 version=""
    [[ -x $java_home/bin/java ]] || return 1
    if [[ -r $java_home/release ]]; then
        version=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$java_home/release")
    fi
    if [[ -z $version ]]; then
        version=$("$java_home/bin/java" -XshowSettings:properties -version 2>&1 |
            sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p')
    fi
    [[ $version =~ ^[0-9]+$ ]] || return 1
    echo "$version"
}

# Set ENGINE_JAVA_HOME to ENRICHER_ENGINE_JAVA_HOME, else to the newest JDK 21+
# in /usr/lib/jvm. OpenSearch 3.x and Elasticsearch 9.x both need Java 21+.
find_java() {
    local candidate major best="" best_major=0

    if [[ -n ${ENRICHER_ENGINE_JAVA_HOME:-} ]]; then
        major=$(java_major_version "$ENRICHER_ENGINE_JAVA_HOME") ||
            die "ENRICHER_ENGINE_JAVA_HOME=$ENRICHER_ENGINE_JAVA_HOME has no runnable bin/java"
        ((major >= MIN_JAVA_MAJOR)) ||
            die "ENRICHER_ENGINE_JAVA_HOME=$ENRICHER_ENGINE_JAVA_HOME is Java $major; the engines need Java $MIN_JAVA_MAJOR or newer"
        ENGINE_JAVA_HOME=$ENRICHER_ENGINE_JAVA_HOME
        log "using Java $major from $ENGINE_JAVA_HOME"
        return
    fi

    for candidate in /usr/lib/jvm/*; do
        [[ -d $candidate ]] || continue
        major=$(java_major_version "$candidate") || continue
        if ((major >= MIN_JAVA_MAJOR && major > best_major)); then
            best=$candidate
            best_major=$major
        fi
    done
    [[ -n $best ]] ||
        die "no JDK $MIN_JAVA_MAJOR or newer found in /usr/lib/jvm; OpenSearch 3.x and Elasticsearch 9.x need one. Install a JDK $MIN_JAVA_MAJOR+ or set ENRICHER_ENGINE_JAVA_HOME to one."
    ENGINE_JAVA_HOME=$best
    log "using Java $best_major from $ENGINE_JAVA_HOME"
}

# Create the non-root account for the engines, because both refuse to run as root.
ensure_engine_user() {
    is_root || return 0
    if ! id -u "$ENGINE_USER" >/dev/null 2>&1; then
        log "creating system user $ENGINE_USER"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$ENGINE_USER" ||
            die "useradd failed for '$ENGINE_USER'; create the account by hand or set ENRICHER_ENGINE_USER"
    fi
}

# Print, one word per line, the command prefix that runs a command as the engine
# user: runuser when this script runs as root, nothing otherwise.
engine_user_prefix() {
    if is_root; then
        printf '%s\n' runuser -u "$ENGINE_USER" --
    fi
}

run_as_engine_user() {
    local -a prefix
    mapfile -t prefix < <(engine_user_prefix)
    "${prefix[@]}" "$@"
}

# Print the directory of the unpacked distribution of the selected engine,
# fetching and unpacking it first if the cache does not contain it.
fetch_distribution() {
    local unpacked=$CACHE_DIR/$ENGINE_NAME-$ENGINE_VERSION
    local artifact=$ENGINE_GROUP:$ENGINE_NAME:$ENGINE_VERSION:zip
    local staging

    if [[ -x $unpacked/bin/$ENGINE_NAME ]]; then
        echo "$unpacked"
        return
    fi

    command -v mvn >/dev/null || die "mvn not found; install Maven to fetch $artifact"
    command -v unzip >/dev/null || die "unzip not found; install it to unpack $artifact"
    mkdir -p "$CACHE_DIR"
    staging=$(mktemp -d "$CACHE_DIR/.staging-$ENGINE_NAME-$ENGINE_VERSION.XXXXXX")

    log "fetching $artifact from Maven Central"
    # Maven runs inside the empty staging directory so that a pom.xml in the
    # caller's working directory cannot change the build.
    if ! (cd "$staging" && mvn -q -B "$DEPENDENCY_PLUGIN:copy" \
        -Dartifact="$artifact" -DoutputDirectory="$staging") >"$staging/mvn.log" 2>&1; then
        tail -n 20 "$staging/mvn.log" >&2
        rm -rf "$staging"
        die "failed to fetch $artifact; check that this version is published on Maven Central or set ENRICHER_${ENGINE_NAME^^}_VERSION"
    fi

    if ! unzip -q "$staging/$ENGINE_NAME-$ENGINE_VERSION.zip" -d "$staging/unpacked"; then
        rm -rf "$staging"
        die "failed to unpack $artifact"
    fi
    if [[ ! -x $staging/unpacked/$ENGINE_NAME-$ENGINE_VERSION/bin/$ENGINE_NAME ]]; then
        rm -rf "$staging"
        die "$artifact has no $ENGINE_NAME-$ENGINE_VERSION/bin/$ENGINE_NAME"
    fi

    # The staging directory is inside the cache, so this is a rename within
    # one file system, which is atomic. A concurrent start finds either no
    # distribution or a complete one. mv -T fails instead of moving
    # into a directory that a concurrent start created first.
    mv -T "$staging/unpacked/$ENGINE_NAME-$ENGINE_VERSION" "$unpacked" 2>/dev/null ||
        [[ -x $unpacked/bin/$ENGINE_NAME ]] ||
        die "failed to move the unpacked distribution to $unpacked"
    rm -rf "$staging"
    log "cached $ENGINE_LABEL $ENGINE_VERSION in $unpacked"
    echo "$unpacked"
}

# Print, one per line, the pids of the JVMs that run from this engine copy, and
# return 1 if there are none. A JVM is matched by its exact
# -D<engine>.path.home=<copy> argument. The pid file alone is not enough
# because the engine writes it only some seconds into bootstrap, and a pid in
# a stale pid file may belong to another process by now.
engine_pids() {
    local marker="-D$ENGINE_HOME_PROPERTY=$ENGINE_HOME"
    local cmdline argument found=1

    for cmdline in /proc/[0-9]*/cmdline; do
        # The process may exit between the glob and the read.
        while IFS= read -r -d '' argument; do
            if [[ $argument == "$marker" ]]; then
                cmdline=${cmdline#/proc/}
                echo "${cmdline%/cmdline}"
                found=0
                break
            fi
        done 2>/dev/null <"$cmdline" || true
    done
    return "$found"
}

# Print the pids of the selected engine on one line, or return 1 if it has none.
running_pids() {
    local -a pids
    mapfile -t pids < <(engine_pids)
    ((${#pids[@]} > 0)) || return 1
    echo "${pids[*]}"
}

http_responds() {
    curl -sS -o /dev/null --connect-timeout 2 --max-time 5 "$ENGINE_URL/" 2>/dev/null
}

show_log_tail() {
    local log_file
    for log_file in "$ENGINE_LAUNCHER_LOG" "$ENGINE_DIR/logs/$ENGINE_CLUSTER_NAME.log"; do
        if [[ -s $log_file ]]; then
            echo "----- last 60 lines of $log_file -----" >&2
            tail -n 60 "$log_file" >&2
        fi
    done
}

# Copy the distribution into the run directory and launch it as a daemon.
launch_engine() {
    local distribution pids remaining launcher_status
    local -a settings user_prefix

    if pids=$(running_pids); then
        log "$ENGINE_LABEL is already running (pid $pids)"
        return
    fi
    if http_responds; then
        die "$ENGINE_URL already responds, but no $ENGINE_LABEL started by this script runs there; stop that process or set ENRICHER_${ENGINE_NAME^^}_HTTP_PORT"
    fi

    distribution=$(fetch_distribution)

    rm -rf "$ENGINE_DIR"
    mkdir -p "$ENGINE_DIR/data" "$ENGINE_DIR/logs" "$ENGINE_DIR/tmp"
    cp -a "$distribution" "$ENGINE_HOME"
    if is_root; then
        chown -R "$ENGINE_USER:" "$ENGINE_DIR"
    fi
    run_as_engine_user test -w "$ENGINE_DIR/data" ||
        die "user $ENGINE_USER cannot write to $ENGINE_DIR/data; set ENRICHER_ENGINE_RUN to a directory that every user can traverse"

    settings=(
        -E "cluster.name=$ENGINE_CLUSTER_NAME"
        -E "node.name=$ENGINE_NAME-0"
        -E discovery.type=single-node
        -E "network.host=$HOST"
        -E "http.port=$ENGINE_HTTP_PORT"
        -E "transport.port=$ENGINE_TRANSPORT_PORT"
        -E cluster.routing.allocation.disk.threshold_enabled=false
        -E "path.data=$ENGINE_DIR/data"
        -E "path.logs=$ENGINE_DIR/logs"
    )
    # The Elasticsearch 9.5.4 integ-test-zip ships the x-pack-core and
    # x-pack-security modules. Without this setting its launcher auto-configures
    # security when it starts on an empty node (TLS and password
    # authentication), and it also writes cluster.state.encryption.* keystore
    # entries that this distribution then rejects as unknown secure settings,
    # so the node exits. The setting is passed only when the module exists
    # because a node rejects any setting that no loaded module registers.
    if [[ -d $ENGINE_HOME/modules/x-pack-security ]]; then
        settings+=(-E xpack.security.enabled=false)
    fi

    mapfile -t user_prefix < <(engine_user_prefix)
    remaining=$((START_DEADLINE - SECONDS))
    ((remaining > 0)) || die "no time left to start $ENGINE_LABEL within $START_TIMEOUT s; raise ENRICHER_ENGINE_START_TIMEOUT"
    log "starting $ENGINE_LABEL $ENGINE_VERSION on $ENGINE_URL (transport port $ENGINE_TRANSPORT_PORT)"
    # env -i keeps the caller's JAVA_TOOL_OPTIONS, ES_JAVA_OPTS and similar
    # variables away from the engine. The launcher output goes to a file and
    # stdin comes from /dev/null because the daemon inherits these streams, and
    # an inherited stdout pipe would keep a caller's "$(... start)" waiting.
    # Elasticsearch's launcher waits until the node has started; the
    # OpenSearch launcher returns once the JVM runs.
    launcher_status=0
    (cd "$ENGINE_DIR" && timeout "$remaining" "${user_prefix[@]}" env -i \
        PATH=/usr/bin:/bin \
        HOME="$ENGINE_DIR" \
        LANG=C.UTF-8 \
        "${ENGINE_ENV_PREFIX}_JAVA_HOME=$ENGINE_JAVA_HOME" \
        "${ENGINE_ENV_PREFIX}_JAVA_OPTS=-Xms$HEAP -Xmx$HEAP" \
        "${ENGINE_ENV_PREFIX}_TMPDIR=$ENGINE_DIR/tmp" \
        "$ENGINE_HOME/bin/$ENGINE_NAME" -d -p "$ENGINE_PID_FILE" "${settings[@]}") \
        >"$ENGINE_LAUNCHER_LOG" 2>&1 </dev/null || launcher_status=$?
    if ((launcher_status != 0)); then
        show_log_tail
        stop_engine
        if ((launcher_status == 124)); then
            die "$ENGINE_LABEL launcher timed out after $remaining s; raise ENRICHER_ENGINE_START_TIMEOUT or see $ENGINE_DIR/logs"
        fi
        die "$ENGINE_LABEL launcher exited with status $launcher_status; see $ENGINE_LAUNCHER_LOG and $ENGINE_DIR/logs"
    fi
    LAUNCHED_ENGINES+=("$ENGINE_NAME")
}

# Wait until the selected engine reports at least yellow cluster health.
wait_for_engine() {
    local health_url="$ENGINE_URL/_cluster/health?wait_for_status=yellow&timeout=1s"
    local started=$SECONDS

    while ((SECONDS < START_DEADLINE)); do
        # The health API returns 408 until the status is reached, and curl -f
        # treats that as a failure.
        if curl -fsS -o /dev/null --connect-timeout 2 --max-time 5 "$health_url" 2>/dev/null; then
            log "$ENGINE_LABEL is ready on $ENGINE_URL, $SECONDS s after this script started"
            return 0
        fi
        # The OpenSearch launcher returns once its background shell exists,
        # which may be before that shell has exec'd the JVM, so a missing JVM
        # counts as an exit only after a few seconds.
        if ! engine_pids >/dev/null && ((SECONDS - started > 5)); then
            show_log_tail
            die "$ENGINE_LABEL exited during start-up; see $ENGINE_DIR/logs"
        fi
        sleep 1
    done

    show_log_tail
    die "$ENGINE_LABEL did not reach yellow health on $ENGINE_URL within $START_TIMEOUT s of launching; raise ENRICHER_ENGINE_START_TIMEOUT or see $ENGINE_DIR/logs"
}

any_alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

# Wait until none of the given pids is alive or $1 seconds have passed.
wait_for_exit() {
    local deadline=$((SECONDS + $1))
    shift
    while any_alive "$@" && ((SECONDS < deadline)); do
        sleep 1
    done
}

# Send SIGTERM to the JVMs of the selected engine, then SIGKILL to any that is
# still alive after STOP_TIMEOUT seconds.
stop_engine() {
    local -a pids
    mapfile -t pids < <(engine_pids)
    if ((${#pids[@]} == 0)); then
        log "$ENGINE_LABEL is not running"
        rm -f "$ENGINE_PID_FILE"
        return 0
    fi

    log "stopping $ENGINE_LABEL (pid ${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait_for_exit "$STOP_TIMEOUT" "${pids[@]}"
    if any_alive "${pids[@]}"; then
        log "$ENGINE_LABEL (pid ${pids[*]}) still running $STOP_TIMEOUT s after SIGTERM; sending SIGKILL"
        kill -KILL "${pids[@]}" 2>/dev/null || true
        wait_for_exit 10 "${pids[@]}"
        if any_alive "${pids[@]}"; then
            die "$ENGINE_LABEL (pid ${pids[*]}) is still running after SIGKILL"
        fi
    fi
    rm -f "$ENGINE_PID_FILE"
    log "$ENGINE_LABEL stopped"
}

status_engine() {
    local pids health
    if pids=$(running_pids); then
        health=$(curl -sS --connect-timeout 2 --max-time 5 "$ENGINE_URL/_cluster/health" 2>/dev/null |
            sed -n 's/.*"status":"\([a-z]*\)".*/\1/p') || true
        echo "$ENGINE_NAME: running, pid $pids, $ENGINE_URL, health ${health:-unreachable}"
    else
        echo "$ENGINE_NAME: stopped"
    fi
}

# Engines that this `start` launched. If the start fails, an EXIT trap stops
# them, so a failed start leaves no engine running. Engines that were already
# running before the start are left alone.
LAUNCHED_ENGINES=()

stop_launched_engines_on_failure() {
    local status=$? engine
    ((status != 0)) || return 0
    for engine in ${LAUNCHED_ENGINES[@]+"${LAUNCHED_ENGINES[@]}"}; do
        select_engine "$engine"
        stop_engine || true
    done
    exit "$status"
}

main() {
    local command=${1:-}
    local engine
    local -a engines

    [[ -n $command ]] || die "missing command; usage: engines.sh start|stop|status [opensearch] [elasticsearch]"
    shift
    if (($# > 0)); then
        engines=("$@")
    else
        engines=("${ALL_ENGINES[@]}")
    fi
    for engine in "${engines[@]}"; do
        select_engine "$engine"
    done
    check_settings

    case "$command" in
        start)
            command -v curl >/dev/null || die "curl not found; it is needed to wait for the engines"
            find_java
            ensure_engine_user
            mkdir -p "$RUN_DIR"
            # Fetching can take minutes on a cold cache, so it happens before
            # the start-up deadline begins.
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                engine_pids >/dev/null || fetch_distribution >/dev/null
            done

            START_DEADLINE=$((SECONDS + START_TIMEOUT))
            trap stop_launched_engines_on_failure EXIT
            # Launch every engine before waiting for any, so their start-ups overlap.
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                launch_engine
            done
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                wait_for_engine
            done
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                echo "export $ENGINE_URL_VARIABLE=$ENGINE_URL"
            done
            trap - EXIT
            ;;
        stop)
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                stop_engine
            done
            ;;
        status)
            for engine in "${engines[@]}"; do
                select_engine "$engine"
                status_engine
            done
            ;;
        *)
            die "unknown command '$command'; usage: engines.sh start|stop|status [opensearch] [elasticsearch]"
            ;;
    esac
}

main "$@"
