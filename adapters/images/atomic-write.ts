import { randomUUID } from "node:crypto"
import { mkdir, rename, rm, writeFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"

/**
 * Writes `bytes` next to `file` under a temporary name, then renames it into place, so a crash
 * never leaves a partial file under the final name. Creates the parent folder.
 */
export const writeFileAtomically = async (file: string, bytes: Uint8Array): Promise<void> => {
  const folder = dirname(file)
  await mkdir(folder, { recursive: true })
  const temporary = join(folder, `.${basename(file)}.${randomUUID()}.partial`)
  try {
    await writeFile(temporary, bytes)
    await rename(temporary, file)
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}
