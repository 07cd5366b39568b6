// End-to-end tests of the browser app in a real Chromium, against a running
// daedalus (DAEDALUS_E2E_URL) whose workspaces point at a real FastAgent
// server (DAEDALUS_TEST_FASTAGENT_URL) with a passthrough agent `echo` and an
// agent `slow` that answers after 3 s.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, beforeEach, test } from "node:test";
import { SCREENSHOTS, required, startBrowser } from "./browser.mjs";

const APP = required("DAEDALUS_E2E_URL");
const AGENT_SERVER = required("DAEDALUS_TEST_FASTAGENT_URL");

let browser;
let page;
/** Page errors and dialogs: any of them fails the test that caused it. */
let incidents = [];

before(async () => {
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
});

beforeEach(async () => {
  if (page && !page.isClosed()) await page.close();
  page = await browser.context.newPage();
  incidents = [];
  page.on("pageerror", (error) =>
    incidents.push(`page error: ${error.message}`),
  );
  page.on("dialog", (dialog) => {
    if (dialog.type() === "confirm") return dialog.accept();
    incidents.push(`dialog: ${dialog.type()} ${dialog.message()}`);
    return dialog.dismiss();
  });
});

function noIncidents() {
  assert.deepEqual(incidents, [], "the page raised errors or dialogs");
}

async function shot(name) {
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
}

let counter = 0;
function unique(label) {
  counter += 1;
  return `${label} ${process.pid}-${counter}`;
}

async function createWorkspace(name = unique("E2E workspace")) {
  await page.goto(`${APP}/workspaces`);
  await page.getByLabel("Workspace name").fill(name);
  const server = page.getByRole("group", { name: "Agent server 1" });
  await server.getByLabel("Name").fill("fastagent");
  await server.getByLabel("MCP URL").fill(AGENT_SERVER);
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.waitForURL(/\/workspaces\/[^/]+$/);
  await page.getByRole("heading", { name, level: 1 }).waitFor();
  return page.url();
}

async function startConversation(agent) {
  const picker = page.getByLabel("Agent", { exact: true });
  await picker.waitFor();
  await picker.selectOption(agent);
  await page.getByRole("button", { name: "Start conversation" }).click();
  await page.waitForURL(/\/conversations\/[^/]+$/);
  await page
    .getByRole("heading", { name: `Chat with ${agent}`, level: 2 })
    .waitFor();
}

