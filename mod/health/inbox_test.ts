import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { groupHash } from "./groups.ts";
import { generateIdentity, type HealthIdentity } from "./identity.ts";
import { DigestInbox } from "./inbox.ts";
import { WireFormatError } from "./errors.ts";
import { KeyPins } from "./key_pins.ts";
import { FAIL, OK } from "./vote.ts";
import {
  decodeDigest,
  decodeExchange,
  encodeDigestBody,
  encodeExchange,
  TYPE_EXCHANGE,
  withSignature,
} from "./wire.ts";

const group = { name: "unit-a", members: ["n1", "n2", "n3"] };

async function setup(
  opts: { peerKey?: (n: string) => Uint8Array | undefined; stateDir?: string } = {},
) {
  const clock = { t: 1_000_000 };
  const pins = new KeyPins(opts.stateDir ?? "");
  await pins.load();
  const inbox = new DigestInbox({ pins, peerKey: opts.peerKey, now: () => clock.t }, {
    voteTimeoutMs: 30_000,
  });
  const hash = await groupHash(group);
  inbox.setGroup(group, hash);
  return { clock, pins, inbox, hash };
}

async function digest(
  id: HealthIdentity,
  fields: { from: string; seq: number; ts: number; hash: Uint8Array; group?: string },
): Promise<Uint8Array> {
  const body = encodeDigestBody({
    from: fields.from,
    group: fields.group ?? group.name,
    seq: fields.seq,
    ts: fields.ts,
    groupHash: fields.hash,
    states: Uint8Array.of(OK, FAIL, OK),
    observedAt: Float64Array.of(fields.ts, fields.ts - 250, fields.ts),
    publicKey: id.publicKey,
  });
  return withSignature(body, await id.sign(body));
}

Deno.test("wire: a digest round-trips with states and observation ages", async () => {
  const id = await generateIdentity();
  const hash = await groupHash(group);
  const raw = await digest(id, { from: "n1", seq: 7, ts: 5_000, hash });
  const d = decodeDigest(raw);
  assertEquals([d.from, d.group, d.seq, d.ts], ["n1", "unit-a", 7, 5_000]);
  assertEquals([...d.states], [OK, FAIL, OK]);
  // Ages are rounded up to 100 ms, never making a verdict look fresher.
  assertEquals([...d.observedAt], [5_000, 4_700, 5_000]);
  const x = decodeExchange(
    encodeExchange({
      type: TYPE_EXCHANGE,
      groupHash: hash,
      summary: Float64Array.of(1, 0, 7),
      digests: [raw],
    }),
  );
  assertEquals([...x.summary], [1, 0, 7]);
  assertEquals(x.digests[0], raw);
});

Deno.test("DigestInbox accepts a valid digest and pins the sender's key on first use", async () => {
  const { inbox, hash, clock, pins } = await setup();
  const id = await generateIdentity();
  const r = await inbox.accept(await digest(id, { from: "n2", seq: 1, ts: clock.t, hash }));
  assert(r.ok);
  assertEquals(pins.get("n2"), id.publicKey);
  assertEquals(inbox.rows().map((x) => x.observer), ["n2"]);
  assertEquals([...inbox.summary()], [0, 1, 0]);
});

Deno.test("DigestInbox rejects forged, replayed, stale, future and unknown-sender digests", async () => {
  const { inbox, hash, clock } = await setup();
  const honest = await generateIdentity();
  const forger = await generateIdentity();
  const first = await digest(honest, { from: "n2", seq: 10, ts: clock.t, hash });
  assert((await inbox.accept(first)).ok);

  const reason = async (raw: Uint8Array) => {
    const r = await inbox.accept(raw);
    return r.ok ? "accepted" : r.reason;
  };
  // Forged: another key claims to be n2 (pinned), or n2's digest altered after signing.
  assertEquals(
    await reason(await digest(forger, { from: "n2", seq: 11, ts: clock.t, hash })),
    "key-mismatch",
  );
  const tampered = (await digest(honest, { from: "n2", seq: 12, ts: clock.t, hash })).slice();
  const statesAt = 2 + 1 + 2 + 1 + 6 + 16 + 8 + 4;
  tampered[statesAt] ^= 0b11; // flips n1 from ok to fail
  assertEquals(await reason(tampered), "bad-signature");
  // Replayed: the same message again, or an older sequence number.
  assertEquals(await reason(first), "replay");
  assertEquals(
    await reason(await digest(honest, { from: "n2", seq: 9, ts: clock.t, hash })),
    "replay",
  );
  // Stale and future.
  assertEquals(
    await reason(await digest(honest, { from: "n2", seq: 20, ts: clock.t - 30_000, hash })),
    "stale",
  );
  assertEquals(
    await reason(await digest(honest, { from: "n2", seq: 21, ts: clock.t + 60_000, hash })),
    "future",
  );
  // Unknown sender (not a member), other group, garbage.
  assertEquals(
    await reason(await digest(forger, { from: "intruder", seq: 1, ts: clock.t, hash })),
    "unknown-sender",
  );
  assertEquals(
    await reason(
      await digest(honest, { from: "n2", seq: 30, ts: clock.t, hash: new Uint8Array(8) }),
    ),
    "other-group",
  );
  assertEquals(await reason(Uint8Array.of(1, 1, 200)), "malformed");
  assertEquals(await reason(Uint8Array.of(9)), "malformed");
  // Nothing above replaced the first digest; the next honest one is accepted.
  assertEquals(inbox.latest("n2")!.seq, 10);
  assertEquals(
    await reason(await digest(honest, { from: "n2", seq: 11, ts: clock.t, hash })),
    "accepted",
  );
});

