/**
 * One open conversation: its messages, the run in progress and its progress.
 * Sending starts a run on the server; a run found pending after a reload is
 * re-attached, so its answer arrives either way.
 */
import {
  api,
  conversationPath,
  everyPage,
  runPath,
  send,
} from "$lib/api/client";
import { describe } from "$lib/api/errors";
import { followRun } from "$lib/api/runs";
import type { Message, MessageInput, RunEvent } from "$lib/api/types";
import { track } from "$lib/telemetry";

export interface RunProgress {
  progress: number;
  total?: number;
  message?: string;
}

const EVENT_STREAM = { Accept: "text/event-stream" };
let draftCount = 0;

export class Chat {
  messages = $state<Message[]>([]);
  loaded = $state(false);
  runId = $state<string | null>(null);
  /** True from pressing Send until the run's last event. */
  running = $state(false);
  progress = $state<RunProgress | null>(null);
  error = $state<string | null>(null);
  private readonly stop = new AbortController();

  constructor(
    readonly workspaceId: string,
    readonly conversationId: string,
  ) {}

  async load(): Promise<void> {
    try {
      this.error = null;
      this.messages = await everyPage((cursor) =>
        api.listMessages(this.workspaceId, this.conversationId, cursor),
      );
      this.loaded = true;
    } catch (error) {
      this.error = describe(error);
      return;
    }
    const pending = this.messages.findLast(
      (m) => m.status === "pending" && m.run_id,
    );
    if (pending?.run_id) await this.reattach(pending.run_id);
  }

  /** Sends a message; resolves when its run has ended (or could not start). */
  async send(input: MessageInput): Promise<void> {
    if (this.running) return;
    const draft = this.localUserMessage(input);
    this.messages.push(draft);
    const path = `${conversationPath(this.workspaceId, this.conversationId)}/messages`;
    await this.follow(
      () =>
        send(fetch, path, {
          method: "POST",
          body: input,
          headers: EVENT_STREAM,
          signal: this.stop.signal,
        }),
      draft.id,
    );
  }

  /** Sends again the user message that led to a failed or stopped answer. */
  async retry(failed: Message): Promise<void> {
    const index = this.messages.indexOf(failed);
    const question =
      failed.role === "user"
        ? failed
        : this.messages.slice(0, index).findLast((m) => m.role === "user");
    if (!question) return;
    if (question.id.startsWith("local-"))
      this.messages.splice(this.messages.indexOf(question), 1);
    await this.send({ content: question.content, file_ids: question.file_ids });
  }

  async cancel(): Promise<void> {
    if (!this.runId) return;
    try {
      await api.cancelRun(this.workspaceId, this.conversationId, this.runId);
    } catch (error) {
      this.error = `The agent could not be stopped. ${describe(error)}`;
    }
  }

  /** Stops following the run when the screen closes; the run itself goes on. */
  close(): void {
    this.stop.abort();
  }

  private async reattach(runId: string): Promise<void> {
    track("run_reattach");
    this.runId = runId;
    await this.follow(() => this.openEvents(runId, null), null, runId);
  }

  private openEvents(
    runId: string,
    lastEventId: string | null,
  ): Promise<Response> {
    const headers: Record<string, string> = { ...EVENT_STREAM };
    if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
    const path = `${runPath(this.workspaceId, this.conversationId, runId)}/events`;
    return send(fetch, path, { headers, signal: this.stop.signal });
  }

  private async follow(
    open: () => Promise<Response>,
    draftId: string | null,
    runId?: string,
  ) {
    this.running = true;
    this.error = null;
    try {
      await followRun(
        { open, reattach: (id, last) => this.openEvents(id, last) },
        (event) => this.apply(event, draftId),
        { runId, signal: this.stop.signal },
      );
    } catch (error) {
      if (this.stop.signal.aborted) return;
      this.markFailed(draftId, describe(error));
    } finally {
      this.running = false;
      this.runId = null;
      this.progress = null;
    }
  }

  private apply(event: RunEvent, draftId: string | null): void {
    switch (event.type) {
      case "run.started":
        this.runId = event.run_id;
        this.put(event.user_message, draftId);
        this.put(event.assistant_message);
        break;
      case "progress":
        this.progress = {
          progress: event.progress,
          total: event.total,
          message: event.message,
        };
        break;
      case "message.completed":
      case "run.failed":
      case "run.cancelled":
        if (event.message) this.put(event.message);
        break;
    }
  }

  /** Puts a stored message in place of its older copy (or of the local draft). */
  private put(message: Message, replaces: string | null = null): void {
    const index = this.messages.findIndex(
      (m) => m.id === message.id || m.id === replaces,
    );
    if (index >= 0) this.messages[index] = message;
    else this.messages.push(message);
  }

  private markFailed(draftId: string | null, reason: string): void {
    const draft = this.messages.find((m) => m.id === draftId);
    if (draft) {
      draft.status = "failed";
      draft.error = { code: "not_sent", message: reason };
    } else {
      this.error = reason;
    }
  }

  private localUserMessage(input: MessageInput): Message {
    return {
      id: `local-${(draftCount += 1)}`,
      conversation_id: this.conversationId,
      role: "user",
      content: input.content,
      status: "pending",
      error: null,
      agent: null,
      run_id: null,
      file_ids: input.file_ids ?? [],
      // eslint-disable-next-line svelte/prefer-svelte-reactivity -- only its text is kept
      created_at: new Date().toISOString(),
    };
  }
}
