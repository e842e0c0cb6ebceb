/** Server-sent events as OpenAI streams them: `data: {json}\n\n` per chunk, `data: [DONE]\n\n` at the end. */
import type { FastifyReply } from "fastify";

/** Writes one SSE response on a hijacked fastify reply. */
export class SseWriter {
  private started = false;

  constructor(private readonly reply: FastifyReply) {}

  /** Takes the response over from fastify and sends the headers. */
  start(): void {
    this.reply.hijack();
    this.reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    this.started = true;
  }

  /** Whether the client is still there. */
  get open(): boolean {
    return this.started && !this.reply.raw.destroyed && !this.reply.raw.writableEnded;
  }

  /** Sends one JSON event. */
  send(data: unknown): void {
    if (this.open) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Sends `data: [DONE]` and ends the response. */
  done(): void {
    if (this.open) this.reply.raw.end("data: [DONE]\n\n");
  }

  /** Ends the response without [DONE] (after an error event). */
  end(): void {
    if (this.open) this.reply.raw.end();
  }
}
