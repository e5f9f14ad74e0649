/**
 * Nearest-first relay choice with hysteresis (Tailscale's rule): a running primary is
 * replaced only by a relay at least 10 ms faster AND under 2/3 of its RTT; a dead primary is
 * replaced at once, by the standby when it is alive.
 */

export interface RelayCandidate {
  node: string;
  /** Last measured round-trip time; undefined when never measured. */
  rttMs?: number;
  alive: boolean;
}

export interface RelayChoice {
  primary?: string;
  standby?: string;
}

export const SWITCH_MIN_GAIN_MS = 10;
export const SWITCH_MAX_RATIO = 2 / 3;

/** True when `challenger` is clearly better than `current` (both measured). */
export function clearlyBetter(challengerMs: number, currentMs: number): boolean {
  return challengerMs <= currentMs - SWITCH_MIN_GAIN_MS &&
    challengerMs < currentMs * SWITCH_MAX_RATIO;
}

function byRtt(a: RelayCandidate, b: RelayCandidate): number {
  return (a.rttMs ?? Infinity) - (b.rttMs ?? Infinity) ||
    (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);
}

function keepOrReplace(
  current: RelayCandidate | undefined,
  pool: RelayCandidate[],
): RelayCandidate | undefined {
  const best = pool[0];
  if (!current || !current.alive) return best;
  if (!best || best.node === current.node) return current;
  if (current.rttMs === undefined) return best.rttMs !== undefined ? best : current;
  if (best.rttMs !== undefined && clearlyBetter(best.rttMs, current.rttMs)) return best;
  return current;
}

/** Chooses primary and standby from `candidates`, keeping `current` roles when justified. */
export function chooseRelays(current: RelayChoice, candidates: RelayCandidate[]): RelayChoice {
  const alive = candidates.filter((c) => c.alive).sort(byRtt);
  const find = (n?: string) => candidates.find((c) => c.node === n);
  const cur = find(current.primary);
  let stand = find(current.standby);
  let primary: RelayCandidate | undefined;
  if ((!cur || !cur.alive) && stand?.alive) {
    // Failover: the hot standby takes over now; a later round may still find a better one.
    primary = stand;
    stand = undefined;
  } else {
    primary = keepOrReplace(cur, alive);
  }
  const rest = alive.filter((c) => c.node !== primary?.node);
  const standby = keepOrReplace(stand?.node === primary?.node ? undefined : stand, rest);
  return { primary: primary?.node, standby: standby?.node };
}
