/**
 * `tunelab serve`: a fastify HTTP server over one base model and its adapters. POST /predict, the OpenAI-compatible
 * /v1 routes (see openai.ts), GET /health and GET /metrics; concurrent requests are batched per model (queue.ts);
 * bodies, max_tokens and queues are bounded; optional Bearer API key; close() finishes in-flight requests first.
 */
import { timingSafeEqual } from "node:crypto";
import Fastify, { type FastifyError, type FastifyInstance } from "fastify";
import { openModel, type BaseModel } from "../../models/model";
import type { Device } from "../../runtime/device";
import { ApiError, badRequest, ShuttingDownError } from "./errors";
import { ServerMetrics } from "./metrics";
import { closeServedModels, openServedModels, type AdapterSpec, type ServedModel } from "./models";
import { abortOnDisconnect, findModel, generateOptions, registerOpenAiRoutes, type RouteContext } from "./openai";
import { cutAtStop } from "./stream-text";
import { parsePredictRequest } from "./validate";

/** Options of `serve` (the CLI's flags in camelCase). */
export interface ServeOptions {
  /** Adapters served beside the base model, each under its own name. */
  adapters?: readonly (string | AdapterSpec)[];
  /** Port; default 8000; 0 picks a free one. */
  port?: number;
  /** Address to listen on; default "127.0.0.1" ("0.0.0.0" in a container). */
  host?: string;
  /** When set, /v1 and /predict need `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Name of the base model in requests and /v1/models; default its folder's name. */
  servedModelName?: string;
  /** Most requests batched into one forward pass per model; default 16. */
  maxBatchSize?: number;
  /** Most requests waiting per model before 429; default 256. */
  maxQueue?: number;
  /** Largest max_tokens a request may ask for; default 2048. */
  maxTokens?: number;
  /** Largest request body in bytes; default 1 MiB (413 above). */
  maxBodyBytes?: number;
  /** Execution provider; default "cpu". */
  device?: Device;
  /** Threads per op (onnxruntime's intra-op threads). */
  threads?: number;
}

/** A running server. */
export interface ServerHandle {
  /** Base URL, e.g. http://127.0.0.1:8000 (the OpenAI client's baseURL is url + "/v1"). */
  readonly url: string;
  readonly port: number;
  /** Names of the served models (the first is the default). */
  readonly models: string[];
  /** The fastify instance (for inject() in tests and extra routes). */
  readonly app: FastifyInstance;
  /** Refuses new requests (503), lets in-flight ones finish, then stops listening and frees the sessions. */
  close(): Promise<void>;
}

/** Routes whose requests need the API key. */
const PROTECTED = /^\/(v1\/|predict\b)/;

