#!/usr/bin/env bash
# Entry point of an ingress pod (Deployment rayhook-ingress,
# deploy/kubernetes/ingress-deployment.yaml): a Ray worker node and the rayhook
# HTTP ingress in one container.
#
#   1. Starts the Ray node in the background: with RAY_HEAD_ADDRESS (the
#      Deployment, and the tests), `python -m deploy.ray_node
#      --address=$RAY_HEAD_ADDRESS --num-cpus=0 --resources={"ingress": 1}
#      $RAYHOOK_RAY_START_ARGS` (`ray start` that can also join a loopback-only
#      cluster on one machine, as the tests do); in a KubeRay worker group, KubeRay's
#      generated command ($KUBERAY_GEN_RAY_START_CMD, which carries --block).
#   2. Waits until the local raylet is up ("Ray runtime started." and the address
#      file that `ray.init(address="auto")` reads).
#   3. Starts gunicorn (`-c python:deploy.gunicorn_conf ingress.asgi:app`); each
#      worker connects to this pod's raylet after the fork (RAY_ADDRESS=auto).
#   4. Stays in front of both: SIGTERM/SIGINT go to gunicorn, which stops accepting
#      and lets in-flight requests finish (graceful_timeout); then the Ray node
#      stops. If either child dies on its own, the other is stopped and the script
#      exits non-zero, so Kubernetes restarts the container: a pod whose raylet is
#      gone must not keep answering /healthz.
#
# Environment: KUBERAY_GEN_RAY_START_CMD (set by KubeRay), RAY_HEAD_ADDRESS
# (host:port of the GCS when not under KubeRay), RAYHOOK_RAY_START_ARGS (more
# `ray start` options there, e.g. --node-ip-address), RAYHOOK_PYTHON (the
# interpreter with rayhook installed, default python3), RAYHOOK_RAY_START_TIMEOUT
# (seconds to wait for the raylet, default 120), RAY_TMPDIR / TMPDIR (Ray's temp
# folder, default /tmp). gunicorn reads the RAYHOOK_* settings itself.
set -Eeuo pipefail

log() {
    printf '%s ray-node-start: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
}

# Where `ray start` and `ray.init(address="auto")` keep the address file: Ray's
# own rule (RAY_TMPDIR, else TMPDIR, else /tmp).
system_temp_dir="${RAY_TMPDIR:-${TMPDIR:-/tmp}}"
ray_temp_dir="${system_temp_dir}/ray"
ray_log="${system_temp_dir}/ray-node-start.log"
start_timeout="${RAYHOOK_RAY_START_TIMEOUT:-120}"

if [[ -n "${KUBERAY_GEN_RAY_START_CMD:-}" ]]; then
    start_cmd="${KUBERAY_GEN_RAY_START_CMD}"
    [[ "${start_cmd}" == *"--block"* ]] || start_cmd="${start_cmd} --block"
elif [[ -n "${RAY_HEAD_ADDRESS:-}" ]]; then
    start_cmd="${RAYHOOK_PYTHON:-python3} -m deploy.ray_node --address=${RAY_HEAD_ADDRESS}"
    start_cmd+=" --num-cpus=0 --resources='{\"ingress\": 1}' --disable-usage-stats --block"
    # Its own temp dir, where step 2 looks for the address file (on a shared host
    # a joining node would otherwise use the head's).
    start_cmd+=" --temp-dir=${ray_temp_dir}"
    start_cmd+=" ${RAYHOOK_RAY_START_ARGS:-}"
else
    log "set KUBERAY_GEN_RAY_START_CMD (KubeRay does) or RAY_HEAD_ADDRESS=host:port"
    exit 64
fi

# Ray and gunicorn want many descriptors; raise the soft limit as far as allowed.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ray_pid=""
gunicorn_pid=""
stopping=0

# shellcheck disable=SC2329  # invoked by the traps below
on_signal() {
    stopping=1
    log "received $1"
    if [[ -n "${gunicorn_pid}" ]]; then
        log "stopping gunicorn (in-flight requests finish first)"
        kill -TERM "${gunicorn_pid}" 2>/dev/null || true
    elif [[ -n "${ray_pid}" ]]; then
        kill -TERM "${ray_pid}" 2>/dev/null || true
    fi
}
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT

# wait_for PID: until PID has exited, even if trapped signals interrupt `wait`;
# its exit status ends up in REPLY.
wait_for() {
    local pid="$1" rc=0
    while :; do
        rc=0
        wait "${pid}" || rc=$?
        if ! kill -0 "${pid}" 2>/dev/null; then
            REPLY="${rc}"
            return 0
        fi
    done
}

stop_ray() {
    if [[ -n "${ray_pid}" ]] && kill -0 "${ray_pid}" 2>/dev/null; then
        log "stopping the Ray node"
        kill -TERM "${ray_pid}" 2>/dev/null || true
        wait_for "${ray_pid}"
    fi
    ray_pid=""
}

# 1. The Ray node. /tmp survives a container restart inside the pod: drop the
#    previous run's address file so that step 2 cannot see a stale one.
rm -f "${ray_temp_dir}/ray_current_cluster"
: >"${ray_log}"
log "starting the Ray node: ${start_cmd}"
bash -c "exec ${start_cmd}" > >(tee -a "${ray_log}") 2>&1 &
ray_pid=$!

# 2. The local raylet.
deadline=$((SECONDS + start_timeout))
until grep -q "Ray runtime started" "${ray_log}" && [[ -s "${ray_temp_dir}/ray_current_cluster" ]]; do
    if ((stopping)); then
        stop_ray
        exit 0
    fi
    if ! kill -0 "${ray_pid}" 2>/dev/null; then
        wait_for "${ray_pid}"
        log "the Ray node exited (status ${REPLY}) before it was up"
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        log "the Ray node was not up within ${start_timeout} s"
        stop_ray
        exit 1
    fi
    sleep 0.5
done
log "the Ray node is up"
if ((stopping)); then
    stop_ray
    exit 0
fi

# 3. gunicorn.
gunicorn -c python:deploy.gunicorn_conf ingress.asgi:app &
gunicorn_pid=$!
log "gunicorn started (pid ${gunicorn_pid})"

# 4. Whichever child ends first decides.
exited=""
status=0
while [[ -z "${exited:-}" ]]; do
    status=0
    wait -n -p exited "${ray_pid}" "${gunicorn_pid}" || status=$?
    # No `exited`: a trapped signal interrupted the wait (on_signal already told
    # gunicorn to stop); wait again for a child to end.
done

if [[ "${exited}" == "${gunicorn_pid}" ]]; then
    gunicorn_pid=""
    stop_ray
    if ((stopping)); then
        log "gunicorn stopped (status ${status}); bye"
        exit "${status}"
    fi
    log "gunicorn exited on its own (status ${status})"
    exit $((status == 0 ? 1 : status))
fi

ray_pid=""
log "the Ray node exited (status ${status}); stopping gunicorn"
kill -TERM "${gunicorn_pid}" 2>/dev/null || true
wait_for "${gunicorn_pid}"
gunicorn_pid=""
if ((stopping)); then
    exit "${REPLY}"
fi
exit 1
