/** Background work the tunnel must wait for on stop, some of it marked as discovery. */

export class TaskSet {
  #all = new Set<Promise<unknown>>();
  #discovery = new Set<Promise<unknown>>();

  /** Tracks `p` until it settles; `discovery` marks work that may bring new claims. */
  track(p: Promise<unknown>, discovery = false): void {
    this.#all.add(p);
    if (discovery) this.#discovery.add(p);
    p.finally(() => {
      this.#all.delete(p);
      this.#discovery.delete(p);
    }).catch(() => {
      // Rejections belong to whoever created `p`; tracking must not add an unhandled one.
    });
  }

  /** Resolves when the discovery work under way now has settled. */
  discoverySettled(): Promise<unknown> {
    return Promise.allSettled([...this.#discovery]);
  }

  /** Resolves when everything tracked now has settled. */
  settled(): Promise<unknown> {
    return Promise.allSettled([...this.#all]);
  }
}
