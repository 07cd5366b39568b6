/**
 * What the screens of one open workspace share: the workspace, its
 * conversations and files, and the files picked to go with the next message.
 */
import { getContext, setContext } from "svelte";
import { api, everyPage } from "$lib/api/client";
import { describe } from "$lib/api/errors";
import type { Conversation, StoredFile, Workspace } from "$lib/api/types";

export class WorkspaceState {
  workspace = $state<Workspace | null>(null);
  conversations = $state<Conversation[]>([]);
  files = $state<StoredFile[]>([]);
  /** Ids of files to attach to the next message sent. */
  attachments = $state<string[]>([]);
  /** Each part loads on its own, so one failing part leaves the others usable. */
  error = $state<string | null>(null);
  conversationsError = $state<string | null>(null);
  filesError = $state<string | null>(null);

  constructor(readonly id: string) {}

  async load(): Promise<void> {
    await Promise.all([
      this.loadWorkspace(),
      this.loadConversations(),
      this.loadFiles(),
    ]);
  }

  async loadWorkspace(): Promise<void> {
    try {
      this.error = null;
      this.workspace = await api.getWorkspace(this.id);
    } catch (error) {
      this.error = describe(error);
    }
  }

  async loadConversations(): Promise<void> {
    try {
      this.conversationsError = null;
      this.conversations = await everyPage((cursor) =>
        api.listConversations(this.id, cursor),
      );
    } catch (error) {
      this.conversationsError = `The conversations could not be loaded. ${describe(error)}`;
    }
  }

  async loadFiles(): Promise<void> {
    try {
      this.filesError = null;
      this.files = await everyPage((cursor) => api.listFiles(this.id, cursor));
    } catch (error) {
      this.filesError = `The files could not be loaded. ${describe(error)}`;
    }
  }

  /** Puts a new or changed conversation in its place, most recently active first. */
  putConversation(conversation: Conversation): void {
    const others = this.conversations.filter((c) => c.id !== conversation.id);
    this.conversations = [conversation, ...others].sort((a, b) =>
      b.updated_at.localeCompare(a.updated_at),
    );
  }

  removeConversation(id: string): void {
    this.conversations = this.conversations.filter((c) => c.id !== id);
  }

  putFile(file: StoredFile): void {
    this.files = [file, ...this.files.filter((f) => f.id !== file.id)];
  }

  removeFile(id: string): void {
    this.files = this.files.filter((f) => f.id !== id);
    this.attachments = this.attachments.filter((a) => a !== id);
  }

  fileById(id: string): StoredFile | undefined {
    return this.files.find((f) => f.id === id);
  }
}

const KEY = Symbol("workspace");

export function provideWorkspace(state: WorkspaceState): void {
  setContext(KEY, state);
}

export function useWorkspace(): WorkspaceState {
  const state = getContext<WorkspaceState | undefined>(KEY);
  if (!state)
    throw new Error("useWorkspace is only used inside a workspace screen");
  return state;
}
