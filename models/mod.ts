/** Models a node runs: the catalog, model references, and downloads. */
export { findCatalogEntry } from "./catalog.ts";
export { modelPathDirs, parseModelRef, resolveModel } from "./resolve.ts";
