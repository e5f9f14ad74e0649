/**
 * This node's relay service, switched on and off at run time: a listed relay found
 * unreachable stops offering it, a reachable node with no relay configured starts offering
 * it. Off means the HOP protocol is unregistered (identify push tells the peers) and the
 * server's reservations and circuits end.
 */

import type { Libp2p } from "libp2p";
import type { Logger } from "../log/mod.ts";
import { WireError } from "./errors.ts";
import type { TunnelMetrics } from "./metrics.ts";
import { HOP_PROTOCOL } from "./relay_pb.ts";
import {
  RELAY_SERVER_DEFAULTS,
  RelayServer,
  type RelayServerHost,
  type RelayServerOptions,
} from "./relay_server.ts";
import type { TaskSet } from "./tasks.ts";

/**
 * Listed in identify by nodes that offer relay service on their own (reachable, no relayNodes
 * configured): peers take such nodes as relay candidates. Listed relays do not register it,
 * so a node that drops a relay from its relayNodes does not take it back as an offered one.
 */
export const SELF_RELAY_PROTOCOL = "/edgemesh/self-relay/1.0.0";

export interface RelayRoleDeps {
  node: Libp2p<Record<string, unknown>>;
  host: RelayServerHost;
  logger: Logger;
  metrics: TunnelMetrics;
  tasks: TaskSet;
  shutdown: AbortSignal;
  now: () => number;
}

export class RelayRole {
  #server?: RelayServer;
  #stop?: AbortController;

  constructor(
    readonly deps: RelayRoleDeps,
    readonly opts: RelayServerOptions = RELAY_SERVER_DEFAULTS,
  ) {}

  get active(): boolean {
    return this.#server !== undefined;
  }

  /** The running server (for counts), if any. */
  get server(): RelayServer | undefined {
    return this.#server;
  }

  /** Starts relaying; `selfOffered` also announces the offer (SELF_RELAY_PROTOCOL). */
  async start(selfOffered: boolean): Promise<void> {
    if (this.#server || this.deps.shutdown.aborted) return;
    const stop = new AbortController();
    const rs = new RelayServer(
      this.deps.host,
      this.deps.logger,
      this.deps.metrics,
      this.opts,
      AbortSignal.any([this.deps.shutdown, stop.signal]),
      this.deps.now,
    );
    this.#server = rs;
    this.#stop = stop;
    // The same caps for every relay, configured or offered: reservations and circuits.
    await this.deps.node.handle(
      HOP_PROTOCOL,
      (s, c) => this.deps.tasks.track(rs.handleHop(s, c)),
      { maxInboundStreams: this.opts.maxCircuits, maxOutboundStreams: this.opts.maxCircuits },
    );
    if (selfOffered) {
      // Only its presence in identify matters; a stream on it is closed at once.
      await this.deps.node.handle(SELF_RELAY_PROTOCOL, (s) => void s.close().catch(() => {}), {
        maxInboundStreams: 1,
        maxOutboundStreams: 1,
      });
    }
  }

  async stop(): Promise<void> {
    const stop = this.#stop;
    if (!stop) return;
    this.#server = undefined;
    this.#stop = undefined;
    try {
      await this.deps.node.unhandle([HOP_PROTOCOL, SELF_RELAY_PROTOCOL]);
    } finally {
      stop.abort(new WireError("relay service stopped"));
    }
  }
}
