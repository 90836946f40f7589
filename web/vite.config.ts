/**
 * The web page's build (`npm run build:web`, run by `npm start` when web/dist is missing or older than its sources).
 * Preact through Vite's own JSX transform (oxc), no Babel: `jsx: automatic` with Preact's runtime.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npx vite web` for development against a server on :4000.
    proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true }, '/images': 'http://127.0.0.1:4000' },
  },
});
