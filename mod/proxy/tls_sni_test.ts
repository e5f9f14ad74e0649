import { deepStrictEqual as assertEquals } from "node:assert/strict";
import * as tls from "node:tls";
import { ConnDuplex } from "./duplex.ts";
import { readClientHello } from "./tls_sni.ts";

Deno.test("readClientHello() finds the SNI of a real TLS client", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = tls.connect({
    host: "127.0.0.1",
    port: (l.addr as Deno.NetAddr).port,
    servername: "Example.Test",
    rejectUnauthorized: false,
  });
  const clientClosed = new Promise((r) => client.once("close", r));
  client.on("error", () => undefined); // the server never answers the handshake
  const server = await l.accept();
  try {
    const hello = await readClientHello(new ConnDuplex(server), new Uint8Array(65536), 2000);
    assertEquals(hello.sni, "example.test");
    assertEquals(hello.bytes[0], 0x16);
  } finally {
    server.close();
    l.close();
    client.destroy();
    await clientClosed;
  }
});
