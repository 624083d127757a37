import { existsSync } from "node:fs"
import { resolve } from "node:path"

/*
 * The data and metric tests read the real Sentinel-1 scene the project keeps next to the repository
 * (../shared/data). A clone elsewhere lacks it: say so once, up front, instead of leaving only the
 * assertion failures of the tests that read it.
 */
const realScene = "../shared/data/s1-grd-vv-db-20m.tif"

export default function setup() {
  const path = resolve(import.meta.dirname, "../..", realScene)
  if (!existsSync(path)) {
    console.warn(`\nThe real Sentinel-1 scene is missing: ${path}\nThe tests that read it (test/images, test/data, test/cli-metrics) will fail; put ../shared/data next to the clone.\n`)
  }
}
