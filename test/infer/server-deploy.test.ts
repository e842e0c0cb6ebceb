import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseAllDocuments } from "yaml";
import { command as serveCommand } from "../../sdk/cli/commands/serve";

const ROOT = path.resolve(__dirname, "../../..");
const DEPLOY = path.join(ROOT, "docs/deploy");

/** kubernetes-models ships ES modules only; TypeScript's CommonJS output would turn import() into require(). */
const importEsm = new Function("specifier", "return import(specifier)") as (specifier: string) => Promise<Record<string, unknown>>;

interface K8sModel {
  validate(): void;
}

/** The parts of the manifests the test reads. */
interface Probe {
  httpGet: { path: string; port: string | number };
}
interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  resources: { requests: Record<string, string | number>; limits: Record<string, string | number> };
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}
interface DeploymentDoc extends Manifest {
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { containers: Container[]; volumes: { persistentVolumeClaim: { claimName: string } }[]; terminationGracePeriodSeconds: number };
    };
  };
}
interface ServiceDoc extends Manifest {
  spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] };
}

async function modelClass(apiVersion: string, kind: string): Promise<new (data: unknown) => K8sModel> {
  const group = apiVersion === "v1" ? "v1" : apiVersion; // e.g. apps/v1
  const mod = await importEsm(`kubernetes-models/${group}/${kind}`);
  return mod[kind] as new (data: unknown) => K8sModel;
}

/** The serve command accepts these arguments (unknown flags throw; --help returns before starting anything). */
async function assertServeArgs(args: string[]): Promise<void> {
  const log = console.log;
  console.log = () => {};
  try {
    assert.equal(await serveCommand.run([...args, "--help"]), 0, args.join(" "));
  } finally {
    console.log = log;
  }
}

test("docs/deploy/kubernetes.yaml: every object valid against Kubernetes' schemas (kubernetes-models), one GPU, probes on /health", async () => {
  const docs = parseAllDocuments(fs.readFileSync(path.join(DEPLOY, "kubernetes.yaml"), "utf8")).map((d) => {
    assert.deepEqual(d.errors, []);
    return d.toJS() as Manifest;
  });
  assert.deepEqual(docs.map((d) => d.kind).sort(), ["Deployment", "PersistentVolumeClaim", "Service"]);
  for (const doc of docs) {
    const Model = await modelClass(doc.apiVersion, doc.kind);
    new Model(doc).validate(); // throws with the failing path when the object breaks the schema
  }

  const deployment = docs.find((d) => d.kind === "Deployment") as DeploymentDoc;
  const pod = deployment.spec.template.spec;
  assert.equal(pod.containers.length, 1);
  const c = pod.containers[0];
  assert.equal(c.resources.limits["nvidia.com/gpu"], 1);
  assert.equal(c.resources.requests["nvidia.com/gpu"], 1);
  assert.equal(String(c.resources.requests.cpu), "4");
  assert.equal(c.resources.requests.memory, "16Gi");
  const port = c.ports.find((p) => p.name === "http")!;
  for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"] as const) {
    assert.equal(c[probe].httpGet.path, "/health", probe);
    assert.ok(c[probe].httpGet.port === "http" || c[probe].httpGet.port === port.containerPort, probe);
  }
  // The Service reaches these pods on that port.
  const service = docs.find((d) => d.kind === "Service") as ServiceDoc;
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.deepEqual(deployment.spec.template.metadata.labels, { ...deployment.spec.template.metadata.labels, ...service.spec.selector });
  assert.ok([port.name, port.containerPort].includes(service.spec.ports[0].targetPort));
  // The volume comes from the claim in the same file; the container arguments are ones `tunelab serve` accepts.
  const claim = docs.find((d) => d.kind === "PersistentVolumeClaim")!;
  assert.equal(pod.volumes[0].persistentVolumeClaim.claimName, claim.metadata.name);
  await assertServeArgs(c.args);
  assert.equal(c.args[c.args.indexOf("--port") + 1], String(port.containerPort));
  assert.ok(pod.terminationGracePeriodSeconds >= 30, "time for in-flight requests to finish");

  // The validator does reject a broken object (a control for the checks above).
  const Deployment = await modelClass("apps/v1", "Deployment");
  const broken = structuredClone(deployment);
  (broken.spec.template.spec.containers[0].ports[0] as { containerPort: unknown }).containerPort = "eight thousand";
  assert.throws(() => new Deployment(broken).validate(), /containerPort must be integer/);
});

test("docs/deploy/Dockerfile: copies files that exist and starts `tunelab serve` with arguments it accepts", async () => {
  const text = fs.readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8");
  const lines = text.split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  const stages = lines.filter((l) => l.startsWith("FROM "));
  assert.equal(stages.length, 2);
  assert.match(stages[1], /nvidia\/cuda:12\.[\d.]+-cudnn-runtime/);
  for (const l of lines.filter((x) => x.startsWith("COPY ") && !x.includes("--from="))) {
    const parts = l.split(/\s+/).slice(1, -1);
    for (const p of parts) assert.ok(fs.existsSync(path.join(ROOT, p)), `COPY ${p}: not in the repository`);
  }
  const json = (instr: string) => JSON.parse(lines.find((l) => l.startsWith(`${instr} `))!.slice(instr.length + 1)) as string[];
  const entrypoint = json("ENTRYPOINT");
  assert.deepEqual(entrypoint, ["node", "dist/sdk/cli/main.js", "serve"]);
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  assert.equal(pkg.bin.tunelab, entrypoint[1]);
  assert.ok(pkg.dependencies.fastify, "fastify survives npm prune --omit=dev");
  assert.ok(pkg.scripts["install-cuda"], "the image runs npm run install-cuda");
  await assertServeArgs(json("CMD"));
  const exposed = lines.find((l) => l.startsWith("EXPOSE "))!.split(/\s+/)[1];
  const cmd = json("CMD");
  assert.equal(cmd[cmd.indexOf("--port") + 1], exposed);
});
