import { deepStrictEqual } from "node:assert/strict";
import { nullLogger } from "../log/mod.ts";
import { SystemdNotifier } from "./mod.ts";

Deno.test("SystemdNotifier sends READY=1 and STOPPING=1 to $NOTIFY_SOCKET", async () => {
  const dir = await Deno.makeTempDir();
  const socket = `${dir}/notify.sock`;
  const server = Deno.listenDatagram({ path: socket, transport: "unixpacket" });
  const n = new SystemdNotifier(nullLogger(), { socket, bindDir: dir });
  try {
    await n.ready("serving");
    await n.stopping();
    const got: string[] = [];
    for (let i = 0; i < 2; i++) got.push(new TextDecoder().decode((await server.receive())[0]));
    deepStrictEqual(got, ["READY=1\nSTATUS=serving", "STOPPING=1"]);
  } finally {
    await n.close();
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SystemdNotifier is a no-op without $NOTIFY_SOCKET", async () => {
  const n = new SystemdNotifier(nullLogger(), { bindDir: "/nonexistent" });
  await n.ready("x");
  await n.stopping();
  await n.close();
});
