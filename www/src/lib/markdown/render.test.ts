import { JSDOM } from "jsdom";
import { describe, expect, it } from "vitest";
import { createSanitiser, renderMarkdown } from "./render";

const { window } = new JSDOM("");
const sanitise = createSanitiser(
  window as unknown as Parameters<typeof createSanitiser>[0],
);

function render(text: string): HTMLElement {
  const host = window.document.createElement("div");
  host.innerHTML = renderMarkdown(text, sanitise);
  return host;
}

describe("renderMarkdown", () => {
  it("renders Markdown with code blocks", () => {
    const host = render("# Title\n\n```js\nlet a = 1 < 2;\n```");
    expect(host.querySelector("h1")?.textContent).toBe("Title");
    expect(host.querySelector("pre code")?.textContent).toBe(
      "let a = 1 < 2;\n",
    );
  });

  it("strips event handlers from raw HTML images", () => {
    const host = render("<img src=x onerror=alert(1)>");
    const image = host.querySelector("img");
    expect(host.innerHTML).not.toMatch(/onerror/i);
    expect(image?.getAttribute("src")).toBeNull();
  });

  it("removes javascript: links from Markdown and HTML", () => {
    const host = render(
      '[click](javascript:alert(1)) <a href="JaVaScRiPt:alert(2)">two</a>',
    );
    const links = [...host.querySelectorAll("a")];
    expect(links.length).toBe(2);
    for (const link of links)
      expect(link.getAttribute("href") ?? "").not.toMatch(/javascript/i);
  });

  it("drops script, style and forms entirely", () => {
    const host = render(
      "<script>alert(1)</script><style>*{}</style><form><input></form><iframe src=x></iframe>ok",
    );
    expect(host.querySelector("script, style, form, input, iframe")).toBeNull();
    expect(host.textContent).toContain("ok");
  });

  it("loads no remote images but keeps the workspace's own files", () => {
    const host = render(
      "![remote](https://tracker.example/p.png) ![own](/api/workspaces/w1/files/f1/content)",
    );
    const sources = [...host.querySelectorAll("img")].map((image) =>
      image.getAttribute("src"),
    );
    expect(sources).toEqual([null, "/api/workspaces/w1/files/f1/content"]);
  });

  it("opens links in a new tab without access to this page", () => {
    const link = render("[docs](https://example.org/)").querySelector("a");
    expect(link?.getAttribute("target")).toBe("_blank");
    expect(link?.getAttribute("rel")).toContain("noopener");
  });
});
