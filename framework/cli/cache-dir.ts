import { Options } from "@effect/cli"
import { resolve } from "node:path"

export const cacheDirOption = Options.directory("cache-dir").pipe(
  Options.withDefault(".sardine"),
  Options.map((dir) => resolve(dir)),
  Options.withDescription("Content-addressed cache of step outputs (default: .sardine in the working directory)")
)
