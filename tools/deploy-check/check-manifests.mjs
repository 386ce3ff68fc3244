#!/usr/bin/env node
// Renders deploy/base and every deploy/overlays/* with `kubectl kustomize`, validates each object
// against the Kubernetes, KEDA and Prometheus Operator schemas (lib/schema.mjs), and checks what the
// schemas cannot: flags exist in the binaries' --help, $(VARS) resolve, references resolve, the
// server pool survives a drain, workers are GPU pods that drain by SIGTERM, KEDA watches its own
// namespace, every pack the server offers is served by the workers, TLS and API tokens are wired
// coherently (probes, ingress, Service, Secret mounts).
//   node check-manifests.mjs DEPLOY_DIR --server=BIN --worker=BIN
import fs from "node:fs";
import path from "node:path";
import { flagName, helpFlags } from "./lib/help.mjs";
import { id, kustomizeVersion, render } from "./lib/render.mjs";
import { validateObjects } from "./lib/schema.mjs";

const args = process.argv.slice(2);
const opt = (k) => (args.find((a) => a.startsWith(`--${k}=`)) || "").split("=").slice(1).join("=");
const deployDir = args.find((a) => !a.startsWith("--"));
if (!deployDir || !opt("server") || !opt("worker")) {
  console.error("usage: check-manifests.mjs DEPLOY_DIR --server=psd3d-server --worker=psd3d-worker");
  process.exit(2);
}
const help = { "psd3d-server": helpFlags(opt("server")), "psd3d-worker": helpFlags(opt("worker")) };
// Secrets created outside git in production (deploy/README.md); anything else must be rendered.
const EXTERNAL_SECRETS = new Set(["psd3d-redis", "psd3d-tls", "psd3d-server-tls", "psd3d-api-tokens"]);

const kv = kustomizeVersion();
if (kv.major < 4) {
  console.error(`kubectl's kustomize is ${kv.text || "missing"}; these manifests need kustomize v4 or later`);
  process.exit(1);
}

let failures = 0;
const fail = (where, msg) => { failures++; console.log(`FAIL ${where}: ${msg}`); };

const dirs = [path.join(deployDir, "base"),
  ...fs.readdirSync(path.join(deployDir, "overlays")).map((d) => path.join(deployDir, "overlays", d))];

for (const dir of dirs) {
  const name = path.relative(deployDir, dir);
  let objects;
  try {
    objects = render(dir);
  } catch (e) {
    fail(name, `kubectl kustomize failed: ${e.stderr || e.message}`);
    continue;
  }
  for (const p of await validateObjects(objects)) fail(name, p);
  checkObjects(name, objects, name !== "base");
  console.log(`${name}: ${objects.length} objects rendered and checked`);
}
console.log(failures === 0 ? "manifests: all checks passed" : `manifests: ${failures} problems`);
process.exit(failures === 0 ? 0 : 1);

