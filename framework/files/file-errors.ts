import type { PlatformError } from "@effect/platform/Error"

/**
 * What went wrong with a file, as Node says it (the path included): the description of a
 * `SystemError`, else the error's message. Keeps the adapters' error texts what they were when
 * they called node:fs themselves.
 */
export const fileProblem = (error: PlatformError): string => error.description ?? error.message

/** Whether the error says the file (or a folder on its path) does not exist; every other error is a problem to report. */
export const isNotFound = (error: PlatformError): boolean => error._tag === "SystemError" && error.reason === "NotFound"
