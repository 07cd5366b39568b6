import { defineConfig } from "vitest/config";
import adapter from "@sveltejs/adapter-static";
import { sveltekit } from "@sveltejs/kit/vite";

// In `npm run dev`, API calls go to a running daedalus (DAEDALUS_URL, default
// the binary's own default address), so the app can be worked on with hot reload.
const apiTarget = process.env.DAEDALUS_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [
    sveltekit({
      compilerOptions: {
        runes: ({ filename }) =>
          filename.split(/[/\\]/).includes("node_modules") ? undefined : true,
      },
      adapter: adapter({ fallback: "index.html" }),
    }),
  ],
  server: { proxy: { "/api": apiTarget } },
  test: {
    expect: { requireAssertions: true },
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
