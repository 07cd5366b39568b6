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

/** Where following a run has got to, kept across re-attaches. */
interface Position {
  runId: string | null;
  lastEventId: string | null;
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
  const position: Position = {
    runId: options.runId ?? null,
    lastEventId: null,
  };
  let failures = 0;
  for (;;) {
    const { last, progressed, failure } = await readOnce(
      streams,
      position,
      onEvent,
      options,
      failures,
    );
    if (last) return last;
    if (options.signal?.aborted)
      throw new DOMException("The run is no longer followed", "AbortError");
    failures = progressed ? 1 : failures + 1;
    // Before the run has an id there is nothing to re-attach to: the message may not have arrived.
    if (!position.runId)
      throw failure instanceof ApiError ? failure : lostRun();
    if (failures > maxReattempts) throw lostRun();
    await pause(failures - 1);
  }
}

/** Opens the stream once and reads it until it ends, breaks, or the run ends. */
async function readOnce(
  streams: RunStreams,
  position: Position,
  onEvent: (event: RunEvent) => void,
  options: FollowOptions,
  failures: number,
): Promise<{ last: RunEvent | null; progressed: boolean; failure: unknown }> {
  const parser = new SseParser();
  let progressed = false;
  try {
    const { runId, lastEventId } = position;
    const response =
      runId && (failures > 0 || lastEventId !== null)
        ? await streams.reattach(runId, lastEventId)
        : await streams.open();
    for await (const chunk of textChunks(response, options.signal)) {
      for (const sse of parser.push(chunk)) {
        if (sse.id !== null) position.lastEventId = sse.id;
        const event = toRunEvent(sse.event, sse.data);
        if (!event) continue;
        progressed = true;
        if (event.type === "run.started") position.runId = event.run_id;
        onEvent(event);
        if (TERMINAL.has(event.type))
          return { last: event, progressed, failure: null };
      }
    }
    position.lastEventId = parser.lastEventId ?? position.lastEventId;
    return { last: null, progressed, failure: null };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof ApiError && error.status !== 0) throw error;
    return { last: null, progressed, failure: error };
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
