import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { client, randomAdapter, tempRoot, tinyModel } from "./server-helpers";

const tmp = tempRoot("tunelab-serve-cli-");
after(() => tmp.remove());
const BIN = path.resolve(__dirname, "../../sdk/cli/main.js");

test("tunelab serve: repeated --adapter, --api-key, and SIGTERM that lets a running stream finish before exiting 0", async () => {
  const model = tinyModel(tmp.root, "base");
  randomAdapter(model, path.join(tmp.root, "a1"), 1);
  randomAdapter(model, path.join(tmp.root, "a2"), 2);
  const child = spawn(
    process.execPath,
    [
      BIN,
      "serve",
      "--model",
      model.dir,
      "--adapter",
      path.join(tmp.root, "a1"),
      "--adapter",
      `second=${path.join(tmp.root, "a2")}`,
      "--port",
      "0",
      "--api-key",
      "k",
    ],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+) \(models: ([^;)]+)/.exec(out);
      if (m) resolve(m[1]);
    });
    void exited.then(() => reject(new Error(`tunelab serve exited: ${out}${err}`)));
  });
  assert.match(out, /models: a1, base, second; API key required/);
  const models = await client(url, "k").models.list();
  assert.deepEqual(
    models.data.map((m) => m.id),
    ["base", "a1", "second"],
  );
  const stream = await client(url, "k").completions.create({ model: "second", prompt: "hi", max_tokens: 120, stream: true, ignore_eos: true } as never);
  const iterator = (stream as unknown as AsyncIterable<{ choices: { text: string; finish_reason: string | null }[] }>)[Symbol.asyncIterator]();
  await iterator.next();
  child.kill("SIGTERM");
  let finish: string | null = null;
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) finish = r.value.choices[0]?.finish_reason ?? finish;
  assert.equal(finish, "length");
  assert.equal(await exited, 0, err);
  assert.match(out, /SIGTERM: finishing in-flight requests\ntunelab serve: stopped/);
});

test("tunelab serve rejects unknown flags and bad values with its usage", async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; err: string }>((resolve) => {
      const child = spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      child.on("exit", (code) => resolve({ code, err }));
    });
  const unknown = await run(["--model", "x", "--prot", "1"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /unknown option --prot\nusage: tunelab serve/);
  const port = await run(["--model", "x", "--port", "eighty"]);
  assert.match(port.err, /--port must be an integer >= 0, got "eighty"/);
  assert.equal((await run([])).code, 2);
});
