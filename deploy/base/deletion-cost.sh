#!/bin/sh
# Sidecar of each worker pod: keeps the pod's controller.kubernetes.io/pod-deletion-cost at 1000 while
# the worker runs a job (psd3d_worker_busy 1 on its /metrics) and 0 while it is idle, so that when KEDA
# lowers the replica count the ReplicaSet deletes idle workers first. Best effort by design: a busy pod
# that is deleted anyway checkpoints and releases its job, which another worker resumes.
# Needs curl and a token allowed to patch pods (worker-rbac.yaml).
# It is the container's PID 1, and the kernel delivers no signal to a PID 1 that has no handler: without
# the trap SIGTERM would be ignored and every worker pod would stay Terminating until the grace period
# ran out and the kubelet sent SIGKILL. The sleep runs in the background so the trap runs at once
# (a shell runs traps only between commands, and `wait` returns as soon as a trapped signal arrives).
set -u
sleeper=""
trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM INT
: "${POD_NAME:?}" "${POD_NAMESPACE:?}"
METRICS_URL=${METRICS_URL:-http://127.0.0.1:9465/metrics}
SA=${SA_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
API=${API_URL:-https://${KUBERNETES_SERVICE_HOST:-kubernetes.default.svc}:${KUBERNETES_SERVICE_PORT:-443}}
PERIOD=${PERIOD_SECONDS:-5}
BUSY_COST=${BUSY_COST:-1000}
CA=""
[ -f "$SA/ca.crt" ] && CA="--cacert $SA/ca.crt"

annotate() {  # $1: the cost
  body=$(printf '{"metadata":{"annotations":{"controller.kubernetes.io/pod-deletion-cost":"%s"}}}' "$1")
  # shellcheck disable=SC2086  # $CA is empty or two words on purpose
  curl -fsS --max-time 10 $CA -X PATCH -H "Authorization: Bearer $(cat "$SA/token")" \
    -H "Content-Type: application/merge-patch+json" --data "$body" \
    "$API/api/v1/namespaces/$POD_NAMESPACE/pods/$POD_NAME" >/dev/null
}

last=""
while :; do
  # Unknown (worker starting, or gone) counts as busy: never advertise a pod as cheap by mistake.
  busy=$(curl -fsS --max-time 3 "$METRICS_URL" 2>/dev/null | awk '$1 == "psd3d_worker_busy" { print ($2 > 0) ? 1 : 0; found = 1 } END { if (!found) print 1 }')
  cost=0
  [ "$busy" = 1 ] && cost=$BUSY_COST
  if [ "$cost" != "$last" ]; then
    if annotate "$cost"; then last=$cost; fi
  fi
  sleep "$PERIOD" &
  sleeper=$!
  wait "$sleeper"
done
