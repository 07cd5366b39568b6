import { describe, expect, it } from "vitest";
import { createApi, everyPage, type Fetch } from "./client";
import { ApiError, runFailureWords } from "./errors";

interface Call {
  url: string;
  method: string;
  body: unknown;
}

function fakeFetch(status: number, body: unknown, calls: Call[] = []): Fetch {
  return async (input, init) => {
    calls.push({
      url: String(input),
      method: init?.method ?? "GET",
      body: init?.body ? JSON.parse(String(init.body)) : undefined,
    });
    const text = typeof body === "string" ? body : JSON.stringify(body);
    return new Response(status === 204 ? null : text, { status });
  };
}

describe("api client", () => {
  it("sends JSON bodies to the documented paths", async () => {
    const calls: Call[] = [];
    const api = createApi(fakeFetch(200, { id: "c1" }, calls));
    await api.updateConversation("w 1", "c1", { title: "Plans" });
    expect(calls).toEqual([
      {
        url: "/api/workspaces/w%201/conversations/c1",
        method: "PATCH",
        body: { title: "Plans" },
      },
    ]);
  });

  it("lists archived conversations too, so the list can show them", async () => {
    const calls: Call[] = [];
    await createApi(
      fakeFetch(200, { items: [], next_cursor: null }, calls),
    ).listConversations("w", "n");
    expect(calls[0].url).toBe(
      "/api/workspaces/w/conversations?archived=all&cursor=n",
    );
  });

  it("turns the error body into an ApiError with the server's code", async () => {
    const api = createApi(
      fakeFetch(422, {
        error: {
          code: "invalid_url",
          message: "The URL must start with http.",
        },
      }),
    );
    const failure = await api.listWorkspaces().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure).toMatchObject({
      status: 422,
      code: "invalid_url",
      message: "The URL must start with http.",
    });
  });

  it("says in plain words that the user is signed out on 401", async () => {
    const api = createApi(fakeFetch(401, "<html>login</html>"));
    await expect(api.me()).rejects.toMatchObject({
      status: 401,
      message: expect.stringMatching(/signed out/),
    });
  });

  it("says a file is too large on 413", async () => {
    const api = createApi(
      fakeFetch(413, { error: { code: "too_large", message: "" } }),
    );
    await expect(api.listFiles("w")).rejects.toMatchObject({
      message: expect.stringMatching(/too large/),
    });
  });

  it("names an unreachable agent server and what to do", async () => {
    const api = createApi(
      fakeFetch(502, {
        error: {
          code: "agent_server_unreachable",
          message: "connection refused",
        },
      }),
    );
    await expect(api.listAgents("w")).rejects.toMatchObject({
      message: expect.stringMatching(/agent server is not answering.*settings/),
    });
  });

  it("reports a network failure as status 0", async () => {
    const api = createApi(() =>
      Promise.reject(new TypeError("Failed to fetch")),
    );
    await expect(api.me()).rejects.toMatchObject({
      status: 0,
      code: "network",
    });
  });

  it("explains a run that failed because its agent server was down", () => {
    const words = runFailureWords({
      code: "agent_server_unreachable",
      message: "connection refused",
    });
    expect(words).toMatch(/agent server is not answering.*connection refused/);
    expect(runFailureWords("The tool failed.")).toBe(
      "The tool failed. Use Retry to send the message again.",
    );
  });

  it("follows cursors until the list ends", async () => {
    const calls: Call[] = [];
    const pages: Record<string, unknown> = {
      "/api/workspaces": { items: [1, 2], next_cursor: "b" },
      "/api/workspaces?cursor=b": { items: [3], next_cursor: null },
    };
    const fetcher: Fetch = async (input, init) => {
      calls.push({
        url: String(input),
        method: init?.method ?? "GET",
        body: undefined,
      });
      return new Response(JSON.stringify(pages[String(input)]), {
        status: 200,
      });
    };
    const api = createApi(fetcher);
    expect(await everyPage((cursor) => api.listWorkspaces(cursor))).toEqual([
      1, 2, 3,
    ]);
    expect(calls.map((call) => call.url)).toEqual([
      "/api/workspaces",
      "/api/workspaces?cursor=b",
    ]);
  });
});