async function send(text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

/** The last answer of the agent once it has the given status. */
async function lastAnswer(status = "complete") {
  const answer = page.locator("article.message.assistant").last();
  await page
    .locator(`article.message.assistant[data-status="${status}"]`)
    .last()
    .waitFor();
  return answer;
}

test("creates a workspace with an agent server and sees its status", async () => {
  const url = await createWorkspace();
  await page.getByRole("heading", { name: "Agent servers" }).waitFor();
  const status = page.locator(".server-status li").first();
  await status.getByText("reachable", { exact: true }).waitFor();
  assert.match(await status.innerText(), /echo/);
  assert.match(await status.innerText(), /slow/);
  await shot("workspace-start");
  await page.goto(`${url}/settings`);
  await page.getByRole("heading", { name: "Agent server status" }).waitFor();
  await page
    .locator(".server-status")
    .getByText("reachable", { exact: true })
    .waitFor();
  await shot("workspace-settings");
  await page.goto(`${APP}/workspaces`);
  await page.locator(".workspace-list").waitFor();
  await shot("workspaces");
  noIncidents();
});

test("explains an agent server that cannot be reached", async () => {
  await page.goto(`${APP}/workspaces`);
  await page.getByLabel("Workspace name").fill(unique("E2E unreachable"));
  const server = page.getByRole("group", { name: "Agent server 1" });
  await server.getByLabel("Name").fill("nowhere");
  // Port 9 (discard) has no listener on a test machine.
  await server.getByLabel("MCP URL").fill("http://127.0.0.1:9/mcp");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.waitForURL(/\/workspaces\/[^/]+$/);
  const status = page.locator(".server-status li").first();
  await status.getByText("not reachable").waitFor();
  await status.getByText("Check that the agent server is running").waitFor();
  await page.getByText("No agents were found.").waitFor();
  await shot("workspace-unreachable");
  noIncidents();
});

test("chats with the echo agent and sees the answer", async () => {
  await createWorkspace();
  await startConversation("echo");
  await send("Hello from the end-to-end test");
  await page
    .locator("article.message.user")
    .getByText("Hello from the end-to-end test")
    .waitFor();
  const answer = await lastAnswer();
  assert.match(await answer.innerText(), /Hello from the end-to-end test/);
  await shot("chat");
  noIncidents();
});

test("shows progress while the slow agent works", async () => {
  await createWorkspace();
  await startConversation("slow");
  await send("take your time");
  const progress = page.locator(
    "article.message.assistant[data-status=pending] .run-progress",
  );
  await progress.waitFor();
  await page.getByRole("button", { name: "Stop" }).waitFor();
  await page.waitForFunction(() => {
    const label = document.querySelector(".run-progress .label");
    return label && label.textContent !== "Waiting for the agent…";
  });
  await shot("chat-progress");
  const answer = await lastAnswer();
  assert.match(await answer.innerText(), /take your time/);
  assert.equal(await page.locator(".run-progress").count(), 0);
  noIncidents();
});

test("reloading during a run re-attaches and shows the answer", async () => {
  await createWorkspace();
  await startConversation("slow");
  await send("still there after a reload");
  await page
    .locator("article.message.assistant[data-status=pending]")
    .waitFor();
  await page.reload();
  await page
    .locator("article.message.user")
    .getByText("still there after a reload")
    .waitFor();
  const answer = await lastAnswer();
  assert.match(await answer.innerText(), /still there after a reload/);
  assert.equal(await page.locator("article.message.assistant").count(), 1);
  noIncidents();
});

test("stops a running agent", async () => {
  await createWorkspace();
  await startConversation("slow");
  await send("never mind");
  const stop = page.getByRole("button", { name: "Stop" });
  await page
    .locator("article.message.assistant[data-status=pending]")
    .waitFor();
  await stop.click();
  const answer = await lastAnswer("cancelled");
  await answer.getByText("Stopped before the agent answered.").waitFor();
  await answer.getByRole("button", { name: "Retry" }).waitFor();
  assert.equal(await stop.count(), 0);
  noIncidents();
});

test("uploads a file with the picker and by dropping it, then downloads it", async () => {
  await createWorkspace();
  const content = `notes for the end-to-end test ${Date.now()}\n`;
  await page.locator('input[type="file"]').setInputFiles({
    name: "notes.txt",
    mimeType: "text/plain",
    buffer: Buffer.from(content),
  });
  const stored = page.getByRole("list", { name: "Stored files" });
  await stored.getByRole("link", { name: "notes.txt" }).waitFor();

  const dropped = await page.evaluateHandle(() => {
    const transfer = new DataTransfer();
    transfer.items.add(
      new File(["dropped bytes"], "dropped.txt", { type: "text/plain" }),
    );
    return transfer;
  });
  await page
    .getByRole("region", { name: "Drop files here to upload" })
    .dispatchEvent("drop", {
      dataTransfer: dropped,
    });
  await stored.getByRole("link", { name: "dropped.txt" }).waitFor();
  await shot("files");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    stored.getByRole("link", { name: "notes.txt" }).click(),
  ]);
  assert.equal(download.suggestedFilename(), "notes.txt");
  assert.equal(readFileSync(await download.path(), "utf8"), content);

  await page.reload();
  await stored.getByRole("link", { name: "notes.txt" }).waitFor();
  await page.getByRole("button", { name: "Delete dropped.txt" }).click();
  await stored
    .getByRole("link", { name: "dropped.txt" })
    .waitFor({ state: "detached" });
  noIncidents();
});

test("attaches an uploaded file to a message", async () => {
  await createWorkspace();
  await page.locator('input[type="file"]').setInputFiles({
    name: "report.csv",
    mimeType: "text/csv",
    buffer: Buffer.from("a,b\n1,2\n"),
  });
  await page
    .getByRole("button", { name: "Attach report.csv to the next message" })
    .click();
  await startConversation("echo");
  const attached = page.getByRole("list", { name: "Attached files" });
  await attached.getByText("report.csv").waitFor();
  await send("Here is the report");
  await lastAnswer();
  const question = page.locator("article.message.user").last();
  await question.getByRole("link", { name: "Download report.csv" }).waitFor();
  assert.equal(await attached.count(), 0);
  await page.reload();
  await page
    .locator("article.message.user")
    .last()
    .getByRole("link", { name: "Download report.csv" })
    .waitFor();
  noIncidents();
});

