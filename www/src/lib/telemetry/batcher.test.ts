import { describe, expect, it } from "vitest";
import type { TelemetryEvent } from "$lib/api/types";
import {
  intoBatches,
  MAX_BATCH_BYTES,
  MAX_EVENTS_PER_BATCH,
  TelemetryBatcher,
} from "./batcher";

const feature: TelemetryEvent = { type: "feature", feature: "message_send" };

function bodyBytes(events: TelemetryEvent[]): number {
  return new TextEncoder().encode(JSON.stringify({ events })).length;
}

describe("telemetry batching", () => {
  it("never puts more than 50 events in one batch", () => {
    const batches = intoBatches(Array.from({ length: 120 }, () => feature));
    expect(batches.map((batch) => batch.length)).toEqual([50, 50, 20]);
  });

  it("keeps every batch under 64 KiB", () => {
    const long: TelemetryEvent = {
      type: "exception",
      kind: "error",
      message: "x".repeat(20_000),
    };
    const batches = intoBatches([long, long, long, long]);
    expect(batches.length).toBeGreaterThan(1);
    for (const batch of batches)
      expect(bodyBytes(batch)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
  });

  it("drops a single event too large to ever be accepted", () => {
    const huge: TelemetryEvent = {
      type: "exception",
      kind: "error",
      message: "x".repeat(MAX_BATCH_BYTES),
    };
    expect(intoBatches([huge, feature])).toEqual([[feature]]);
  });

  it("waits for the timer, then sends what was queued in one batch", async () => {
    const sent: TelemetryEvent[][] = [];
    let fire: (() => void) | null = null;
    const batcher = new TelemetryBatcher({
      send: async (events) => void sent.push(events),
      schedule: (callback) => {
        fire = callback;
        return () => (fire = null);
      },
    });
    batcher.add(feature);
    batcher.add({ type: "web_vital", name: "LCP", value: 1200 });
    expect(sent).toEqual([]);
    (fire as (() => void) | null)?.();
    await Promise.resolve();
    expect(sent).toEqual([
      [feature, { type: "web_vital", name: "LCP", value: 1200 }],
    ]);
  });

  it("sends at once when a full batch is queued", () => {
    const sent: TelemetryEvent[][] = [];
    const batcher = new TelemetryBatcher({
      send: async (events) => void sent.push(events),
      schedule: () => () => undefined,
    });
    for (let i = 0; i < MAX_EVENTS_PER_BATCH; i += 1) batcher.add(feature);
    expect(sent.map((batch) => batch.length)).toEqual([MAX_EVENTS_PER_BATCH]);
  });

  it("swallows a failed send so telemetry never breaks the page", async () => {
    const batcher = new TelemetryBatcher({
      send: () => Promise.reject(new Error("offline")),
      schedule: () => () => undefined,
    });
    batcher.add(feature);
    await expect(batcher.flush()).resolves.toBeUndefined();
  });
});