function checkObjects(where, objects, isOverlay) {
  const byKind = (k) => objects.filter((o) => o.kind === k);
  const find = (k, n) => objects.find((o) => o.kind === k && o.metadata.name === n);
  const namespace = objects.find((o) => o.metadata?.namespace)?.metadata.namespace;
  const configMaps = new Map(byKind("ConfigMap").map((c) => [c.metadata.name, c]));
  const secrets = new Set(byKind("Secret").map((s) => s.metadata.name));
  const secretOk = (n) => secrets.has(n) || EXTERNAL_SECRETS.has(n);

  if (isOverlay) {
    for (const o of objects) {
      if (o.kind !== "Namespace" && o.metadata.namespace !== namespace) fail(where, `${id(o)} is not in namespace ${namespace}`);
    }
    if (!find("Namespace", namespace)) fail(where, `no Namespace object for ${namespace}`);
  }

  const workloads = [...byKind("Deployment"), ...byKind("StatefulSet")];
  for (const w of workloads) {
    const pod = w.spec.template.spec;
    const podNonRoot = pod.securityContext?.runAsNonRoot === true;
    for (const c of pod.containers) {
      const cw = `${where} ${id(w)} container ${c.name}`;
      if (!podNonRoot && c.securityContext?.runAsNonRoot !== true) fail(cw, "not runAsNonRoot");
      if (c.securityContext?.allowPrivilegeEscalation !== false) fail(cw, "allowPrivilegeEscalation is not false");
      if (!c.resources?.requests?.cpu || !c.resources?.requests?.memory) fail(cw, "no cpu and memory requests");
      if (/:latest$/.test(c.image) || (isOverlay && !/:[^/]+$/.test(c.image))) fail(cw, `image ${c.image} is not pinned to a tag`);
      // Env: every $(VAR) in args resolves from env or envFrom; every reference resolves.
      const vars = new Set((c.env || []).map((e) => e.name));
      for (const e of c.env || []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (ref && !secretOk(ref.name)) fail(cw, `env ${e.name} reads missing Secret ${ref.name}`);
        if (e.value && /(password|token|secret)/i.test(e.name)) fail(cw, `env ${e.name} has a literal value; use a Secret`);
      }
      for (const ef of c.envFrom || []) {
        if (ef.configMapRef) {
          const cm = configMaps.get(ef.configMapRef.name);
          if (!cm) fail(cw, `envFrom missing ConfigMap ${ef.configMapRef.name}`);
          else Object.keys(cm.data || {}).forEach((k) => vars.add(k));
        }
      }
      const program = c.image.split("/").pop().split(":")[0];
      const flags = help[program];
      const seen = new Set();
      for (const a of [...(c.command || []), ...(c.args || [])]) {
        for (const m of a.matchAll(/\$\(([A-Z0-9_]+)\)/g)) if (!vars.has(m[1])) fail(cw, `${a}: $(${m[1]}) is not set`);
        if (!flags) continue;
        const f = flagName(a);
        if (!f) { fail(cw, `unexpected argument ${a}`); continue; }
        if (!flags.has(f)) fail(cw, `--${f} is not a flag of ${program} (not in its --help)`);
        if (seen.has(f)) fail(cw, `--${f} is given twice (the last one wins)`);
        seen.add(f);
      }
      // Secrets never appear in args; a flag may name a file in a mounted Secret (--api_tokens_file=...).
      const mountsOf = (pred) => (c.volumeMounts || [])
        .filter((m) => (pod.volumes || []).some((v) => v.name === m.name && pred(v)))
        .map((m) => `${m.mountPath.replace(/\/$/, "")}/`);
      const secretDirs = mountsOf((v) => v.secret);
      const mountedDirs = mountsOf(() => true);
      for (const a of flags ? c.args || [] : []) {
        const f = flagName(a) || a;
        const value = a.includes("=") ? a.slice(a.indexOf("=") + 1) : "";
        if (/password|secret|token/i.test(a) && !secretDirs.some((d) => value.startsWith(d))) {
          fail(cw, `a secret-looking value in args (--${f}); pass secrets as files from a Secret volume or env`);
        }
        // Files the program reads (certificates, keys, token lists) come from a mounted volume.
        if (/(_file|_cert|_key|_ca)$/.test(f) && value && !mountedDirs.some((d) => value.startsWith(d))) {
          fail(cw, `--${f}=${value} is not in a mounted volume`);
        }
      }
    }
    for (const v of pod.volumes || []) {
      const cm = v.configMap?.name;
      if (cm && cm !== "kube-root-ca.crt" && !configMaps.has(cm)) fail(where, `${id(w)} volume ${v.name}: missing ConfigMap ${cm}`);
      if (v.secret && !secretOk(v.secret.secretName)) fail(where, `${id(w)} volume ${v.name}: missing Secret ${v.secret.secretName}`);
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim && !find("PersistentVolumeClaim", claim)) fail(where, `${id(w)} volume ${v.name}: missing PVC ${claim}`);
    }
  }

  const server = find("Deployment", "psd3d-server");
  const worker = find("Deployment", "psd3d-worker");
  if (!server || !worker) return fail(where, "psd3d-server or psd3d-worker Deployment missing");
  const env = (w) => {
    const out = {};
    for (const c of w.spec.template.spec.containers) {
      for (const ef of c.envFrom || []) Object.assign(out, configMaps.get(ef.configMapRef?.name)?.data || {});
    }
    return out;
  };
  const flagValue = (w, container, flag) => {
    const c = w.spec.template.spec.containers.find((x) => x.name === container);
    const a = (c?.args || []).find((x) => x.startsWith(`--${flag}=`));
    if (a === undefined) return undefined;
    return a.slice(flag.length + 3).replace(/\$\(([A-Z0-9_]+)\)/g, (_, v) => env(w)[v] ?? `$(${v})`);
  };

  // Server: at least two replicas, health probes (readiness on "", liveness on psd3d.liveness), a
  // PodDisruptionBudget that lets one go at a time, a Service.
  const selects = (sel, labels) => Object.entries(sel || {}).every(([k, v]) => labels?.[k] === v);
  const s = server.spec.template.spec.containers.find((c) => c.name === "server");
  if ((server.spec.replicas ?? 1) < 2) fail(where, "psd3d-server has fewer than 2 replicas");
  const listenPort = Number((flagValue(server, "server", "listen") || "").split(":").pop());
  const tlsCert = flagValue(server, "server", "tls_cert");
  const tokensFile = flagValue(server, "server", "api_tokens_file");
  // Plaintext servers: the kubelet's native gRPC probe. TLS servers: that probe cannot do TLS, so
  // exec `psd3d-server --health_check` with the server's --tls_cert, allowing for its 2 s deadline.
  const probeProblem = (p, service) => {
    if (!p) return "missing";
    if (p.grpc) {
      if (tlsCert) return "a native gRPC probe (plaintext only) on a server with --tls_cert";
      if ((p.grpc.service || "") !== service) return `checks "${p.grpc.service || ""}", not "${service}"`;
      return p.grpc.port === listenPort ? null : "does not use the --listen port";
    }
    const cmd = p.exec?.command || [];
    if (cmd[0]?.split("/").pop() !== "psd3d-server" || !cmd.includes("--health_check")) {
      return "neither a gRPC probe nor psd3d-server --health_check";
    }
    for (const a of cmd.slice(1)) {
      if (!help["psd3d-server"].has(flagName(a))) return `${a} is not a flag of psd3d-server (not in its --help)`;
    }
    const arg = (f) => cmd.find((a) => a.startsWith(`--${f}=`))?.slice(f.length + 3);
    if (Number((arg("listen") || "").split(":").pop()) !== listenPort) return "does not use the --listen port";
    if ((arg("health_service") || "") !== service) return `checks "${arg("health_service") || ""}", not "${service}"`;
    if (arg("tls_cert") !== tlsCert) return tlsCert ? `does not pass --tls_cert=${tlsCert}` : "passes --tls_cert to a plaintext server";
    if ((p.timeoutSeconds ?? 1) <= 2) return "timeoutSeconds must exceed --health_check's 2 s deadline";
    return null;
  };
  const readiness = probeProblem(s.readinessProbe, "");
  if (readiness) fail(where, `server readiness probe: ${readiness}`);
  const liveness = probeProblem(s.livenessProbe, "psd3d.liveness");
  if (liveness) fail(where, `server liveness probe: ${liveness}`);

  // TLS and API tokens: production serves both; tokens only over TLS; everything in front agrees.
  if (where.endsWith("production") && !(tlsCert && tokensFile)) fail(where, "production servers must serve TLS with API tokens");
  if (tokensFile && !tlsCert) fail(where, "--api_tokens_file without --tls_cert (the server refuses to start)");
  for (const ing of byKind("Ingress")) {
    const a = ing.metadata.annotations || {};
    const proto = a["nginx.ingress.kubernetes.io/backend-protocol"] || "HTTP";
    if (tlsCert && proto !== "GRPCS") fail(where, `${id(ing)}: the servers serve TLS but the backend protocol is ${proto}, not GRPCS`);
    if (!tlsCert && proto === "GRPCS") fail(where, `${id(ing)}: backend protocol GRPCS but the servers serve plaintext`);
    if (tokensFile && a["nginx.ingress.kubernetes.io/auth-type"]) {
      fail(where, `${id(ing)}: ingress auth reads the authorization header, so it would reject the servers' bearer tokens`);
    }
  }
  const grpcPort = byKind("Service").flatMap((v) => (selects(v.spec.selector, server.spec.template.metadata.labels) ? v.spec.ports : []))
    .find((p) => p.targetPort === "grpc" || p.targetPort === listenPort);
  if (tlsCert && grpcPort?.appProtocol === "kubernetes.io/h2c") fail(where, "the server Service says h2c but the servers serve TLS");
  const pdbFor = (w) => byKind("PodDisruptionBudget").find((p) => selects(p.spec.selector.matchLabels, w.spec.template.metadata.labels));
  // The server PDB lets exactly one server go at a time, at any replica count.
  const pdb = pdbFor(server);
  const replicas = server.spec.replicas ?? 1;
  const pdbCount = (v, roundUp) => (typeof v === "string" && v.endsWith("%")
    ? (roundUp ? Math.ceil : Math.floor)((parseFloat(v) / 100) * replicas) : v);
  const disruptions = !pdb ? undefined : pdb.spec.maxUnavailable !== undefined
    ? pdbCount(pdb.spec.maxUnavailable, true) : replicas - pdbCount(pdb.spec.minAvailable, true);
  if (!pdb) fail(where, "no PodDisruptionBudget for psd3d-server");
  else if (!(disruptions >= 1)) fail(where, "the server PodDisruptionBudget blocks every eviction");
  else if (disruptions > 1) fail(where, `the server PodDisruptionBudget lets ${disruptions} servers go at once (use maxUnavailable: 1)`);
  if (!byKind("Service").some((v) => selects(v.spec.selector, server.spec.template.metadata.labels))) fail(where, "no Service for psd3d-server");

  // Workers: drain = SIGTERM (checkpoint + release) within a grace period longer than the lease, no
  // replicas field (KEDA owns it), GPU unless the overlay runs on CPU, deletion-cost sidecar.
  const wc = worker.spec.template.spec.containers.find((c) => c.name === "worker");
  const device = flagValue(worker, "worker", "device");
  const gpu = wc.resources?.limits?.["nvidia.com/gpu"];
  if (device === "cuda" && String(gpu) !== "1") fail(where, "workers with --device=cuda must request one nvidia.com/gpu");
  if (device !== "cuda" && gpu !== undefined) fail(where, `workers with --device=${device} request a GPU`);
  if (where.endsWith("production") && device !== "cuda") fail(where, "production workers must run on CUDA");
  const lease = Number(flagValue(worker, "worker", "lease_seconds") || 30);
  if ((worker.spec.template.spec.terminationGracePeriodSeconds ?? 30) < 2 * lease) {
    fail(where, "worker terminationGracePeriodSeconds is shorter than two lease periods: no time to checkpoint");
  }
  if (worker.spec.replicas !== undefined) fail(where, "psd3d-worker sets replicas; KEDA owns the count");
  if (!worker.spec.template.spec.containers.some((c) => c.name === "deletion-cost")) fail(where, "no deletion-cost sidecar on workers");
  if (!pdbFor(worker)) fail(where, "no PodDisruptionBudget for psd3d-worker");

  // Packs: every pack the server accepts is served by the workers.
  const offered = (flagValue(server, "server", "model_packs") || "").split(",").filter(Boolean);
  const served = (flagValue(worker, "worker", "packs") || "").split(",").map((p) => p.split("=")[0]);
  for (const p of offered) if (!served.includes(p)) fail(where, `the server offers pack ${p} but no worker serves it`);

  // Settings server and workers must share.
  for (const f of ["redis", "redis_prefix", "event_retention", "job_retention_seconds", "retry_backoff_ms", "retry_backoff_max_ms"]) {
    if (flagValue(server, "server", f) !== flagValue(worker, "worker", f)) fail(where, `--${f} differs between server and workers`);
  }

  // KEDA: scales the worker Deployment on waiting + running jobs of this namespace. The base scales to
  // zero (so every overlay can); an overlay may keep one worker (production does: KEDA's fallback does
  // not act at zero replicas, docs/operations.md "Scale"), never more (that is what max is for).
  const so = byKind("ScaledObject")[0];
  if (!so) return fail(where, "no ScaledObject");
  if (so.spec.scaleTargetRef.name !== "psd3d-worker") fail(where, "the ScaledObject does not scale psd3d-worker");
  const minReplicas = so.spec.minReplicaCount ?? 0;
  if (!isOverlay && minReplicas !== 0) fail(where, "the base ScaledObject does not allow scale-to-zero (minReplicaCount 0)");
  if (isOverlay && minReplicas > 1) fail(where, `the ScaledObject keeps ${minReplicas} workers (minReplicaCount is 0, or 1 to survive a metrics outage)`);
  const q = so.spec.triggers.find((t) => t.type === "prometheus")?.metadata?.query || "";
  for (const m of ["psd3d_queue_depth", "psd3d_jobs_waiting_retry", "psd3d_jobs_running"]) {
    if (!q.includes(m)) fail(where, `the KEDA query does not count ${m}`);
  }
  const nsInQuery = [...q.matchAll(/namespace="([^"]*)"/g)].map((m) => m[1]);
  if (isOverlay && (nsInQuery.length === 0 || nsInQuery.some((n) => n !== namespace))) {
    fail(where, `the KEDA query reads namespace ${nsInQuery.join(",") || "(none)"}, not ${namespace}`);
  }

  // Redis: AOF on a volume, or gone in favour of an external Redis named in psd3d-config. noeviction
  // acts only at maxmemory: without one Redis grows until the kubelet OOM-kills it, and one near the
  // container's limit leaves no room for the AOF rewrite's fork (copy-on-write) and client buffers.
  const redis = find("StatefulSet", "psd3d-redis");
  if (redis) {
    const conf = Object.values(configMaps.get(redis.spec.template.spec.volumes.find((v) => v.name === "conf")?.configMap?.name)?.data || {}).join("\n");
    if (!/^appendonly yes$/m.test(conf)) fail(where, "Redis runs without appendonly yes");
    if (!/^maxmemory-policy noeviction$/m.test(conf)) fail(where, "Redis may evict keys (maxmemory-policy is not noeviction)");
    else {
      const rc = redis.spec.template.spec.containers.find((c) => c.name === "redis") || redis.spec.template.spec.containers[0];
      const limit = k8sBytes(rc.resources?.limits?.memory);
      const maxmemory = redisMaxmemory(conf, rc);
      if (!limit) fail(where, "Redis has no memory limit to size maxmemory against");
      if (!(maxmemory > 0)) fail(where, "Redis has maxmemory-policy noeviction but no maxmemory (it would grow until OOM-killed)");
      else if (limit && maxmemory > 0.75 * limit) {
        fail(where, `Redis maxmemory (${maxmemory} bytes) is over 75% of its memory limit ${rc.resources.limits.memory}: no room for the AOF rewrite fork`);
      }
    }
    if (!redis.spec.volumeClaimTemplates?.some((t) => t.metadata.name === "data")) fail(where, "Redis has no data PVC");
  }

  // Monitoring: each ServiceMonitor selects a Service that has its port.
  for (const sm of byKind("ServiceMonitor")) {
    const svc = byKind("Service").filter((v) => selects(sm.spec.selector.matchLabels, v.metadata.labels));
    for (const ep of sm.spec.endpoints) {
      if (!svc.some((v) => v.spec.ports.some((p) => p.name === ep.port))) fail(where, `${id(sm)}: no selected Service has port ${ep.port}`);
    }
  }
  if (byKind("PrometheusRule").length !== 1) fail(where, "expected one PrometheusRule");
  const dash = [...configMaps.values()].find((c) => c.metadata.labels?.grafana_dashboard === "1");
  if (!dash) fail(where, "no Grafana dashboard ConfigMap (label grafana_dashboard=1)");
  else Object.values(dash.data).forEach((j) => JSON.parse(j));
}

