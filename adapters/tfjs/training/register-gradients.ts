import { createRequire } from "node:module"

/*
 * tfjs-core registers no gradient functions by itself (the @tensorflow/tfjs bundle does it); training
 * needs all of them. Its per-file ESM build is importable where the loader resolves extensionless
 * imports (vite/vitest); under plain Node ESM (tsx, the CLI) one of its imports names both a file and
 * a folder, so it is loaded through require, which tsx transpiles. Gradients register in tfjs's
 * global registry, so either way they serve the `@tensorflow/tfjs-core` instance in use.
 */
const REGISTER_ALL = "@tensorflow/tfjs-core/dist/register_all_gradients.js"

try {
  await import(REGISTER_ALL)
} catch {
  createRequire(import.meta.url)(REGISTER_ALL)
}
