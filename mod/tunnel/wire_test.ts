import { deepStrictEqual, equal, throws } from "node:assert/strict";
import { WireError } from "./errors.ts";
import {
  decodeHeader,
  decodeReply,
  decodeRequestPrefix,
  encodeReply,
  encodeRequest,
  MAX_HEADER_BYTES,
  REPLY_CODES,
} from "./wire.ts";

Deno.test("encodeRequest() and decodeHeader() round-trip tcp and udp headers, IPv4 and IPv6", () => {
  for (
    const h of [
      { protocol: "tcp" as const, ip: "10.0.0.7", port: 8080, sourceNode: "edge-1" },
      { protocol: "udp" as const, ip: "fd00::1:2", port: 53, sourceNode: "n" },
    ]
  ) {
    const b = encodeRequest(h);
    const len = decodeRequestPrefix(b.subarray(0, 3));
    equal(len, b.length - 3);
    deepStrictEqual(decodeHeader(b.subarray(3)), h);
  }
});

Deno.test("decodeRequestPrefix() refuses other versions and out-of-bounds lengths", () => {
  throws(() => decodeRequestPrefix(new Uint8Array([2, 0, 10])), WireError);
  throws(() => decodeRequestPrefix(new Uint8Array([1, 0, 2])), WireError);
  throws(
    () =>
      decodeRequestPrefix(
        new Uint8Array([1, (MAX_HEADER_BYTES + 1) >> 8, (MAX_HEADER_BYTES + 1) & 0xff]),
      ),
    WireError,
  );
});

Deno.test("decodeHeader() refuses malformed headers", () => {
  const good = encodeRequest({ protocol: "tcp", ip: "10.0.0.7", port: 80, sourceNode: "a" })
    .subarray(3);
  const cases: [string, Uint8Array][] = [
    ["unknown protocol", Uint8Array.from([9, ...good.subarray(1)])],
    ["port 0", Uint8Array.from([1, 0, 0, ...good.subarray(3)])],
    ["truncated", good.subarray(0, good.length - 1)],
    ["trailing byte", Uint8Array.from([...good, 0])],
    [
      "not an ip",
      encodeRequest({ protocol: "tcp", ip: "evil.example", port: 80, sourceNode: "a" }).subarray(3),
    ],
    ["bad utf-8", Uint8Array.from([1, 0, 80, 2, 0xff, 0xfe, 0])],
  ];
  for (const [name, b] of cases) throws(() => decodeHeader(b), WireError, name);
});

Deno.test("replies carry every code and refuse unknown ones", () => {
  for (const c of REPLY_CODES) equal(decodeReply(encodeReply(c)), c);
  throws(() => decodeReply(new Uint8Array([1, 200])), WireError);
  throws(() => decodeReply(new Uint8Array([0, 0])), WireError);
});
