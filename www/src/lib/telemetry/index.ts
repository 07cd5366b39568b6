/**
 * Browser telemetry for `/api/telemetry`: unhandled errors and promise
 * rejections, Web Vitals, and use of the main features. The server counts
 * features only from a fixed set, so `FEATURES` is the whole list; it must
 * equal `FEATURES` in src/api/telemetry.rs, which rejects a batch naming any other.
 */
import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric } from "web-vitals";
import type { TelemetryEvent } from "$lib/api/types";
import { TelemetryBatcher } from "./batcher";

export const FEATURES = [
  "workspace_create",
  "workspace_update",
  "workspace_delete",
  "conversation_create",
  "conversation_rename",
  "conversation_archive",
  "conversation_delete",
  "conversation_search",
  "message_send",
  "message_copy",
  "message_retry",
  "run_cancel",
  "run_reattach",
  "file_upload",
  "file_download",
  "file_delete",
  "file_attach",
  "theme_change",
] as const;

export type Feature = (typeof FEATURES)[number];

const MAX_MESSAGE_CHARS = 200;
const FLUSH_DELAY_MS = 10_000;

function post(events: TelemetryEvent[]): Promise<void> {
  // keepalive lets the last batch leave while the page is being closed.
  return fetch("/api/telemetry", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events }),
    keepalive: true,
    credentials: "same-origin",
  }).then(() => undefined);
}

const batcher = new TelemetryBatcher({
  send: post,
  schedule: (callback) => {
    const timer = setTimeout(callback, FLUSH_DELAY_MS);
    return () => clearTimeout(timer);
  },
});

export function track(feature: Feature): void {
  batcher.add({ type: "feature", feature });
}

function shortMessage(reason: unknown): string | undefined {
  const text =
    reason instanceof Error
      ? reason.message
      : typeof reason === "string"
        ? reason
        : "";
  return text ? text.slice(0, MAX_MESSAGE_CHARS) : undefined;
}

function reportVital(metric: Metric): void {
  batcher.add({ type: "web_vital", name: metric.name, value: metric.value });
}

/** Starts listening; called once when the app starts. */
export function startTelemetry(): void {
  window.addEventListener("error", (event) => {
    batcher.add({
      type: "exception",
      kind: "error",
      message: shortMessage(event.error ?? event.message),
    });
  });
  window.addEventListener("unhandledrejection", (event) => {
    batcher.add({
      type: "exception",
      kind: "unhandledrejection",
      message: shortMessage(event.reason),
    });
  });
  onLCP(reportVital);
  onINP(reportVital);
  onCLS(reportVital);
  onFCP(reportVital);
  onTTFB(reportVital);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") void batcher.flush();
  });
}
