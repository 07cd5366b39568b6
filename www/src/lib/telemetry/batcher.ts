/**
 * Collects telemetry events and sends them in small batches, within the
 * server's bounds (at most 50 events and 64 KiB per POST). Sending is
 * best-effort: a lost batch is dropped, never retried in a loop.
 */
import type { TelemetryEvent } from "$lib/api/types";

export const MAX_EVENTS_PER_BATCH = 50;
export const MAX_BATCH_BYTES = 64 * 1024;
/** Room kept for `{"events":[...]}` around the events. */
const ENVELOPE_BYTES = 16;
/** Events beyond this wait no longer: older ones are dropped first. */
const MAX_QUEUED = 500;

export interface BatcherOptions {
  send: (events: TelemetryEvent[]) => Promise<void>;
  /** Starts a timer that calls back once; returns a function that stops it. */
  schedule: (callback: () => void) => () => void;
}

const encoder = new TextEncoder();

function byteLength(event: TelemetryEvent): number {
  return encoder.encode(JSON.stringify(event)).length;
}

/** Splits events into batches that each fit the server's limits. */
export function intoBatches(events: TelemetryEvent[]): TelemetryEvent[][] {
  const batches: TelemetryEvent[][] = [];
  let batch: TelemetryEvent[] = [];
  let bytes = ENVELOPE_BYTES;
  for (const event of events) {
    const size = byteLength(event) + 1;
    if (size + ENVELOPE_BYTES > MAX_BATCH_BYTES) continue;
    if (
      batch.length === MAX_EVENTS_PER_BATCH ||
      bytes + size > MAX_BATCH_BYTES
    ) {
      batches.push(batch);
      batch = [];
      bytes = ENVELOPE_BYTES;
    }
    batch.push(event);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

export class TelemetryBatcher {
  private queue: TelemetryEvent[] = [];
  private cancelTimer: (() => void) | null = null;

  constructor(private readonly options: BatcherOptions) {}

  add(event: TelemetryEvent): void {
    this.queue.push(event);
    if (this.queue.length > MAX_QUEUED)
      this.queue.splice(0, this.queue.length - MAX_QUEUED);
    if (this.queue.length >= MAX_EVENTS_PER_BATCH) {
      void this.flush();
    } else if (!this.cancelTimer) {
      this.cancelTimer = this.options.schedule(() => {
        this.cancelTimer = null;
        void this.flush();
      });
    }
  }

  /** Sends everything queued now, for example when the page is hidden. */
  async flush(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = null;
    const batches = intoBatches(this.queue);
    this.queue = [];
    await Promise.all(
      batches.map((batch) => this.options.send(batch).catch(() => undefined)),
    );
  }
}
