/**
 * Text pieces on their way to a streaming client: held back while they may be the start of a stop string (OpenAI
 * leaves stop strings out of the output), and for chat, reasoning and answer each trimmed as the whole reply is,
 * so that the streamed deltas join to exactly the non-streamed content and reasoning_content.
 */
import { THINK_CLOSE, THINK_OPEN, type ReplyPart } from "../chat";

/** Cuts a completion at its first stop string. */
export function cutAtStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && at < end) end = at;
  }
  return text.slice(0, end);
}

/** Passes text pieces on, holding back any tail that could begin a stop string and dropping everything from a stop string on. */
export class StopFilter {
  private text = "";
  private emitted = 0;
  private pending: { text: string; part: ReplyPart }[] = [];
  private stopped = false;

  constructor(
    private readonly stops: readonly string[],
    private readonly onText: (text: string, part: ReplyPart) => void,
  ) {}

  /** Adds a piece of generated text. */
  push(piece: string, part: ReplyPart = "answer"): void {
    if (this.stopped || !piece) return;
    this.pending.push({ text: piece, part });
    this.text += piece;
    // A stop string cannot begin inside text already sent: while it was incomplete, its start was held back.
    let stopAt = -1;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, this.emitted);
      if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
    }
    if (stopAt >= 0) {
      this.stopped = true;
      this.flush(stopAt);
      return;
    }
    this.flush(this.text.length - this.heldBack());
  }

  /** Emits what is left at the end of generation. */
  finish(): void {
    if (!this.stopped) this.flush(this.text.length);
  }

  /** Length of the longest tail of the text that is a proper prefix of a stop string. */
  private heldBack(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, this.text.length); n > best; n--) {
        if (this.text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  /** Emits the pending pieces up to absolute offset `upTo`, keeping each piece's part. */
  private flush(upTo: number): void {
    let at = this.text.length - this.pending.reduce((n, p) => n + p.text.length, 0);
    const rest: { text: string; part: ReplyPart }[] = [];
    for (const p of this.pending) {
      const start = at;
      at += p.text.length;
      const from = Math.max(start, this.emitted);
      const to = Math.min(at, upTo);
      if (to > from) this.onText(p.text.slice(from - start, to - start), p.part);
      if (at > upTo) rest.push({ text: p.text.slice(Math.max(0, upTo - start)), part: p.part });
    }
    this.emitted = Math.max(this.emitted, upTo);
    this.pending = rest;
  }
}

/** Streams text as `text.trim()` would give it: leading whitespace dropped, trailing whitespace held until more text follows. */
export class TrimmedStream {
  private started = false;
  private spaces = "";

  /** The part of `piece` that can be sent now ("" if none). */
  push(piece: string): string {
    if (!this.started) {
      piece = piece.trimStart();
      if (!piece) return "";
      this.started = true;
    }
    const text = this.spaces + piece;
    const trailing = /\s*$/.exec(text)![0];
    this.spaces = trailing;
    return text.slice(0, text.length - trailing.length);
  }
}

/** Chat deltas: reasoning (think tags removed) and answer, each trimmed, as `reasoning_content` and `content`. */
export class ChatDeltas {
  private readonly reasoning = new TrimmedStream();
  private readonly answer = new TrimmedStream();

  constructor(private readonly send: (delta: { content?: string; reasoning_content?: string }) => void) {}

  /** Takes a piece from ReplyStream (whole think tags only) and sends what is ready. */
  push(piece: string, part: ReplyPart): void {
    if (part === "reasoning") {
      const text = this.reasoning.push(piece.split(THINK_OPEN).join("").split(THINK_CLOSE).join(""));
      if (text) this.send({ reasoning_content: text });
    } else {
      const text = this.answer.push(piece);
      if (text) this.send({ content: text });
    }
  }
}
