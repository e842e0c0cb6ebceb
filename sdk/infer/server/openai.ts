/**
 * The OpenAI-compatible routes: POST /v1/chat/completions and /v1/completions (streaming as server-sent events,
 * chunk objects as OpenAI defines them, R1 reasoning as DeepSeek's `reasoning_content`) and GET /v1/models.
 */
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { promptOpensThinking, ReplyStream, splitReasoning } from "../chat";
import type { GenerateOptions, GenerationResult } from "../generate";
import { ApiError, badRequest } from "./errors";
import type { ServedModel } from "./models";
import type { ServerMetrics } from "./metrics";
import { SseWriter } from "./sse";
import { ChatDeltas, cutAtStop, StopFilter } from "./stream-text";
import { parseChatRequest, parseCompletionRequest, type SamplingRequest } from "./validate";

/** What the routes need from the server. */
export interface RouteContext {
  models: readonly ServedModel[];
  metrics: ServerMetrics;
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Largest batch (also the most prompts in one /v1/completions request). */
  maxBatchSize: number;
  /** The model a request without `model` gets. */
  defaultModel: string;
}

type Generating = Extract<ServedModel, { kind: "generate" }>;

/** The served model a request names (404 when unknown), or the default. */
export function findModel(ctx: RouteContext, name: string | undefined): ServedModel {
  const id = name ?? ctx.defaultModel;
  const m = ctx.models.find((x) => x.id === id);
  if (!m) {
    throw new ApiError(
      404,
      `the model "${id}" does not exist; this server serves ${ctx.models.map((x) => `"${x.id}"`).join(", ")}`,
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  }
  return m;
}

function generatingModel(ctx: RouteContext, name: string | undefined): Generating {
  const m = findModel(ctx, name);
  if (m.kind !== "generate")
    throw badRequest(`the model "${m.id}" is a sequence classifier; send {"text": ...} to POST /predict`, "model", "model_not_generative");
  return m;
}

/** Generation options of a request for a prompt of `promptTokens` tokens, within the model's context length. */
export function generateOptions(ctx: RouteContext, m: Generating, promptTokens: number, req: SamplingRequest, param: string): GenerateOptions {
  const context = m.generator.base.config.maxPositionEmbeddings;
  const room = context - promptTokens;
  if (room < 1) throw badRequest(`the prompt is ${promptTokens} tokens; the model's context length is ${context}`, param, "context_length_exceeded");
  if (req.maxTokens !== undefined && req.maxTokens > room) {
    throw badRequest(
      `the prompt (${promptTokens} tokens) plus max_tokens (${req.maxTokens}) exceeds the model's context length of ${context}`,
      "max_tokens",
      "context_length_exceeded",
    );
  }
  const fallback = Math.min(ctx.maxTokens, m.generator.base.generationConfig?.maxNewTokens ?? 256);
  const options: GenerateOptions = { maxNewTokens: req.maxTokens ?? Math.min(fallback, room), stopStrings: req.stop };
  if (req.temperature !== undefined) {
    options.temperature = req.temperature;
    options.doSample = req.temperature > 0;
  }
  if (req.topP !== undefined) options.topP = req.topP;
  if (req.topK !== undefined) options.topK = req.topK;
  if (req.repetitionPenalty !== undefined) options.repetitionPenalty = req.repetitionPenalty;
  if (req.seed !== undefined) options.seed = req.seed;
  if (req.ignoreEos) options.eosTokenIds = [];
  return options;
}

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;
const now = () => Math.floor(Date.now() / 1000);
const usageOf = (results: readonly GenerationResult[]) => {
  const prompt = results.reduce((n, r) => n + r.promptTokens, 0);
  const completion = results.reduce((n, r) => n + r.tokens.length, 0);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
};

/** Aborts `controller` when the client goes away before the response is complete (its rows stop generating). */
export function abortOnDisconnect(reply: FastifyReply, controller: AbortController): void {
  reply.raw.on("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
}

/** Sends an error as a last SSE event (the status line has gone out already). */
function streamError(sse: SseWriter, err: unknown): void {
  const e = err instanceof ApiError ? err : new ApiError(500, err instanceof Error ? err.message : String(err));
  sse.send(e.body());
  sse.end();
}

async function chatCompletions(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const req = parseChatRequest(request.body, ctx.maxTokens);
  const m = generatingModel(ctx, req.model);
  const tok = m.generator.tokenizer;
  let prompt: string;
  try {
    prompt = tok.applyChatTemplate(req.messages, { addGenerationPrompt: true, enableThinking: req.enableThinking });
  } catch (e) {
    throw badRequest(`the model's chat template could not render these messages: ${e instanceof Error ? e.message : String(e)}`, "messages");
  }
  const ids = tok.encode(prompt, { addSpecialTokens: false }); // the template writes its own special tokens
  const opened = promptOpensThinking(prompt);
  const options = generateOptions(ctx, m, ids.length, req, "messages");
  const id = newId("chatcmpl");
  const created = now();

  if (!req.stream) {
    const controller = new AbortController();
    const done = m.queue.submit({ prompt: ids, options, signal: controller.signal });
    abortOnDisconnect(reply, controller);
    const result = await done;
    ctx.metrics.generated(m.id, result.promptTokens, result.tokens.length);
    const { reasoning, answer } = splitReasoning(cutAtStop(result.text, req.stop), opened);
    const message = { role: "assistant", content: answer, ...(reasoning ? { reasoning_content: reasoning } : {}) };
    return {
      id,
      object: "chat.completion",
      created,
      model: m.id,
      choices: [{ index: 0, message, logprobs: null, finish_reason: result.finishReason }],
      usage: usageOf([result]),
    };
  }

  const sse = new SseWriter(reply);
  const chunk = (delta: Record<string, string>, finish: string | null) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model: m.id,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  const deltas = new ChatDeltas((d) => sse.send(chunk(d, null)));
  const stops = new StopFilter(req.stop, (text, part) => deltas.push(text, part));
  const stream = new ReplyStream(tok, opened, (text, part) => stops.push(text, part));
  const controller = new AbortController();
  const done = m.queue.submit({ prompt: ids, options: { ...options, onToken: (t) => stream.push(t) }, signal: controller.signal }); // 429 before any byte is sent
  sse.start();
  abortOnDisconnect(reply, controller);
  sse.send(chunk({ role: "assistant", content: "" }, null));
  try {
    const result = await done;
    stream.finish();
    stops.finish();
    ctx.metrics.generated(m.id, result.promptTokens, result.tokens.length);
    sse.send(chunk({}, result.finishReason));
    if (req.includeUsage) sse.send({ id, object: "chat.completion.chunk", created, model: m.id, choices: [], usage: usageOf([result]) });
    sse.done();
  } catch (e) {
    streamError(sse, e);
  }
  return reply;
}

async function completions(ctx: RouteContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const req = parseCompletionRequest(request.body, ctx.maxTokens, ctx.maxBatchSize);
  const m = generatingModel(ctx, req.model);
  const tok = m.generator.tokenizer;
  const prompts = req.prompts.map((p, i) => {
    const ids = tok.encode(p, { addSpecialTokens: true });
    if (ids.length === 0) throw badRequest(`prompt${req.prompts.length > 1 ? `[${i}]` : ""} is empty`, "prompt");
    return { ids, options: generateOptions(ctx, m, ids.length, req, "prompt") };
  });
  const id = newId("cmpl");
  const created = now();
  const choice = (index: number, text: string, finish: string | null) => ({ index, text, logprobs: null, finish_reason: finish });

  if (!req.stream) {
    const controller = new AbortController();
    const pending = m.queue.submitAll(prompts.map((p) => ({ prompt: p.ids, options: p.options, signal: controller.signal })));
    abortOnDisconnect(reply, controller);
    const results = await Promise.all(pending);
    results.forEach((r) => ctx.metrics.generated(m.id, r.promptTokens, r.tokens.length));
    return {
      id,
      object: "text_completion",
      created,
      model: m.id,
      choices: results.map((r, i) => choice(i, cutAtStop(r.text, req.stop), r.finishReason)),
      usage: usageOf(results),
    };
  }

  const sse = new SseWriter(reply);
  const send = (index: number, text: string, finish: string | null) =>
    sse.send({ id, object: "text_completion", created, model: m.id, choices: [choice(index, text, finish)] });
  const controller = new AbortController();
  const streams = prompts.map((_, i) => {
    const stops = new StopFilter(req.stop, (text) => send(i, text, null));
    return { stops, text: new ReplyStream(tok, false, (text) => stops.push(text)) };
  });
  const pending = m.queue.submitAll(
    prompts.map((p, i) => ({ prompt: p.ids, options: { ...p.options, onToken: (t: number) => streams[i].text.push(t) }, signal: controller.signal })),
  );
  sse.start();
  abortOnDisconnect(reply, controller);
  try {
    const results = await Promise.all(
      pending.map(async (done, i) => {
        const result = await done;
        streams[i].text.finish();
        streams[i].stops.finish();
        ctx.metrics.generated(m.id, result.promptTokens, result.tokens.length);
        send(i, "", result.finishReason);
        return result;
      }),
    );
    if (req.includeUsage) sse.send({ id, object: "text_completion", created, model: m.id, choices: [], usage: usageOf(results) });
    sse.done();
  } catch (e) {
    controller.abort();
    streamError(sse, e);
  }
  return reply;
}

/** Registers /v1/chat/completions, /v1/completions and /v1/models. */
export function registerOpenAiRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post("/v1/chat/completions", (request, reply) => chatCompletions(ctx, request, reply));
  app.post("/v1/completions", (request, reply) => completions(ctx, request, reply));
  app.get("/v1/models", async () => ({
    object: "list",
    data: ctx.models.map((m) => ({
      id: m.id,
      object: "model",
      created: m.created,
      owned_by: "tunelab",
      task: m.kind === "generate" ? "text-generation" : "text-classification",
    })),
  }));
}
