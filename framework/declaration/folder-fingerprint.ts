import { OneOf } from "./rules.ts"

/**
 * How a declared input folder (data, base model) enters the content keys of the steps that read it,
 * after Nextflow's cache modes:
 *   "metadata" (the default when absent): every file's path, size and modification time. Cheap;
 *     notices any edit in place, and also a copy that does not keep modification times;
 *   "content": every file's path and SHA-256. Reads every byte on each `run`/`status`; keys
 *     survive copying the folder (to another disk or machine) and rewriting files unchanged.
 * Files and folders whose names start with "." are left out (.git, .cache, .DS_Store).
 */
export const FolderFingerprint = OneOf("metadata", "content")
export type FolderFingerprint = typeof FolderFingerprint.Type