// Bytes of a Kubernetes memory quantity ("16Gi", "512M", "1e9"); NaN when absent or unparsable.
function k8sBytes(q) {
  const m = /^([0-9.]+(?:e[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? ""));
  if (!m) return NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2]] ?? 1;
  return Number(m[1]) * unit;
}

// Bytes of a Redis memory setting ("640mb" = 640 MiB, "640m" = 640e6, "0" = unlimited); NaN if unparsable.
function redisBytes(v) {
  const m = /^([0-9]+)(kb|mb|gb|k|m|g)?$/i.exec(String(v ?? "").trim());
  if (!m) return NaN;
  const unit = { kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30, k: 1e3, m: 1e6, g: 1e9 }[m[2]?.toLowerCase()] ?? 1;
  return Number(m[1]) * unit;
}

// Redis's effective maxmemory: the last `maxmemory` line of its config, overridden by a
// `--maxmemory VALUE` on its command line (VALUE may be "$VAR", "${VAR}" or "$(VAR)" of a literal env).
function redisMaxmemory(conf, container) {
  let value;
  for (const m of conf.matchAll(/^maxmemory\s+(\S+)\s*$/gm)) value = m[1];
  const cmd = [...(container.command || []), ...(container.args || [])].join(" ");
  const arg = /--maxmemory[ =]+("?)(\S+?)\1(?:\s|$)/.exec(cmd);
  if (arg) {
    value = arg[2];
    const ref = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|\(([A-Za-z_][A-Za-z0-9_]*)\)|([A-Za-z_][A-Za-z0-9_]*))$/.exec(value);
    if (ref) value = (container.env || []).find((e) => e.name === (ref[1] || ref[2] || ref[3]))?.value;
  }
  return redisBytes(value);
}
