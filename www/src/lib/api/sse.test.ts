import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("reads id, event and data of each event", () => {
    const parser = new SseParser();
    const events = parser.push(
      'id: 1\nevent: progress\ndata: {"progress":1}\n\nid: 2\nevent: run.cancelled\ndata: {}\n\n',
    );
    expect(events).toEqual([
      { id: "1", event: "progress", data: '{"progress":1}' },
      { id: "2", event: "run.cancelled", data: "{}" },
    ]);
  });

  it("completes events split across chunks anywhere, including inside CRLF", () => {
    const text = "id: 7\r\nevent: progress\r\ndata: a\r\ndata: b\r\n\r\n";
    for (let cut = 1; cut < text.length; cut += 1) {
      const parser = new SseParser();
      const events = [
        ...parser.push(text.slice(0, cut)),
        ...parser.push(text.slice(cut)),
      ];
      expect(events).toEqual([{ id: "7", event: "progress", data: "a\nb" }]);
    }
  });

  it("ignores comments and keeps the last id for re-attaching", () => {
    const parser = new SseParser();
    expect(parser.push(": keep-alive\n\nid: 9\n\n")).toEqual([]);
    expect(parser.lastEventId).toBe("9");
  });

  it("names events without an event field 'message'", () => {
    expect(new SseParser().push("data:x\n\n")).toEqual([
      { id: null, event: "message", data: "x" },
    ]);
  });
});
