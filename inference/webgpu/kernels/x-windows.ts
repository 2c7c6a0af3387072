/**
 * The x windows of the rows4 matvec and matmul (matvec_rows4.wgsl, matmul_rows4.wgsl), shared by
 * the products of one layer stack. Each of those products first copies its x into a window
 * buffer that its main dispatches read as a uniform. Two things follow from sharing them:
 *
 * - memory: one window per shape for the whole stack instead of one per product and tile size,
 *   each touched by its copies (the 1.1 B bench model on llvmpipe held 39 MiB less after a long
 *   prompt);
 * - copies: products that read the same x one after another (q, k and v; gate and up) form a
 *   group. Whoever owns the group starts a new generation of it each time its x may have
 *   changed (forward.ts: as the group's first product is encoded); a product skips its copy
 *   where the window holds the group's x of this generation for the same tokens.
 *
 * Sharing is safe because dispatches in one pass run in order, and WebGPU puts a barrier between
 * a dispatch that reads a buffer as a uniform and the next one that writes it as storage.
 */

/** Products reading one x, and how many times that x has been (re)written. */
export interface XGroup {
  generation: number;
}

/** What a window holds: a group's x of one generation, for one tile of `n` tokens. */
export interface XWindowHolder {
  group: XGroup;
  generation: number;
  tile: number;
  n: number;
}

export interface XWindow {
  buffers: GPUBuffer[];
  holder?: XWindowHolder;
}

export interface XWindows {
  /** The widest x (in values) a window holds: products of wider rows keep their own. */
  maxCols: number;
  /** The window under `key`, its buffers of `sizes` bytes, made on first use. */
  window(key: string, sizes: number[]): XWindow;
  destroy(): void;
}

/** A product's part in the sharing: the stack's windows and the group it reads x with. */
export interface XShare {
  windows: XWindows;
  group: XGroup;
}

export function createXWindows(device: GPUDevice, maxCols: number): XWindows {
  const windows = new Map<string, XWindow>();
  return {
    maxCols,
    window(key, sizes) {
      let w = windows.get(key);
      if (!w) {
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM;
        const buffers = sizes.map((size, i) =>
          device.createBuffer({ label: `shared x window ${key} #${i}`, size, usage })
        );
        windows.set(key, w = { buffers });
      }
      const fits = w.buffers.length === sizes.length &&
        w.buffers.every((b, i) => b.size >= sizes[i]);
      if (!fits) throw new Error(`x window ${key}: asked for ${sizes}, it was made smaller`);
      return w;
    },
    destroy() {
      for (const w of windows.values()) for (const b of w.buffers) b.destroy();
      windows.clear();
    },
  };
}

/** Whether `window` holds `share`'s group's current x for tile `tile` of `n` tokens. */
export function holdsX(window: XWindow, share: XShare, tile: number, n: number): boolean {
  const h = window.holder;
  return h !== undefined && h.group === share.group &&
    h.generation === share.group.generation && h.tile === tile && h.n === n;
}

/** Records that `window` now holds `share`'s group's current x for tile `tile` of `n` tokens. */
export function holdX(window: XWindow, share: XShare, tile: number, n: number): void {
  window.holder = { group: share.group, generation: share.group.generation, tile, n };
}
