import tls from "node:tls";
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { BufReader } from "./buf_reader.ts";
import { NotTlsError, parseClientHello, peekSni } from "./sni.ts";

/** Captures the first bytes a real TLS client sends to a plain TCP listener. */
async function captureClientHello(serverName: string): Promise<Uint8Array> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted = listener.accept();
  const sock = tls.connect({
    host: "127.0.0.1",
    port,
    servername: serverName,
    rejectUnauthorized: false,
  });
  const client = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  sock.on("error", () => {});
  const server = await accepted;
  const reader = new BufReader(server.readable.getReader());
  let data = new Uint8Array(0);
  while (parseClientHello(data) === "more") {
    if (!(await reader.fillMore(5000))) break;
    data = reader.peek().slice();
  }
  server.close();
  listener.close();
  sock.destroy();
  await client;
  return data;
}

Deno.test("parseClientHello() reads the SNI of a real ClientHello", async () => {
  const hello = await captureClientHello("a.example.com");
  assertEquals(parseClientHello(hello), "a.example.com");
  assertEquals(parseClientHello(hello.subarray(0, 40)), "more");
});

Deno.test("parseClientHello() rejects bytes that are not a TLS handshake", () => {
  throws(() => parseClientHello(new TextEncoder().encode("GET / HTTP/1.1\r\n")), NotTlsError);
  assertEquals(parseClientHello(new Uint8Array([22, 3])), "more");
});

Deno.test("peekSni() leaves the ClientHello bytes buffered for forwarding", async () => {
  const hello = await captureClientHello("b.example.com");
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(hello.subarray(0, 10));
      c.enqueue(hello.subarray(10));
      c.close();
    },
  });
  const buf = new BufReader(stream.getReader());
  assertEquals(await peekSni(buf, 1000), "b.example.com");
  assertEquals(buf.takeBuffered(), hello);
});
