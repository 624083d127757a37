#!/usr/bin/env node
// The `sardine` executable: sardine is TypeScript run by tsx. Both of tsx's loaders are needed:
// the ESM one for sardine's modules, the CommonJS one for files some dependencies require.
import { register as registerCommonJs } from "tsx/cjs/api"
import { register } from "tsx/esm/api"

registerCommonJs()
register()
await import("./sardine.ts")
