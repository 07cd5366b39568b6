/**
 * Typed calls for every endpoint the app uses. All of them go through
 * `request`, which turns failures into `ApiError` with plain words.
 */
import { errorFromBody, networkError } from "./errors";
import type {
  AgentsReport,
  Conversation,
  Me,
  Page,
  Preferences,
  StoredFile,
  Message,
  TelemetryEvent,
  Workspace,
  WorkspaceInput,
} from "./types";

export type Fetch = typeof fetch;

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Sends one request and checks its status; the caller reads the body. */
export async function send(
  fetcher: Fetch,
  path: string,
  options: RequestOptions = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    Accept: "application/json",
    ...options.headers,
  };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetcher(path, {
      method: options.method ?? "GET",
      headers,
      body,
      signal: options.signal,
      credentials: "same-origin",
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError")
      throw error;
    throw networkError();
  }
  if (!response.ok) throw errorFromBody(response.status, await response.text());
  return response;
}

async function json<T>(
  fetcher: Fetch,
  path: string,
  options?: RequestOptions,
): Promise<T> {
  const response = await send(fetcher, path, options);
  return (await response.json()) as T;
}

async function nothing(
  fetcher: Fetch,
  path: string,
  options?: RequestOptions,
): Promise<void> {
  await send(fetcher, path, options);
}

function query(
  params: Record<string, string | number | undefined | null>,
): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "")
      search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

const enc = encodeURIComponent;

export function workspacePath(ws: string): string {
  return `/api/workspaces/${enc(ws)}`;
}

export function conversationPath(ws: string, c: string): string {
  return `${workspacePath(ws)}/conversations/${enc(c)}`;
}

export function runPath(ws: string, c: string, run: string): string {
  return `${conversationPath(ws, c)}/runs/${enc(run)}`;
}

export function fileContentUrl(ws: string, f: string): string {
  return `${workspacePath(ws)}/files/${enc(f)}/content`;
}

/** The API, bound to one `fetch` so tests can hand in their own. */
export function createApi(
  fetcher: Fetch = (input, init) => fetch(input, init),
) {
  return {
    me: () => json<Me>(fetcher, "/api/me"),
    savePreferences: (preferences: Preferences) =>
      nothing(fetcher, "/api/me/preferences", {
        method: "PUT",
        body: preferences,
      }),

    listWorkspaces: (cursor?: string) =>
      json<Page<Workspace>>(fetcher, `/api/workspaces${query({ cursor })}`),
    createWorkspace: (input: WorkspaceInput) =>
      json<Workspace>(fetcher, "/api/workspaces", {
        method: "POST",
        body: input,
      }),
    getWorkspace: (ws: string) => json<Workspace>(fetcher, workspacePath(ws)),
    updateWorkspace: (ws: string, patch: Partial<WorkspaceInput>) =>
      json<Workspace>(fetcher, workspacePath(ws), {
        method: "PATCH",
        body: patch,
      }),
    deleteWorkspace: (ws: string) =>
      nothing(fetcher, workspacePath(ws), { method: "DELETE" }),
    listAgents: (ws: string) =>
      json<AgentsReport>(fetcher, `${workspacePath(ws)}/agents`),

    /** Archived ones too: the list shows them on request. */
    listConversations: (ws: string, cursor?: string) =>
      json<Page<Conversation>>(
        fetcher,
        `${workspacePath(ws)}/conversations${query({ archived: "all", cursor })}`,
      ),
    createConversation: (ws: string, input: { title: string; agent: string }) =>
      json<Conversation>(fetcher, `${workspacePath(ws)}/conversations`, {
        method: "POST",
        body: input,
      }),
    updateConversation: (
      ws: string,
      c: string,
      patch: Partial<Pick<Conversation, "title" | "archived">>,
    ) =>
      json<Conversation>(fetcher, conversationPath(ws, c), {
        method: "PATCH",
        body: patch,
      }),
    deleteConversation: (ws: string, c: string) =>
      nothing(fetcher, conversationPath(ws, c), { method: "DELETE" }),
    listMessages: (ws: string, c: string, cursor?: string) =>
      json<Page<Message>>(
        fetcher,
        `${conversationPath(ws, c)}/messages${query({ cursor })}`,
      ),
    cancelRun: (ws: string, c: string, run: string) =>
      nothing(fetcher, `${runPath(ws, c, run)}/cancel`, { method: "POST" }),

    listFiles: (ws: string, cursor?: string) =>
      json<Page<StoredFile>>(
        fetcher,
        `${workspacePath(ws)}/files${query({ cursor })}`,
      ),
    getFile: (ws: string, f: string) =>
      json<StoredFile>(fetcher, `${workspacePath(ws)}/files/${enc(f)}`),
    deleteFile: (ws: string, f: string) =>
      nothing(fetcher, `${workspacePath(ws)}/files/${enc(f)}`, {
        method: "DELETE",
      }),

    sendTelemetry: (events: TelemetryEvent[]) =>
      nothing(fetcher, "/api/telemetry", { method: "POST", body: { events } }),
  };
}

export type Api = ReturnType<typeof createApi>;

/** Follows `next_cursor` until the list is complete. */
export async function everyPage<T>(
  load: (cursor?: string) => Promise<Page<T>>,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await load(cursor);
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return items;
}

export const api = createApi();
