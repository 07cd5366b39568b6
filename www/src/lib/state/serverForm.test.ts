import { describe, expect, it } from "vitest";
import { serverProblem, toServerFields, toServerInput } from "./serverForm";

const stored = {
  name: "main",
  url: "http://127.0.0.1:9000/mcp",
  headers: { Authorization: "" },
};

describe("agent server form", () => {
  it("keeps a stored header value by sending null when it was not retyped", () => {
    const fields = toServerFields(stored);
    expect(serverProblem(fields)).toBeNull();
    expect(toServerInput(fields)).toEqual({
      ...stored,
      headers: { Authorization: null },
    });
  });

  it("sends a header value only when the person typed one", () => {
    const fields = toServerFields(stored);
    fields.headers[0].value = "Bearer new";
    fields.headers.push({ name: "X-Team", value: "blue", stored: false });
    expect(toServerInput(fields).headers).toEqual({
      Authorization: "Bearer new",
      "X-Team": "blue",
    });
  });

  it("asks for header values again after the server is renamed", () => {
    const fields = toServerFields(stored);
    fields.name = "renamed";
    expect(serverProblem(fields)).toMatch(
      /Enter a value for the header "Authorization"/,
    );
  });

  it("refuses a URL that is not http or https", () => {
    const fields = toServerFields({ name: "x", url: "ftp://host" });
    expect(serverProblem(fields)).toMatch(/must start with http/);
  });

  it("leaves headers out of a server that has none", () => {
    expect(
      toServerInput(toServerFields({ name: "a", url: "http://a/mcp" })),
    ).toEqual({ name: "a", url: "http://a/mcp" });
  });
});
