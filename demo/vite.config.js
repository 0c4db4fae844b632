import { defineConfig } from "vite";

// The build lands in demo/dist, which `bard up` serves on BARD_DEMO_PORT (bard/demo_shop.py). It is generated,
// never committed: bardctl builds it (npm ci from package-lock.json, then vite build) when missing or stale.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2020",
    sourcemap: false,
    // rrweb is most of the bundle; one chunk is fine for a demo page.
    chunkSizeWarningLimit: 800,
  },
});
