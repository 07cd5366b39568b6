/**
 * Following one agent run's event stream to its end. The run belongs to the
 * server, not to this connection: when the stream breaks before the run's
 * last event, the follower re-attaches with `Last-Event-ID` and carries on,
 * so no event is lost or seen twice.
 */
import { ApiError } from "./errors";
import { SseParser } from "./sse";
import type { RunEvent } from "./types";

const TERMINAL = new Set(["message.completed", "run.failed", "run.cancelled"]);
const KNOWN = new Set(["run.started", "progress", ...TERMINAL]);

export interface RunStreams {
  /** Opens the first stream: the message POST, or a re-attach after a reload. */
  open: () => Promise<Response>;
  /** Opens the stream again from after `lastEventId` (null: from the start). */
  reattach: (runId: string, lastEventId: string | null) => Promise<Response>;
}

export interface FollowOptions {
  /** The run id, when it is known before the first event (after a reload). */
  runId?: string;
  signal?: AbortSignal;
  /** How many times in a row a broken stream is re-attached before giving up. */
  maxReattempts?: number;
  /** Waits before re-attaching; tests pass one that does not wait. */
  pause?: (attempt: number) => Promise<void>;
}

const defaultPause = (attempt: number) =>
  new Promise<void>((resolve) =>
    setTimeout(resolve, Math.min(8000, 500 * 2 ** attempt)),
  );

/** Turns one SSE event into a run event, or null for events this app does not know. */
export function toRunEvent(type: string, data: string): RunEvent | null {
  if (!KNOWN.has(type) || data === "") return null;
  const payload = JSON.parse(data) as object;
  return { ...payload, type } as RunEvent;
}

/**
 * Calls `onEvent` for each event of the run until its last one, which it
 * returns. Throws `ApiError` when the run cannot be followed any more.
 */
export async function followRun(
  streams: RunStreams,
  onEvent: (event: RunEvent) => void,
  options: FollowOptions = {},
): Promise<RunEvent> {
  const maxReattempts = options.maxReattempts ?? 6;
  const pause = options.pause ?? defaultPause;
  let runId = options.runId ?? null;
  let lastEventId: string | null = null;
  let failures = 0;
  let lastFailure: unknown = null;
  for (;;) {
    const parser = new SseParser();
    let progressed = false;
    try {
      const response: Response =
        runId && (failures > 0 || lastEventId !== null)
          ? await streams.reattach(runId, lastEventId)
          : await streams.open();
      for await (const chunk of textChunks(response, options.signal)) {
        for (const sse of parser.push(chunk)) {
          const event = toRunEvent(sse.event, sse.data);
          if (sse.id !== null) lastEventId = sse.id;
          if (!event) continue;
          progressed = true;
          if (event.type === "run.started") runId = event.run_id;
          onEvent(event);
          if (TERMINAL.has(event.type)) return event;
        }
      }
      lastEventId = parser.lastEventId ?? lastEventId;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (error instanceof ApiError && error.status !== 0) throw error;
      lastFailure = error;
    }
    if (options.signal?.aborted)
      throw new DOMException("The run is no longer followed", "AbortError");
    failures = progressed ? 1 : failures + 1;
    // Before the run has an id there is nothing to re-attach to: the message may not have arrived.
    if (!runId) throw lastFailure instanceof ApiError ? lastFailure : lostRun();
    if (failures > maxReattempts) throw lostRun();
    await pause(failures - 1);
  }
}

function lostRun(): ApiError {
  return new ApiError(
    0,
    "run_stream_lost",
    "The connection to the agent was lost. The agent may still be working: reload the page to see its answer.",
  );
}

async function* textChunks(
  response: Response,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  if (!response.body) return;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const stop = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", stop);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield decoder.decode(value, { stream: true });
    }
    const rest = decoder.decode();
    if (rest) yield rest;
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}
