/**
 * The agent server part of the workspace form, and how it becomes the API's
 * input. Header values are write-only on the server, so a stored header
 * shows an empty, "unchanged" field; it is sent as `null` (keep the stored
 * value) until the person types a new value. A header removed from the form
 * is left out and so removed. A renamed server has no stored values to keep,
 * so its headers must be typed again.
 */
import type { AgentServer, AgentServerInput } from "$lib/api/types";

export interface HeaderField {
  name: string;
  value: string;
  /** The server holds a value for this header that the form cannot show. */
  stored: boolean;
}

export interface ServerFields {
  /** The name the server had when the form opened; "" for a new one. */
  storedName: string;
  name: string;
  url: string;
  headers: HeaderField[];
}

export function emptyServer(): ServerFields {
  return { storedName: "", name: "", url: "", headers: [] };
}

export function toServerFields(server: AgentServer): ServerFields {
  return {
    storedName: server.name,
    name: server.name,
    url: server.url,
    headers: Object.keys(server.headers ?? {}).map((name) => ({
      name,
      value: "",
      stored: true,
    })),
  };
}

/** Why the fields cannot be saved yet, in words, or null when they can. */
export function serverProblem(server: ServerFields): string | null {
  if (!server.name.trim()) return "Give each agent server a name.";
  if (!/^https?:\/\/\S+$/.test(server.url.trim())) {
    return `The URL of "${server.name}" must start with http:// or https://.`;
  }
  for (const header of server.headers) {
    if (!header.name.trim()) return `A header of "${server.name}" has no name.`;
    if (keepsStoredValue(server, header)) continue;
    if (!header.value)
      return `Enter a value for the header "${header.name}" of "${server.name}".`;
  }
  return null;
}

function keepsStoredValue(server: ServerFields, header: HeaderField): boolean {
  return (
    header.stored &&
    header.value === "" &&
    server.name.trim() === server.storedName
  );
}

export function toServerInput(server: ServerFields): AgentServerInput {
  const input: AgentServerInput = {
    name: server.name.trim(),
    url: server.url.trim(),
  };
  if (server.headers.length > 0) {
    input.headers = Object.fromEntries(
      server.headers.map((header) => [
        header.name.trim(),
        keepsStoredValue(server, header) ? null : header.value,
      ]),
    );
  }
  return input;
}
