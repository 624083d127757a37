import { Args } from "@effect/cli"

/** The positional argument every declaration command takes. */
export const declarationFile = Args.file({ name: "file", exists: "yes" }).pipe(
  Args.withDescription("An experiment or study: a .ts module with a default export, or its .json form")
)
