/**
 * The one place where a failed API call becomes words a person understands,
 * with what to do next. Every caller shows `ApiError.message` as it is.
 */
import type { ErrorBody, RunError } from "./types";

export class ApiError extends Error {
  constructor(
    /** HTTP status, or 0 when the server could not be reached at all. */
    readonly status: number,
    /** The server's snake_case reason, or a client-side one like `network`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

const AGENT_DOWN_CODES = new Set([
  "agent_server_unreachable",
  "agent_unreachable",
  "mcp_unreachable",
  "upstream_unreachable",
]);

/** Words for a failure, given its status, the server's code and message. */
export function plainWords(
  status: number,
  code: string,
  serverMessage: string,
): string {
  if (status === 0) {
    return "Daedalus cannot be reached. Check your connection, then try again.";
  }
  if (status === 401) {
    return "You are signed out. Reload the page to sign in again.";
  }
  if (status === 413) {
    return "That file is too large for this server. Pick a smaller file or ask an administrator to raise the upload limit.";
  }
  if (status === 404) {
    return "This item no longer exists. It may have been deleted; go back to the list.";
  }
  if (AGENT_DOWN_CODES.has(code) || status === 502 || status === 504) {
    return withDetail(
      "The agent server is not answering. Check that it is running and its URL in the workspace settings, then try again.",
      serverMessage,
    );
  }
  if (status === 429) {
    return "Too many requests just now. Wait a moment, then try again.";
  }
  if (status >= 500) {
    return withDetail(
      "Daedalus ran into a problem. Try again in a moment.",
      serverMessage,
    );
  }
  return (
    serverMessage ||
    "The request was not accepted. Check what you entered and try again."
  );
}

function withDetail(sentence: string, detail: string): string {
  return detail ? `${sentence} (${detail})` : sentence;
}

/** Words for the error a failed run recorded on its answer. */
export function runFailureWords(recorded: RunError | string | null): string {
  const error =
    typeof recorded === "string" ? { code: "", message: recorded } : recorded;
  if (!error)
    return "The agent could not answer. Use Retry to send the message again.";
  if (AGENT_DOWN_CODES.has(error.code) || error.code.includes("unreachable")) {
    return plainWords(502, error.code, error.message);
  }
  const reason = error.message || "The agent could not answer.";
  return `${reason} Use Retry to send the message again.`;
}

/** Builds the ApiError for a non-2xx response body (which may not be JSON). */
export function errorFromBody(status: number, bodyText: string): ApiError {
  let code = `http_${status}`;
  let serverMessage = "";
  try {
    const body = JSON.parse(bodyText) as Partial<ErrorBody>;
    if (typeof body.error?.code === "string") code = body.error.code;
    if (typeof body.error?.message === "string")
      serverMessage = body.error.message;
  } catch {
    // A proxy's HTML error page: the status alone says enough.
  }
  return new ApiError(status, code, plainWords(status, code, serverMessage));
}

export function networkError(): ApiError {
  return new ApiError(0, "network", plainWords(0, "network", ""));
}

/** A message for anything thrown, for showing in an error banner. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return "Something went wrong in the page. Reload it and try again.";
}
