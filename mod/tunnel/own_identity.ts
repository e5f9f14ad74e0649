/**
 * Who this node is: its Ed25519 key (the peer ID), the pin of its own name to that key, its
 * signed claim (attested by the KubeEdge certificate when `identity` is set), and the claim
 * directory that starts with it.
 */

import type { PrivateKey } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import type { Logger } from "../log/mod.ts";
import { Attestor, type CertIdentity } from "./attest.ts";
import { signClaim } from "./claim.ts";
import { ClaimDirectory } from "./directory.ts";
import { TunnelStartError } from "./errors.ts";
import { loadOrCreateIdentity, PinStore } from "./identity.ts";

export interface OwnIdentity {
  key: PrivateKey;
  selfId: string;
  dir: ClaimDirectory;
  /** Set with `identity`: signs our claim, verifies everyone else's. */
  attestor?: Attestor;
  /** Re-signs our claim with a renewed certificate and makes it the one we send. */
  renew(next: Attestor): Promise<void>;
}

export async function loadOwnIdentity(
  o: { stateDir: string; nodeName: string; identity?: CertIdentity },
  knownNodes: () => Set<string>,
  now: () => number,
  log: Logger,
): Promise<OwnIdentity> {
  const key = await loadOrCreateIdentity(o.stateDir);
  const pins = await PinStore.open(
    o.stateDir,
    (err) => log.error("cannot save pinned bindings", { error: err }),
  );
  const selfId = peerIdFromPrivateKey(key).toString();
  if (!pins.pin(o.nodeName, selfId)) {
    throw new TunnelStartError(
      `Node name "${o.nodeName}" is pinned to another identity (${
        pins.get(o.nodeName)
      }) in ${pins.path}; restore the old key or remove the entry`,
    );
  }
  const attestor = o.identity ? await Attestor.load(o.identity, o.nodeName, now) : undefined;
  const selfClaim = await signClaim(key, o.nodeName, selfId, now());
  const dir = new ClaimDirectory(
    pins,
    knownNodes,
    attestor ? attestor.attest(selfClaim) : selfClaim,
    { verifier: attestor, logger: log.child("claims") },
  );
  return {
    key,
    selfId,
    dir,
    attestor,
    async renew(next) {
      dir.renew(next.attest(await signClaim(key, o.nodeName, selfId, now())), next);
    },
  };
}
