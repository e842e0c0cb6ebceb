/** Errors a client sees, in OpenAI's shape: `{ "error": { "message", "type", "param", "code" } }` with an HTTP status. */

/** OpenAI's error body. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A request that cannot be served: its HTTP status and the OpenAI-shaped error the client gets. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? "server_error" : "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  /** The JSON body sent to the client. */
  body(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: a field is missing or has the wrong type or value (`param` names it). */
export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, "invalid_request_error", param, code);
}

/** The generation queue of a model is full: 429, the client should retry later. */
export class QueueFullError extends ApiError {
  constructor(model: string, limit: number) {
    super(
      429,
      `the server is busy: ${limit} requests for model "${model}" are already waiting (--max-queue); retry later`,
      "rate_limit_error",
      null,
      "queue_full",
    );
  }
}

/** The server is shutting down and takes no new work: 503. */
export class ShuttingDownError extends ApiError {
  constructor() {
    super(503, "the server is shutting down and accepts no new requests", "server_error", null, "shutting_down");
  }
}
