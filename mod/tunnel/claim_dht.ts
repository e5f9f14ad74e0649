/**
 * Claims in the DHT: every node stores its own signed claim under `/edgemesh/claim/<node>`
 * (refreshed each heartbeat), so a node can learn the peer ID of a node no connected peer has
 * told it about (gossip forwards at most MAX_CLAIMS_PER_MESSAGE claims). The DHT's validator
 * accepts only a well-formed claim whose key names its node and whose signature is made by the
 * key inside its peer ID; its selector keeps the newest. A claim fetched from the DHT still
 * goes through the directory's checks (cluster Node, pins, certificate attestation).
 */

import { type Claim, decodeClaim, encodeClaim, verifyClaim } from "./claim.ts";
import type { ClaimVerifier } from "./directory.ts";

/** The DHT record namespace of claims (the first segment of the key). */
export const CLAIM_DHT_NAMESPACE = "edgemesh";

const enc = new TextEncoder();
const dec = new TextDecoder();

export function claimKey(node: string): Uint8Array {
  return enc.encode(`/${CLAIM_DHT_NAMESPACE}/claim/${node}`);
}

/**
 * kad-dht validator: throws unless `value` is a valid claim for the node the key names and,
 * with a certificate identity (`verifier`), carries a valid attestation. Without one, any
 * holder of the PSK can store a self-signed claim for any name; the directory still refuses it
 * against the pins, but it may shadow the real record for DHT look-ups (gossip stays intact).
 */
export async function validateClaimRecord(
  key: Uint8Array,
  value: Uint8Array,
  verifier?: ClaimVerifier,
): Promise<void> {
  const c = decodeClaim(value);
  if (dec.decode(key) !== `/${CLAIM_DHT_NAMESPACE}/claim/${c.node}`) {
    throw new Error(`claim of "${c.node}" stored under ${dec.decode(key)}`);
  }
  if (!(await verifyClaim(c))) throw new Error(`claim of "${c.node}": bad signature`);
  const problem = verifier?.verify(c);
  if (problem) throw new Error(`claim of "${c.node}": ${problem}`);
}

/** kad-dht selector: the newest claim (records that do not decode lose). */
export function selectClaimRecord(_key: Uint8Array, records: Uint8Array[]): number {
  let best = 0;
  let bestTs = -Infinity;
  records.forEach((r, i) => {
    try {
      const ts = decodeClaim(r).ts;
      if (ts > bestTs) [best, bestTs] = [i, ts];
    } catch {
      // Not a claim: never the best.
    }
  });
  return best;
}

/** The parts of kad-dht's API used here. */
export interface ClaimDht {
  put(key: Uint8Array, value: Uint8Array, options: { signal: AbortSignal }): AsyncIterable<unknown>;
  get(
    key: Uint8Array,
    options: { signal: AbortSignal },
  ): AsyncIterable<{ name: string; value?: Uint8Array }>;
}

/** Stores our claim at the peers closest to its key. */
export async function publishClaim(dht: ClaimDht, c: Claim, signal: AbortSignal): Promise<void> {
  for await (const _ of dht.put(claimKey(c.node), encodeClaim(c), { signal })) {
    // Drain the query's events.
  }
}

/** The claim of `node` found in the DHT, if any (validated by the DHT on the way). */
export async function findClaim(
  dht: ClaimDht,
  node: string,
  signal: AbortSignal,
): Promise<Claim | undefined> {
  try {
    for await (const ev of dht.get(claimKey(node), { signal })) {
      if (ev.name !== "VALUE" || !ev.value) continue;
      try {
        const c = decodeClaim(ev.value);
        if (c.node === node) return c;
      } catch {
        // A record that does not decode: keep looking.
      }
    }
  } catch {
    // Not found, no peers, aborted: no claim.
  }
  return undefined;
}
