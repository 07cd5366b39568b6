/**
 * A parser for `text/event-stream` bodies that takes text in chunks of any
 * size (a chunk may end mid-line, even between `\r` and `\n`) and returns
 * the events completed so far.
 */

export interface SseEvent {
  /** The last `id:` seen on the stream so far, as the spec defines it. */
  id: string | null;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = "";
  private lastId: string | null = null;
  private eventType = "";
  private dataLines: string[] = [];
  private sawData = false;
  private skipLeadingNewline = false;

  /** The id to send as `Last-Event-ID` when reconnecting. */
  get lastEventId(): string | null {
    return this.lastId;
  }

  /** Feeds more text; returns the events this text completed. */
  push(chunk: string): SseEvent[] {
    let text = chunk;
    if (this.skipLeadingNewline && text.startsWith("\n")) text = text.slice(1);
    this.skipLeadingNewline = false;
    this.buffer += text;
    const events: SseEvent[] = [];
    for (;;) {
      const end = this.buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = this.buffer.slice(0, end);
      let next = end + 1;
      if (this.buffer[end] === "\r") {
        if (end + 1 === this.buffer.length) this.skipLeadingNewline = true;
        else if (this.buffer[end + 1] === "\n") next += 1;
      }
      this.buffer = this.buffer.slice(next);
      const event = this.takeLine(line);
      if (event) events.push(event);
    }
    return events;
  }

  private takeLine(line: string): SseEvent | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") {
      this.dataLines.push(value);
      this.sawData = true;
    } else if (field === "event") {
      this.eventType = value;
    } else if (field === "id" && !value.includes("\0")) {
      this.lastId = value;
    }
    return null;
  }

  private dispatch(): SseEvent | null {
    const event: SseEvent = {
      id: this.lastId,
      event: this.eventType || "message",
      data: this.dataLines.join("\n"),
    };
    const complete = this.sawData;
    this.eventType = "";
    this.dataLines = [];
    this.sawData = false;
    return complete ? event : null;
  }
}