function sameKey(given: string, want: string): boolean {
  const [a, b] = [Buffer.from(given), Buffer.from(want)];
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Maps fastify's own errors (body parsing, limits) and ours to OpenAI-shaped errors. */
function toApiError(err: FastifyError | Error, maxBodyBytes: number): ApiError {
  if (err instanceof ApiError) return err;
  const code = (err as FastifyError).code;
  const status = (err as FastifyError).statusCode;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE")
    return new ApiError(
      413,
      `the request body is larger than this server's limit of ${maxBodyBytes} bytes (--max-body-bytes)`,
      "invalid_request_error",
      null,
      "request_too_large",
    );
  if (code === "FST_ERR_CTP_INVALID_JSON_BODY" || err instanceof SyntaxError)
    return badRequest(`the request body is not valid JSON: ${err.message}`, null, "invalid_json");
  if (code === "FST_ERR_CTP_EMPTY_JSON_BODY") return badRequest("the request body is empty; send a JSON object", null, "invalid_json");
  if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
    return new ApiError(415, "send the body as JSON with the header Content-Type: application/json", "invalid_request_error", null, "unsupported_media_type");
  if (status !== undefined && status >= 400 && status < 500) return new ApiError(status, err.message);
  return new ApiError(500, `internal error: ${err.message}`);
}

/** Starts a server for `model` (a folder or an opened model) and its adapters; resolves once it listens. */
export async function serve(model: string | BaseModel, options: ServeOptions = {}): Promise<ServerHandle> {
  const base = typeof model === "string" ? openModel(model) : model;
  const maxBatchSize = options.maxBatchSize ?? 16;
  const maxQueue = options.maxQueue ?? 256;
  const maxTokens = options.maxTokens ?? 2048;
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  for (const [name, v, min] of [
    ["maxBatchSize", maxBatchSize, 1],
    ["maxQueue", maxQueue, 0],
    ["maxTokens", maxTokens, 1],
    ["maxBodyBytes", maxBodyBytes, 1],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`serve: ${name} must be an integer >= ${min}, got ${v}`);
  }
  const metrics = new ServerMetrics();
  const adapters = (options.adapters ?? []).map((a) => (typeof a === "string" ? { path: a } : a));
  const models: ServedModel[] = await openServedModels(base, adapters, {
    maxBatchSize,
    maxQueue,
    device: options.device,
    threads: options.threads,
    servedModelName: options.servedModelName,
    onStep: (n) => metrics.batch(n),
  });
  const ctx: RouteContext = { models, metrics, maxTokens, maxBatchSize, defaultModel: (models[1] ?? models[0]).id };

  const app = Fastify({ bodyLimit: maxBodyBytes, logger: false, forceCloseConnections: true });
  let closing = false;
  let inFlight = 0;
  let settled: (() => void) | null = null;

  app.addHook("onRequest", async (request, reply) => {
    inFlight++;
    const start = process.hrtime.bigint();
    reply.raw.once("close", () => {
      metrics.request(request.routeOptions.url ?? "unmatched", reply.raw.statusCode, Number(process.hrtime.bigint() - start) / 1e9);
      if (--inFlight === 0) settled?.();
    });
    if (closing) throw new ShuttingDownError();
    if (options.apiKey !== undefined && PROTECTED.test(request.url)) {
      const header = request.headers.authorization;
      const given = typeof header === "string" && /^Bearer\s+/i.test(header) ? header.replace(/^Bearer\s+/i, "") : null;
      if (given === null)
        throw new ApiError(401, "missing API key: send the header Authorization: Bearer <key>", "invalid_request_error", null, "invalid_api_key");
      if (!sameKey(given, options.apiKey)) throw new ApiError(401, "incorrect API key provided", "invalid_request_error", null, "invalid_api_key");
    }
  });
  app.setErrorHandler((err: FastifyError, _request, reply) => {
    const e = toApiError(err, maxBodyBytes);
    if (e.status === 500) console.error(`tunelab serve: ${err.stack ?? err.message}`);
    return reply.status(e.status).send(e.body());
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new ApiError(
      404,
      `no route ${request.method} ${request.url.split("?")[0]}; see GET /v1/models, POST /v1/chat/completions, /v1/completions, /predict`,
      "invalid_request_error",
      null,
      "not_found",
    );
    return reply.status(404).send(e.body());
  });

  app.get("/health", async () => ({ status: "ok", models: models.map((m) => m.id) }));
  app.get("/metrics", async (_request, reply) => {
    const gauges = {
      queued: Object.fromEntries(models.map((m) => [m.id, m.queue.queued])),
      running: Object.fromEntries(models.map((m) => [m.id, m.queue.running])),
    };
    return reply.type("text/plain; version=0.0.4; charset=utf-8").send(metrics.render(gauges));
  });
  app.post("/predict", async (request, reply) => {
    const req = parsePredictRequest(request.body, maxTokens);
    const m = findModel(ctx, req.model);
    if (m.kind === "classify") {
      const c = await m.queue.submit(req.text);
      return {
        model: m.id,
        label: c.label,
        score: c.score,
        scores: c.scores,
        usage: { prompt_tokens: c.promptTokens, completion_tokens: 0, total_tokens: c.promptTokens },
      };
    }
    const ids = m.generator.tokenizer.encode(req.text, { addSpecialTokens: true });
    if (ids.length === 0) throw badRequest("text is empty", "text");
    const controller = new AbortController();
    const done = m.queue.submit({ prompt: ids, options: generateOptions(ctx, m, ids.length, req, "text"), signal: controller.signal });
    abortOnDisconnect(reply, controller);
    const r = await done;
    metrics.generated(m.id, r.promptTokens, r.tokens.length);
    const text = cutAtStop(r.text, req.stop);
    const usage = { prompt_tokens: r.promptTokens, completion_tokens: r.tokens.length, total_tokens: r.promptTokens + r.tokens.length };
    return { model: m.id, text, finish_reason: r.finishReason, usage };
  });
  registerOpenAiRoutes(app, ctx);

  const host = options.host ?? "127.0.0.1";
  try {
    await app.listen({ port: options.port ?? 8000, host });
  } catch (e) {
    await closeServedModels(models);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE")
      throw new Error(`serve: port ${options.port ?? 8000} on ${host} is in use; pick another with --port (0 picks a free one)`, { cause: e });
    throw e;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : (options.port ?? 8000);
  const url = `http://${host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;

  let closed: Promise<void> | null = null;
  return {
    url,
    port,
    models: [ctx.defaultModel, ...models.map((m) => m.id).filter((id) => id !== ctx.defaultModel)],
    app,
    close() {
      closed ??= (async () => {
        closing = true;
        await closeServedModels(models); // the queues finish what they hold
        if (inFlight > 0) await new Promise<void>((resolve) => (settled = resolve)); // and the responses are written
        await app.close();
      })();
      return closed;
    },
  };
}