test("switches the theme and keeps it across reloads", async () => {
  await page.goto(`${APP}/workspaces`);
  const theme = page.getByRole("banner").getByLabel("Theme");
  await page.waitForFunction(
    () => !document.querySelector("header select")?.disabled,
  );
  await Promise.all([savedPreferences(), theme.selectOption("dark")]);
  assert.equal(
    await page.evaluate(() => document.documentElement.dataset.theme),
    "dark",
  );
  await shot("workspaces-dark");

  // Before the app has even started, the cached choice is applied.
  await page.reload({ waitUntil: "domcontentloaded" });
  assert.equal(
    await page.evaluate(() => document.documentElement.dataset.theme),
    "dark",
  );

  // Without the cache, the server's copy of the preference brings it back.
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.waitForFunction(
    () => document.documentElement.dataset.theme === "dark",
  );
  const me = await page.evaluate(() => fetch("/api/me").then((r) => r.json()));
  assert.equal(me.preferences.theme, "dark");

  await Promise.all([savedPreferences(), theme.selectOption("system")]);
  noIncidents();
});

test("an agent answer with script-bearing HTML and javascript: links stays inert", async () => {
  await createWorkspace();
  await startConversation("echo");
  const requests = [];
  page.on("request", (request) => requests.push(request.url()));
  await page.evaluate(() => {
    window.alert = () => {
      window.__alerted = true;
    };
  });
  await send(
    "<img src=x onerror=alert(1)> and [click me](javascript:alert(2))",
  );
  const answer = await lastAnswer();
  const markdown = answer.locator(".markdown");
  // Without its javascript: address the link is plain text in an <a>, no longer a link.
  const link = markdown.locator("a", { hasText: "click me" });
  await link.waitFor();
  const html = await markdown.innerHTML();
  assert.doesNotMatch(html, /onerror/i);
  assert.doesNotMatch(html, /javascript:/i);
  for (const image of await markdown.locator("img").all()) {
    assert.equal(await image.getAttribute("src"), null);
  }
  await link.click();
  assert.equal(await page.evaluate(() => window.__alerted ?? false), false);
  assert.deepEqual(
    requests.filter((url) => new URL(url).pathname.endsWith("/x")),
    [],
    "the answer's image must not be fetched",
  );
  await shot("chat-sanitised");
  noIncidents();
});

test("sends a message with the keyboard alone", async () => {
  const url = await createWorkspace();
  await startConversation("echo");
  await page.goto(url);
  await page.getByRole("link", { name: "Chat with echo" }).waitFor();

  // Tab from the top of the page to the conversation, open it, then to the message box.
  await page.keyboard.press("Tab");
  assert.equal(
    await page.evaluate(() => document.activeElement?.textContent),
    "Skip to content",
  );
  await tabTo((el) => el.textContent?.includes("Chat with echo") ?? false);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/conversations\//);
  await tabTo((el) => el.id === "message-text");
  const outline = await page.evaluate(
    () => getComputedStyle(document.activeElement).outlineStyle,
  );
  assert.notEqual(outline, "none", "the focused message box shows focus");

  await page.keyboard.type("first line");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("second line");
  await page.keyboard.press("Enter");
  const answer = await lastAnswer();
  assert.match(await answer.innerText(), /first line\s+second line/);
  const question = page.locator("article.message.user .plain").last();
  assert.equal(await question.innerText(), "first line\nsecond line");
  noIncidents();
});

test("is usable at phone width", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await createWorkspace();
  await startConversation("echo");
  await send("small screen");
  await lastAnswer();
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - window.innerWidth,
  );
  assert.ok(
    overflow <= 0,
    `the page is ${overflow}px wider than the phone screen`,
  );
  await shot("chat-phone");
  noIncidents();
});

function savedPreferences() {
  return page.waitForResponse(
    (r) => r.url().endsWith("/api/me/preferences") && r.ok(),
  );
}

/** Presses Tab until the focused element matches, at most 60 times. */
async function tabTo(matches) {
  for (let presses = 0; presses < 60; presses += 1) {
    await page.keyboard.press("Tab");
    const handle = await page.evaluateHandle(() => document.activeElement);
    if (await handle.evaluate(matches)) return;
  }
  assert.fail("could not reach the element with the Tab key");
}
