/** The server's Prometheus metrics, written in the text exposition format (version 0.0.4) for GET /metrics. */

/** Upper bounds (seconds) of the request latency histogram. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Upper bounds of the batch size histogram. */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }
  observe(v: number): void {
    this.bounds.forEach((b, i) => {
      if (v <= b) this.counts[i]++;
    });
    this.sum += v;
    this.count++;
  }
}

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labels = (l: Record<string, string>) =>
  `{${Object.entries(l)
    .map(([k, v]) => `${k}="${escape(v)}"`)
    .join(",")}}`;

/** Counters and histograms of one server. */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private readonly tokens = new Map<string, { prompt: number; completion: number }>();
  private readonly batches = new Histogram(BATCH_BUCKETS);

  /** Counts one finished request of `route` with its status and latency. */
  request(route: string, status: number, seconds: number): void {
    const key = JSON.stringify([route, String(status)]);
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = new Histogram(LATENCY_BUCKETS)));
    h.observe(seconds);
  }

  /** Adds the tokens of one generation. */
  generated(model: string, promptTokens: number, completionTokens: number): void {
    const t = this.tokens.get(model) ?? { prompt: 0, completion: 0 };
    t.prompt += promptTokens;
    t.completion += completionTokens;
    this.tokens.set(model, t);
  }

  /** Records the rows of one forward pass. */
  batch(size: number): void {
    this.batches.observe(size);
  }

  /** The exposition text; `gauges` adds current values (queue lengths) by model. */
  render(gauges: { queued: Record<string, number>; running: Record<string, number> }): string {
    const out: string[] = [];
    out.push("# HELP tunelab_requests_total HTTP requests served, by route and status code.", "# TYPE tunelab_requests_total counter");
    for (const [key, n] of this.requests) {
      const [route, status] = JSON.parse(key) as [string, string];
      out.push(`tunelab_requests_total${labels({ route, status })} ${n}`);
    }
    out.push(
      "# HELP tunelab_request_duration_seconds Time from request to the end of the response, by route.",
      "# TYPE tunelab_request_duration_seconds histogram",
    );
    for (const [route, h] of this.latency) histogramLines(out, "tunelab_request_duration_seconds", { route }, h);
    out.push("# HELP tunelab_prompt_tokens_total Prompt tokens processed, by model.", "# TYPE tunelab_prompt_tokens_total counter");
    for (const [model, t] of this.tokens) out.push(`tunelab_prompt_tokens_total${labels({ model })} ${t.prompt}`);
    out.push("# HELP tunelab_generation_tokens_total Tokens generated, by model.", "# TYPE tunelab_generation_tokens_total counter");
    for (const [model, t] of this.tokens) out.push(`tunelab_generation_tokens_total${labels({ model })} ${t.completion}`);
    out.push("# HELP tunelab_batch_size Rows (requests) in each forward pass.", "# TYPE tunelab_batch_size histogram");
    histogramLines(out, "tunelab_batch_size", {}, this.batches);
    out.push("# HELP tunelab_queue_waiting Requests waiting for a batch, by model.", "# TYPE tunelab_queue_waiting gauge");
    for (const [model, n] of Object.entries(gauges.queued)) out.push(`tunelab_queue_waiting${labels({ model })} ${n}`);
    out.push("# HELP tunelab_queue_running Requests in the running batch, by model.", "# TYPE tunelab_queue_running gauge");
    for (const [model, n] of Object.entries(gauges.running)) out.push(`tunelab_queue_running${labels({ model })} ${n}`);
    return out.join("\n") + "\n";
  }
}

function histogramLines(out: string[], name: string, l: Record<string, string>, h: Histogram): void {
  h.bounds.forEach((b, i) => out.push(`${name}_bucket${labels({ ...l, le: String(b) })} ${h.counts[i]}`));
  out.push(`${name}_bucket${labels({ ...l, le: "+Inf" })} ${h.count}`);
  const suffix = Object.keys(l).length ? labels(l) : "";
  out.push(`${name}_sum${suffix} ${h.sum}`, `${name}_count${suffix} ${h.count}`);
}
