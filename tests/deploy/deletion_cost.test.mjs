// deploy/base/deletion-cost.sh against a fake worker /metrics and a fake Kubernetes API on loopback:
// the pod's deletion cost follows psd3d_worker_busy, unknown counts as busy, a failed PATCH is retried,
// an unchanged cost is not patched again, and SIGTERM ends it at once, also in the middle of its sleep
// (it is PID 1 of its container, where an untrapped SIGTERM would be ignored).
// Run: node --test tests/deploy/deletion_cost.test.mjs
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import test from "node:test";

const script = path.join(path.dirname(new URL(import.meta.url).pathname), "../../deploy/base/deletion-cost.sh");

test("deletion cost follows the worker's busy gauge", async (t) => {
  let metrics = "# TYPE psd3d_worker_busy gauge\npsd3d_worker_busy 0\n";
  let metricsStatus = 200;
  let failNextPatch = true;
  const patches = [];
  let waiter = null;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      res.writeHead(metricsStatus, { "Content-Type": "text/plain" });
      return res.end(metricsStatus === 200 ? metrics : "down");
    }
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.method === "PATCH" && req.url === "/api/v1/namespaces/ns1/pods/pod1") {
        assert.equal(req.headers.authorization, "Bearer tok123");
        assert.equal(req.headers["content-type"], "application/merge-patch+json");
        if (failNextPatch) {
          failNextPatch = false;
          res.writeHead(503);
          return res.end();
        }
        patches.push(JSON.parse(body).metadata.annotations["controller.kubernetes.io/pod-deletion-cost"]);
        if (waiter) waiter();
        res.writeHead(200);
        return res.end("{}");
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const sa = fs.mkdtempSync(path.join(os.tmpdir(), "psd3d-sa-"));
  fs.writeFileSync(path.join(sa, "token"), "tok123");
  const child = spawn("sh", [script], {
    env: { ...process.env, POD_NAME: "pod1", POD_NAMESPACE: "ns1", SA_DIR: sa, PERIOD_SECONDS: "0.1",
      METRICS_URL: `http://127.0.0.1:${port}/metrics`, API_URL: `http://127.0.0.1:${port}` },
    stdio: ["ignore", "inherit", "inherit"],
  });
  t.after(() => { child.kill("SIGKILL"); server.close(); fs.rmSync(sa, { recursive: true }); });
  const patchCount = (n) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for patch ${n}; got ${patches}`)), 10000);
    const check = () => { if (patches.length >= n) { clearTimeout(timer); resolve(); } };
    waiter = check;
    check();
  });
  const settle = () => new Promise((r) => setTimeout(r, 600));

  await patchCount(1);  // the first PATCH failed (503) and was retried
  assert.deepEqual(patches, ["0"]);
  metrics = metrics.replace("psd3d_worker_busy 0", "psd3d_worker_busy 1");
  await patchCount(2);
  assert.deepEqual(patches, ["0", "1000"]);
  metricsStatus = 500;  // worker unreachable: stays "busy", no new patch
  await settle();
  assert.deepEqual(patches, ["0", "1000"]);
  metricsStatus = 200;
  metrics = metrics.replace("psd3d_worker_busy 1", "psd3d_worker_busy 0");
  await patchCount(3);
  await settle();
  assert.deepEqual(patches, ["0", "1000", "0"]);  // and no repeats while unchanged
});

test("SIGTERM during the sleep exits at once with status 0", async (t) => {
  let patched = null;
  const server = http.createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics") {
      res.writeHead(200, { "Content-Type": "text/plain" });
      return res.end("psd3d_worker_busy 0\n");
    }
    req.resume();
    req.on("end", () => {
      res.writeHead(200);
      res.end("{}");
      if (patched) patched();
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const port = server.address().port;
  const sa = fs.mkdtempSync(path.join(os.tmpdir(), "psd3d-sa-"));
  fs.writeFileSync(path.join(sa, "token"), "tok123");
  const gotPatch = new Promise((r) => (patched = r));
  // A 60 s period: after the first PATCH the script sits in its sleep until long after this test's
  // deadline. Here it is not PID 1, so without the trap SIGTERM would kill it (signal, no exit code);
  // without the background sleep + wait the trap would only run when the sleep ends.
  const child = spawn("sh", [script], {
    env: { ...process.env, POD_NAME: "pod1", POD_NAMESPACE: "ns1", SA_DIR: sa, PERIOD_SECONDS: "60",
      METRICS_URL: `http://127.0.0.1:${port}/metrics`, API_URL: `http://127.0.0.1:${port}` },
    stdio: ["ignore", "inherit", "inherit"],
  });
  t.after(() => { child.kill("SIGKILL"); server.close(); fs.rmSync(sa, { recursive: true }); });
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal })));
  await gotPatch;
  await new Promise((r) => setTimeout(r, 300));  // now in the sleep
  const sent = Date.now();
  child.kill("SIGTERM");
  const result = await Promise.race([exited, new Promise((r) => setTimeout(() => r("timeout"), 1000))]);
  assert.deepEqual(result, { code: 0, signal: null }, "the script did not exit within 1 s of SIGTERM with status 0");
  assert.ok(Date.now() - sent < 1000);
});
