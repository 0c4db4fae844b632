import { defineConfig } from "vite";

// The build lands inside the replayer_api package, so `bard up` serves it and a built wheel carries it.
// It is generated (never committed): see dashboard/README.md.
export default defineConfig({
  base: "/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../replayer_api/dashboard_build",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2020",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: "node",
    include: ["tests/**/*.test.ts"],
  },
});
