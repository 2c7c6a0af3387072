/** Models a node runs: the catalog, model references, downloads and file hashes. */
export { findCatalogEntry } from "./catalog.ts";
export { type CatalogModel, modelCatalog, type ModelCatalogView } from "./catalog-fit.ts";
export { describeModelRef, formatSize, type ModelReferenceView } from "./reference-kind.ts";
export { modelPathDirs, parseModelRef, resolveModel } from "./resolve.ts";
export {
  fileSha256,
  type FileSha256Options,
  type HashProgress,
  modelSha256,
} from "./file-sha256.ts";
export {
  type EnsureOptions,
  openPartialModel,
  type PartialModel,
  type PartialModelOptions,
  type RangeProgress,
} from "./partial-model.ts";
export {
  deleteInstalledModel,
  type InstalledModel,
  InstalledModelError,
  installedModelHooks,
  type InstalledOptions,
  listInstalledModels,
  pullModel,
  type PullProgress,
} from "./installed.ts";
export { createProgressReporter } from "./progress.ts";
export type { DownloadProgress } from "./download.ts";
