/** Models a node runs: the catalog, model references, and downloads. */
export { catalogIds, DEFAULT_MODEL_ID, findCatalogEntry } from "./catalog.ts";
export type { CatalogEntry } from "./catalog.ts";
export { ModelRefError, ModelResolveError, parseModelRef, resolveModel } from "./resolve.ts";
export { DownloadError, downloadFile } from "./download.ts";