Deno.test("DigestInbox trusts the tunnel-claimed key over first use", async () => {
  const claimed = await generateIdentity();
  const other = await generateIdentity();
  const { inbox, hash, clock, pins } = await setup({
    peerKey: (n) => (n === "n3" ? claimed.publicKey : undefined),
  });
  const r = await inbox.accept(await digest(other, { from: "n3", seq: 1, ts: clock.t, hash }));
  assertEquals(r.ok ? "accepted" : r.reason, "key-mismatch");
  assert((await inbox.accept(await digest(claimed, { from: "n3", seq: 2, ts: clock.t, hash }))).ok);
  assertEquals(pins.get("n3"), undefined);
});

Deno.test("KeyPins persist in stateDir and survive a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: `health-pins-${Deno.pid}-` });
  try {
    const id = await generateIdentity();
    const a = await setup({ stateDir: dir });
    assert(
      (await a.inbox.accept(await digest(id, { from: "n1", seq: 1, ts: a.clock.t, hash: a.hash })))
        .ok,
    );
    await a.pins.flush();
    const b = await setup({ stateDir: dir });
    assertEquals(b.pins.get("n1"), id.publicKey);
    const forger = await generateIdentity();
    const r = await b.inbox.accept(
      await digest(forger, { from: "n1", seq: 2, ts: b.clock.t, hash: b.hash }),
    );
    assertEquals(r.ok ? "accepted" : r.reason, "key-mismatch");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DigestInbox.newerThan() returns only fresh digests the peer lacks", async () => {
  const { inbox, hash, clock } = await setup();
  const ids = [await generateIdentity(), await generateIdentity()];
  assert((await inbox.accept(await digest(ids[0], { from: "n1", seq: 5, ts: clock.t, hash }))).ok);
  assert((await inbox.accept(await digest(ids[1], { from: "n2", seq: 8, ts: clock.t, hash }))).ok);
  assertEquals(inbox.newerThan(Float64Array.of(5, 0, 0)).map((r) => decodeDigest(r).from), ["n2"]);
  assertEquals(inbox.newerThan(Float64Array.of(0, 0, 0)).length, 2);
  clock.t += 30_000;
  assertEquals(inbox.newerThan(Float64Array.of(0, 0, 0)).length, 0);
});

Deno.test("wire: large exchanges are deflated and inflate back; inflating stops at the limit", async () => {
  const { packExchange, unpackExchange } = await import("./wire.ts");
  const hash = new Uint8Array(8).fill(7);
  const frame = encodeExchange({
    type: TYPE_EXCHANGE,
    groupHash: hash,
    summary: new Float64Array(2000).fill(42),
    digests: [],
  });
  const packed = await packExchange(frame);
  assert(packed.length < frame.length / 10, `${packed.length} bytes`);
  const x = await unpackExchange(packed, 1 << 20);
  assertEquals(x.summary.length, 2000);
  assertEquals(x.summary[1999], 42);
  await unpackExchange(packed, 1000).then(
    () => assert(false, "should have been refused"),
    (err) =>
      assert(
        err instanceof WireFormatError && err.message.includes("inflates beyond"),
        String(err),
      ),
  );
  await unpackExchange(Uint8Array.of(1, 4, 0xff, 0xff, 0xff), 1000).then(
    () => assert(false, "should have been refused"),
    (err) => assert(err instanceof WireFormatError, String(err)),
  );
});
