/**
 * Build of the hub's web console (issue 7): `npm run build:console` writes `dist/console/`, which the hub
 * serves itself (index.html at `/`, files under `/assets/`). Everything is bundled: no CDN, no web font,
 * nothing fetched from anywhere but the hub. `npx vite --config console/vite.config.ts` serves it for
 * development and forwards `/api` to the hub at LATCHKEY_HUB (default http://127.0.0.1:8080).
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const hub = process.env.LATCHKEY_HUB ?? "http://127.0.0.1:8080";

export default defineConfig({
  root: here("."),
  base: "/",
  publicDir: false,
  // JSX for Preact through Vite's own transformer: no framework plugin needed.
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: here("../dist/console"),
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    sourcemap: false,
    // Inline nothing from the network; keep one small script and one stylesheet.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  server: { host: "127.0.0.1", proxy: { "/api": hub, "/healthz": hub } },
  preview: { host: "127.0.0.1" },
});
