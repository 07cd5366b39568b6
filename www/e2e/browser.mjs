// Starts Debian's Chromium through playwright-core for the end-to-end tests,
// with a fresh profile each run, and finds the servers the tests run against.
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export const SCREENSHOTS = new URL("./screenshots/", import.meta.url).pathname;

/** Reads a required variable; a missing service fails the run, never skips it. */
export function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: the end-to-end tests need it (see www/e2e/README.md)`,
    );
  }
  return value.replace(/\/$/, "");
}

export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "daedalus-e2e-"));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
