/**
 * File uploads with per-file progress and cancel. `fetch` cannot report
 * upload progress, so this uses XMLHttpRequest and sends the file as a raw
 * body with its name in the query (DESIGN.md, "file").
 */
import { ApiError, errorFromBody, networkError } from "./errors";
import { workspacePath } from "./client";
import type { StoredFile } from "./types";

export interface Upload {
  /** Settles with the stored file, or rejects with ApiError or AbortError. */
  done: Promise<StoredFile>;
  cancel: () => void;
}

export function uploadFile(
  ws: string,
  file: File,
  onProgress: (sentBytes: number, totalBytes: number) => void,
): Upload {
  const xhr = new XMLHttpRequest();
  const done = new Promise<StoredFile>((resolve, reject) => {
    xhr.upload.onprogress = (event) =>
      onProgress(event.loaded, event.total || file.size);
    xhr.onload = () => {
      try {
        if (xhr.status < 200 || xhr.status >= 300) {
          throw errorFromBody(xhr.status, xhr.responseText);
        }
        resolve(parseStoredFile(xhr.responseText));
      } catch (error) {
        reject(error);
      }
    };
    xhr.onerror = () => reject(networkError());
    xhr.onabort = () =>
      reject(new DOMException("The upload was cancelled", "AbortError"));
  });
  xhr.open(
    "POST",
    `${workspacePath(ws)}/files?name=${encodeURIComponent(file.name)}`,
  );
  xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
  xhr.setRequestHeader("Accept", "application/json");
  xhr.send(file);
  return { done, cancel: () => xhr.abort() };
}

function parseStoredFile(text: string): StoredFile {
  try {
    return JSON.parse(text) as StoredFile;
  } catch {
    throw new ApiError(
      502,
      "bad_response",
      "The server's answer to the upload was unreadable. Reload the file list to see whether the file arrived.",
    );
  }
}
