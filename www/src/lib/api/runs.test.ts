import { describe, expect, it } from "vitest";
import { ApiError, networkError } from "./errors";
import { followRun } from "./runs";
import type { RunEvent } from "./types";

function stream(text: string, thenBreak = false): Response {
  const bytes = new TextEncoder().encode(text);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes);
      } else if (thenBreak) {
        controller.error(new TypeError("network error"));
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream" },
  });
}

function sse(id: number, type: string, data: object): string {
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

const message = { id: "m2", status: "pending" };
const started = sse(1, "run.started", {
  run_id: "r1",
  user_message: { id: "m1" },
  assistant_message: message,
});
const progress = sse(2, "progress", {
  progress: 1,
  total: 3,
  message: "step 1",
});
const completed = sse(3, "message.completed", {
  message: { ...message, status: "complete" },
});
const noPause = () => Promise.resolve();

describe("followRun", () => {
  it("hands over every event and returns the last", async () => {
    const seen: string[] = [];
    const last = await followRun(
      {
        open: async () => stream(started + progress + completed),
        reattach: () => Promise.reject(new Error("unused")),
      },
      (event) => seen.push(event.type),
    );
    expect(seen).toEqual(["run.started", "progress", "message.completed"]);
    expect(last.type).toBe("message.completed");
  });

  it("re-attaches with the last event id when the stream breaks mid-run", async () => {
    const reattached: (string | null)[] = [];
    const seen: RunEvent[] = [];
    const last = await followRun(
      {
        open: async () => stream(started + progress, true),
        reattach: async (runId, lastEventId) => {
          expect(runId).toBe("r1");
          reattached.push(lastEventId);
          return stream(completed);
        },
      },
      (event) => seen.push(event),
      { pause: noPause },
    );
    expect(reattached).toEqual(["2"]);
    expect(seen.map((event) => event.type)).toEqual([
      "run.started",
      "progress",
      "message.completed",
    ]);
    expect(last).toMatchObject({
      type: "message.completed",
      message: { status: "complete" },
    });
  });

  it("re-attaches when the server ends the stream before the run's last event", async () => {
    let opens = 0;
    const last = await followRun(
      {
        open: async () => stream(started),
        reattach: async () => {
          opens += 1;
          return opens === 1 ? stream("") : stream(completed);
        },
      },
      () => undefined,
      { pause: noPause },
    );
    expect(opens).toBe(2);
    expect(last.type).toBe("message.completed");
  });

  it("follows a run after a reload from its known id", async () => {
    const last = await followRun(
      {
        open: async () => stream(started + completed),
        reattach: () => Promise.reject(new Error("unused")),
      },
      () => undefined,
      { runId: "r1" },
    );
    expect(last.type).toBe("message.completed");
  });

  it("gives up with plain words when the run cannot be reached again", async () => {
    const attempt = followRun(
      {
        open: async () => stream(started, true),
        reattach: async () => stream("", true),
      },
      () => undefined,
      { pause: noPause, maxReattempts: 2 },
    );
    await expect(attempt).rejects.toMatchObject({ code: "run_stream_lost" });
  });

  it("says the server cannot be reached when the message could not be sent", async () => {
    const attempt = followRun(
      {
        open: () => Promise.reject(networkError()),
        reattach: () => Promise.reject(new Error("unused")),
      },
      () => undefined,
      { pause: noPause },
    );
    await expect(attempt).rejects.toMatchObject({ code: "network" });
  });

  it("stops at once on an API error such as a signed-out user", async () => {
    const signedOut = new ApiError(
      401,
      "unauthenticated",
      "You are signed out.",
    );
    const attempt = followRun(
      {
        open: () => Promise.reject(signedOut),
        reattach: () => Promise.reject(new Error("unused")),
      },
      () => undefined,
    );
    await expect(attempt).rejects.toBe(signedOut);
  });

  it("skips events of kinds it does not know", async () => {
    const seen: string[] = [];
    await followRun(
      {
        open: async () =>
          stream(started + sse(2, "tool.log", { x: 1 }) + completed),
        reattach: () => Promise.reject(new Error("unused")),
      },
      (event) => seen.push(event.type),
    );
    expect(seen).toEqual(["run.started", "message.completed"]);
  });
});
