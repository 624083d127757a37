import { join } from "node:path"
import { repoRoot } from "./run-process.ts"

/**
 * The real Sentinel-1 scene the data, image and metric tests read (pyroSAR's MIT-licensed test data;
 * origin, attribution and licence in test/fixtures/data/README.md). The goldens of
 * tools/make_sar_golden.py and tools/make_metric_goldens.py name it by its repository path.
 */
export const realScene = join(repoRoot, "test/fixtures/data/s1-grd-vv-db-20m.tif")
