#!/usr/bin/env node
// The `sardine` executable: sardine is TypeScript run by tsx, so register its loader first.
import { register } from "tsx/esm/api"

register()
await import("./sardine.ts")
